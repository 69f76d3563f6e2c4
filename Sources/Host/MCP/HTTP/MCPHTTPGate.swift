import Foundation
import MCP

/// Where `mcp serve --http` listens: `PORT` or `HOST:PORT` (loopback unless said otherwise:
/// `127.0.0.1:8765`, `[::1]:8765`, `0.0.0.0:8765`), or `unix:/path/to.sock`.
public enum MCPListenAddress: Sendable, Equatable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    /// What `--http` takes, as an error says it.
    public static let forms = "PORT, HOST:PORT, [IPv6]:PORT or unix:/absolute/path.sock"

    public init?(_ text: String) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard NetworkAccess.unixSocketPathProblem(path) == nil else { return nil }
            self = .unix(path: path)
            return
        }
        var host = "127.0.0.1", portText = Substring(text)
        if text.hasPrefix("["), let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") {
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65_535).contains(port), !host.isEmpty, !host.contains(":") || text.hasPrefix("["),
              host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:".contains($0)) }) else { return nil }
        // The name is not looked up: /etc/hosts can point "localhost" anywhere, and a tier-0
        // neuron's server must be on loopback whatever it says.
        self = .tcp(host: host.lowercased() == "localhost" ? "127.0.0.1" : host.lowercased(), port: port)
    }

    /// On this machine only: a loopback address or a unix socket.
    public var isLocal: Bool {
        switch self {
        case .tcp(let host, _): NetworkAccess.isLoopback(host)
        case .unix: true
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}

/// What every HTTP request must pass before any session sees it, decided in one place: the
/// endpoint's path, the bearer token, the `Origin` (DNS rebinding: a browser page may not
/// reach the server unless its origin is listed; a client that sends none is not a browser),
/// and, on loopback, the `Host` a browser was pointed at. Each refusal is an HTTP status with
/// a JSON-RPC error body that says what to fix; none echoes the token.
public struct MCPHTTPGate: Sendable {
    public static let path = "/mcp"

    let token: [UInt8]
    let allowedOrigins: Set<String>
    /// The `Host` values a loopback listener answers to (nil: any, for a listener beyond loopback or a socket).
    let allowedHosts: Set<String>?

    public init(token: String, allowedOrigins: [String], listening: MCPListenAddress, port: Int) {
        self.token = Array(token.utf8)
        self.allowedOrigins = Set(allowedOrigins.map { $0.lowercased() })
        if case .tcp(let host, _) = listening, NetworkAccess.isLoopback(host) {
            allowedHosts = Set(["127.0.0.1", "localhost", "[::1]", host.contains(":") ? "[\(host)]" : host].map { "\($0):\(port)" })
        } else {
            allowedHosts = nil
        }
    }

    /// The refusal for a request, or nil when it may go on to the sessions.
    func refusal(method: String, path: String, headers: [String: String]) -> HTTPResponse? {
        func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value }
        guard path == Self.path else {
            return .error(statusCode: 404, .invalidRequest("Not Found: the MCP endpoint is \(Self.path)"))
        }
        guard let authorization = header(HTTPHeaderName.authorization), authorization.count > 7,
              authorization.prefix(7).lowercased() == "bearer ", Self.equalInConstantTime(Array(authorization.utf8.dropFirst(7)), token) else {
            return .error(statusCode: 401, .invalidRequest("Unauthorized: send the token from `brane mcp token` as Authorization: Bearer <token>"),
                          extraHeaders: [HTTPHeaderName.wwwAuthenticate: #"Bearer realm="brane""#])
        }
        if let origin = header(HTTPHeaderName.origin), !allowedOrigins.contains(origin.lowercased()) {
            return .error(statusCode: 403, .invalidRequest("Forbidden: Origin \(UntrustedText.sanitized(origin, limit: 128)) is not allowed; "
                + "start the server with --allow-origin \(UntrustedText.sanitized(origin, limit: 128)) if that page may use it"))
        }
        if let allowedHosts, !(header(HTTPHeaderName.host).map { allowedHosts.contains($0.lowercased()) } ?? false) {
            return .error(statusCode: 403, .invalidRequest("Forbidden: Host \(UntrustedText.sanitized(header(HTTPHeaderName.host) ?? "(none)", limit: 128)) is not this loopback server's"))
        }
        guard ["POST", "GET", "DELETE"].contains(method) else {
            return .error(statusCode: 405, .invalidRequest("Method Not Allowed"), extraHeaders: [HTTPHeaderName.allow: "GET, POST, DELETE"])
        }
        return nil
    }

    /// Compares every byte whatever the first difference: the time taken says nothing of the token.
    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// The bearer token `mcp serve --http` requires: 32 random bytes kept in `$BRANE_HOME/mcp-token`
/// (mode 0600), made on first use; shown as 64 hex digits.
public enum MCPToken {
    public static func path(_ home: BraneHome) -> String { "\(home.root)/mcp-token" }

    public static func read(_ home: BraneHome = .current) throws -> String {
        try home.prepare()
        return hex(try OwnerOnlyRandomFile.readOrCreate(path(home), length: 32, name: "MCP token", ifDamaged:
            "move it aside and a new token is made at the next start (clients configured with the old one must be given the new)"))
    }
}
