import BraneHost
import Foundation

/// A model server for tests: an HTTP/1.1 server that answers each request with the next queued
/// response — recorded provider streams from Tests/Fixtures/ModelExchanges — line by line, so
/// the client really streams. Every request is kept for assertions.
public final class FakeModelServer: @unchecked Sendable {
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String

        public init(status: Int, contentType: String, body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }

        public static let exchanges = BundledPlugins.repository.appendingPathComponent("Tests/Fixtures/ModelExchanges").path

        /// A recorded response: `.sse` files are OpenAI event streams, `.ndjson` Ollama JSON lines, `.json` a whole body.
        public static func recorded(_ name: String, status: Int = 200) -> Response {
            let body = try! String(contentsOfFile: "\(exchanges)/\(name)", encoding: .utf8)
            let type = name.hasSuffix(".sse") ? "text/event-stream" : name.hasSuffix(".ndjson") ? "application/x-ndjson" : "application/json"
            return Response(status: status, contentType: type, body: body)
        }
    }

    public struct Request: Sendable {
        public var path: String
        public var headers: [String: String]
        public var body: JSONValue
    }

    public let url: String
    private let listener: LoopbackListener
    private let lock = NSLock()
    private var queue: [Response] = []
    private var received: [Request] = []

    /// `address` "0.0.0.0" also answers on the machine's other addresses (a "remote" endpoint).
    public init(address: String = "127.0.0.1", urlHost: String = "127.0.0.1", path: String = "") throws {
        listener = try LoopbackListener(address: address)
        url = "http://\(urlHost):\(listener.port)\(path)"
        Thread.detachNewThread { [self] in serve() }
    }

    public func enqueue(_ responses: Response...) { lock.withLock { queue += responses } }
    public var requests: [Request] { lock.withLock { received } }

    private func serve() {
        while true {
            let connection = accept(listener.fd, nil, nil)
            if connection < 0 { return }
            handle(connection)
            close(connection)
        }
    }

    private func handle(_ fd: Int32) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return false }
            bytes += chunk[..<n]
            return true
        }
        var headerEnd: Int?
        while headerEnd == nil {
            guard fill() else { return }
            headerEnd = bytes.indices.dropLast(3).first { bytes[$0...$0 + 3].elementsEqual([13, 10, 13, 10]) }
        }
        let head = String(decoding: bytes[..<headerEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["expect"]?.lowercased() == "100-continue" { write(fd, "HTTP/1.1 100 Continue\r\n\r\n") }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while bytes.count - (headerEnd! + 4) < length { guard fill() else { return } }
        let body = (try? JSONValue(parsing: bytes[(headerEnd! + 4)...])) ?? .null
        let path = head[0].split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        let response = lock.withLock {
            received.append(Request(path: path, headers: headers, body: body))
            return queue.isEmpty ? nil : queue.removeFirst()
        } ?? Response(status: 500, contentType: "application/json", body: #"{"error":{"message":"fake model server: no recorded answer left"}}"#)
        write(fd, "HTTP/1.1 \(response.status) Fake\r\nContent-Type: \(response.contentType)\r\nConnection: close\r\n\r\n")
        for line in response.body.split(separator: "\n", omittingEmptySubsequences: false) {
            write(fd, line + "\n")
            usleep(2000)   // one line per packet, as a generating model sends them
        }
    }

    private func write(_ fd: Int32, _ text: some StringProtocol) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a client that hung up mid-stream must not kill the test process with SIGPIPE.
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }
}
