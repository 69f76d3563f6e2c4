import CBraneSystem
import CSeccomp
import Glibc
import SystemPackage

/// The streams the host handed one instance, by socket inode, with the peer each one reaches — so
/// the host can answer libcurl 7.88's redundant connect (curl#10626) on such a stream without ever
/// holding a reference to the plugin's descriptor (closing a copy could block on SO_LINGER).
final class BrokeredStreams {
    /// At most this many no-op connects are answered per call; the next one is a violation.
    static let answersPerCall = 64
    private static let tableLimit = 256
    private static let connectNumber = seccomp_syscall_resolve_name("connect")
    private var peers: [UInt64: [UInt8]] = [:]
    private var order: [UInt64] = []
    private var answered = 0
    private let pid: pid_t

    init(pid: pid_t) { self.pid = pid }

    func startCall() { answered = 0 }

    /// Remembers a stream before it is handed over.
    func record(_ stream: FileDescriptor) {
        var info = stat()
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        guard fstat(stream.rawValue, &info) == 0,
              withUnsafeMutablePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(stream.rawValue, $0, &length) } }) == 0
        else { return }
        if order.count == Self.tableLimit { peers[order.removeFirst()] = nil }
        order.append(UInt64(info.st_ino))
        peers[UInt64(info.st_ino)] = withUnsafeBytes(of: address) { Array($0.prefix(Int(length))) }
    }

    /// Answers `event` with success when it is connect(fd, address) on a stream this instance was
    /// handed and `address` is exactly that stream's peer — a connect that changes nothing — and
    /// says whether it did. Anything else stays a violation.
    func answerIfNoOp(_ event: brane_seccomp_event, listener: FileDescriptor) -> Bool {
        guard event.arch == seccomp_arch_native(), event.nr == Self.connectNumber, answered < Self.answersPerCall,
              let inode = socketInode(fd: Int32(truncatingIfNeeded: event.args.0), thread: pid_t(truncatingIfNeeded: event.pid)),
              let peer = peers[inode], event.args.2 >= UInt64(peer.count), event.args.2 <= 128 else { return false }
        var asked = [UInt8](repeating: 0, count: peer.count)
        let read = asked.withUnsafeMutableBytes { brane_read_process_memory(pid_t(truncatingIfNeeded: event.pid), event.args.1, $0.baseAddress, $0.count) }
        guard read == peer.count, Self.sameDestination(asked, peer), brane_seccomp_answer_success(listener.rawValue, event.id) == 0 else { return false }
        answered += 1
        return true
    }

    /// The inode of `fd` in the blocked thread's process when it is a socket (`socket:[N]`).
    private func socketInode(fd: Int32, thread: pid_t) -> UInt64? {
        var target = [CChar](repeating: 0, count: 64)
        let length = readlink("/proc/\(thread)/fd/\(fd)", &target, target.count - 1)
        guard length > 0 else { return nil }
        let text = String(decoding: target.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("socket:["), text.hasSuffix("]") else { return nil }
        return UInt64(text.dropFirst("socket:[".count).dropLast())
    }

    /// Family, port and address equal (IPv6 flow label and scope aside).
    private static func sameDestination(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count >= 4, a.prefix(2) == b.prefix(2), a[2..<4] == b[2..<4] else { return false }
        switch Int32(UInt16(b[0]) | UInt16(b[1]) << 8) {
        case AF_INET: return a.count >= 8 && b.count >= 8 && a[4..<8] == b[4..<8]
        case AF_INET6: return a.count >= 24 && b.count >= 24 && a[8..<24] == b[8..<24]
        default: return false
        }
    }
}
