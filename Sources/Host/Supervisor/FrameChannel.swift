import Glibc
import SystemPackage

enum ChannelError: Error {
    case timedOut
    case closed
    case frame(FrameError)
    case system(Errno)
}

/// The host's end of a plugin's socket: non-blocking, every wait bounded by a deadline,
/// writes with MSG_NOSIGNAL so a plugin that closes its end cannot SIGPIPE the host.
final class FrameChannel {
    let socket: FileDescriptor
    private var decoder: FrameDecoder
    private var readBuffer = [UInt8](repeating: 0, count: 65536)

    init(socket: FileDescriptor, limit: Int) {
        self.socket = socket
        decoder = FrameDecoder(limit: limit)
        _ = fcntl(socket.rawValue, F_SETFL, fcntl(socket.rawValue, F_GETFL) | O_NONBLOCK)
    }

    deinit { try? socket.close() }

    func send(_ frame: Frame, deadline: ContinuousClock.Instant?) throws(ChannelError) {
        let bytes = frame.encoded()
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(socket.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            switch Errno(rawValue: errno) {
            case .interrupted: continue
            case .wouldBlock: try wait(for: Int16(POLLOUT), deadline: deadline)
            case .brokenPipe, .connectionReset: throw .closed
            case let error: throw .system(error)
            }
        }
    }

    func receive(deadline: ContinuousClock.Instant?) throws(ChannelError) -> Frame {
        while true {
            do {
                if let frame = try decoder.next() { return frame }
            } catch {
                throw .frame(error)
            }
            let count = readBuffer.withUnsafeMutableBytes { Glibc.read(socket.rawValue, $0.baseAddress, $0.count) }
            if count > 0 {
                decoder.append(readBuffer[..<count])
                continue
            }
            if count == 0 { throw .closed }
            switch Errno(rawValue: errno) {
            case .interrupted: continue
            case .wouldBlock: try wait(for: Int16(POLLIN), deadline: deadline)
            case .connectionReset: throw .closed
            case let error: throw .system(error)
            }
        }
    }

    private func wait(for events: Int16, deadline: ContinuousClock.Instant?) throws(ChannelError) {
        while true {
            var timeout: Int32 = -1
            if let deadline {
                let remaining = deadline - .now
                guard remaining > .zero else { throw .timedOut }
                let (seconds, attoseconds) = remaining.components
                timeout = Int32(min(seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000, 1 << 30))
            }
            var descriptor = pollfd(fd: socket.rawValue, events: events, revents: 0)
            let ready = Glibc.poll(&descriptor, 1, timeout)
            if ready > 0 { return }
            if ready == 0 { continue }  // recompute: the deadline decides, not poll's rounding
            if errno != EINTR { throw .system(Errno(rawValue: errno)) }
        }
    }
}

/// A connected AF_UNIX stream pair, both ends close-on-exec.
func makeSocketPair() throws(Errno) -> (host: FileDescriptor, plugin: FileDescriptor) {
    var fds: [Int32] = [0, 0]
    try syscallResult { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
    return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
}
