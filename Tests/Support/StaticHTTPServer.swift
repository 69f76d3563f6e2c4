import Foundation

/// A minimal HTTP/1.0 file server on loopback, so libcurl is tested against a real socket.
/// `padding` makes it send that many bytes more than the file: an endless-data attacker.
public final class StaticHTTPServer: @unchecked Sendable {
    public var padding = 0
    public var port: UInt16 { listener.port }
    private let listener: LoopbackListener
    private let root: String

    public init(root: String) throws {
        self.root = root
        listener = try LoopbackListener()
        Thread.detachNewThread { [self] in serve() }
    }

    private func serve() {
        while true {
            let connection = accept(listener.fd, nil, nil)
            if connection < 0 { return }
            var request = [UInt8](repeating: 0, count: 4096)
            let n = read(connection, &request, request.count)
            let line = String(decoding: request.prefix(max(0, n)), as: UTF8.self).split(separator: " ")
            let path = line.count > 1 ? String(line[1]) : "/"
            if let body = FileManager.default.contents(atPath: root + path) {
                let payload = Array(body) + [UInt8](repeating: 0, count: padding)
                send(connection, "HTTP/1.0 200 OK\r\nContent-Length: \(payload.count)\r\nConnection: close\r\n\r\n", payload)
            } else {
                send(connection, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", [])
            }
            close(connection)
        }
    }

    private func send(_ fd: Int32, _ header: String, _ body: [UInt8]) {
        let bytes = Array(header.utf8) + body
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { return }
            offset += n
        }
    }
}
