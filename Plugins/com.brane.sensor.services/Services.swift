import BranePluginKit
import BraneProcFS
import Glibc

/// com.brane.sensor.services — HTTP health checks of the endpoints in its config: status code,
/// response time and a state (`up`, `degraded` for a non-2xx/3xx answer, `down` when it cannot
/// connect or times out). Tier 1: the host connects for it (ABI 1.2) to the loopback ports its
/// manifest declares; it has no socket of its own.
struct Services: BranePlugin {
    static let id = "com.brane.sensor.services"
    static let version = "0.2.0"
    static let kind = PluginKind.sensor

    struct Endpoint {
        var name: String
        var url: String
        var timeoutMs: Int?
    }

    let endpoints: [Endpoint]
    let host: PluginHost

    init(host: PluginHost) throws {
        self.host = host
        endpoints = try (JSONValue(parsing: host.configJSON)["endpoints"]?.arrayValue ?? []).enumerated().map { index, entry in
            guard let name = entry["name"]?.stringValue, let url = entry["url"]?.stringValue else {
                throw PluginError("config.endpoints[\(index)] needs a name and a url")
            }
            return Endpoint(name: name, url: url, timeoutMs: entry["timeoutMs"]?.numberValue.map { Int($0) })
        }
    }

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "sensor/sample" else { throw PluginError("unknown method \(method); this sensor answers sensor/sample") }
        guard !endpoints.isEmpty else { throw PluginError("no endpoints configured: set config.endpoints to [{name, url}]") }
        var reading = SensorReading()
        for endpoint in endpoints {
            let started = ProcFS.now()
            let outcome = check(endpoint)
            let elapsed = twoDecimals((ProcFS.now() - started) * 1000)
            switch outcome {
            case .answered(let status):
                reading.states["service.\(endpoint.name)"] = (200..<400).contains(status) ? "up" : "degraded"
                reading.metrics["service.\(endpoint.name).status"] = Double(status)
                reading.metrics["service.\(endpoint.name).responseMs"] = elapsed
            case .failed(let why):
                reading.states["service.\(endpoint.name)"] = "down"
                reading.states["service.\(endpoint.name).error"] = why
            }
        }
        return reading.json
    }

    enum Outcome {
        case answered(Int)
        case failed(String)
    }

    /// A plain HTTP/1.0 GET over the stream the host connects for it to an http://host:port URL.
    func check(_ endpoint: Endpoint) -> Outcome {
        guard let target = Target(endpoint.url) else { return .failed("only http://host:port/path URLs are supported: \(endpoint.url)") }
        let fd: Int32
        do { fd = try host.connect(host: target.host, port: target.port) } catch { return .failed("connect: \((error as? PluginError)?.message ?? "\(error)")") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: (endpoint.timeoutMs ?? 2000) / 1000, tv_usec: ((endpoint.timeoutMs ?? 2000) % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET \(target.path) HTTP/1.0\r\nHost: \(target.host)\r\nUser-Agent: brane-services/0.1\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else {
            return .failed("send: \(String(cString: strerror(errno)))")
        }
        var head = [UInt8](repeating: 0, count: 256)
        let n = head.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return .failed(n == 0 ? "closed without an answer" : "recv: \(String(cString: strerror(errno)))") }
        let statusLine = String(decoding: head[..<n], as: UTF8.self).split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/"), let status = Int(statusLine[1]) else {
            return .failed("not an HTTP answer")
        }
        return .answered(status)
    }

    struct Target {
        var host: String
        var port: UInt16
        var path: String

        init?(_ url: String) {
            guard url.hasPrefix("http://") else { return nil }
            let rest = url.dropFirst(7)
            let authority = rest.prefix { $0 != "/" }
            path = rest.dropFirst(authority.count).isEmpty ? "/" : String(rest.dropFirst(authority.count))
            let parts = authority.split(separator: ":")
            guard parts.count <= 2, let host = parts.first else { return nil }
            self.host = String(host)
            guard let port = parts.count == 2 ? UInt16(parts[1]) : 80 else { return nil }
            self.port = port
        }
    }
}

@_cdecl("brane_plugin_entry")
public func braneServicesEntry() -> UnsafeRawPointer { exportPlugin(Services.self) }
