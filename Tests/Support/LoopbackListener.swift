import Foundation

/// A TCP listener on 127.0.0.1 (or another local address) with a kernel-chosen port, closed
/// when released. Shared by the hostile network tests and the tests' HTTP servers.
public final class LoopbackListener {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let fd: Int32
    public let port: UInt16

    public init(address host: String = "127.0.0.1") throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr(host)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw Failure(description: "cannot listen on \(host): errno \(errno)") }
        port = UInt16(bigEndian: address.sin_port)
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))   // wakes a thread blocked in accept
        close(fd)
    }
}
