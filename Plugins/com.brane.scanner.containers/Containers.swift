import BranePluginCodable
import BraneProcFS

/// com.brane.scanner.containers — containers from the Docker Engine API. The host talks to the
/// engine's unix socket (a sandboxed plugin may not open unix sockets) and hands the raw
/// /version and /containers/json answers in; this tier-0 plugin parses that untrusted JSON.
struct Containers: BranePlugin {
    static let id = "com.brane.scanner.containers"
    static let version = "0.1.0"
    static let kind = PluginKind.scanner

    init(host: PluginHost) {}

    static let namedSkips = 10

    /// What the host passes: the engine's answers, or engine == nil when no engine was found.
    struct Input: Decodable {
        struct Engine: Decodable {
            var socket: String
            var version: Version?
            /// Each decoded alone: one malformed entry is skipped with a note, not the whole scan.
            var containers: [JSONValue]?
            var error: String?
        }

        var engine: Engine?
        var searched: [String]?
    }

    struct Version: Decodable {
        var Version: String?
        var ApiVersion: String?
    }

    struct Container: Decodable {
        struct Port: Decodable {
            var IP: String?
            var PrivatePort: Int
            var PublicPort: Int?
            var `Type`: String
        }

        var Id: String
        var Names: [String]?
        var Image: String?
        var State: String?
        var Status: String?
        var Created: Int?
        var Ports: [Port]?
    }

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "scanner/scan" else { throw PluginError("unknown method \(method); this scanner answers scanner/scan") }
        let request = try decodeJSON(Input.self, from: input.isEmpty ? Array("{}".utf8) : input)
        guard let engine = request.engine else {
            let searched = request.searched.map { " (looked for \($0.joined(separator: ", ")))" } ?? ""
            return try encodeJSON(ScanResult(assets: [], notes: ["no container engine found\(searched)"]))
        }
        if let error = engine.error {
            return try encodeJSON(ScanResult(assets: [], notes: ["container engine at \(engine.socket) did not answer: \(error)"]))
        }
        let engineVersion = engine.version?.Version ?? "unknown"
        var notes: [String] = [], skipped = 0
        let containers = (engine.containers ?? []).enumerated().compactMap { number, entry -> Container? in
            do { return try decodeJSON(Container.self, from: entry) } catch {
                skipped += 1
                // The first few, named; a flood of bad entries must not outgrow the answer's frame.
                if skipped <= Self.namedSkips { notes.append("container \(number) skipped: \((error as? PluginError)?.message ?? "\(error)")") }
                return nil
            }
        }
        if skipped > Self.namedSkips { notes.append("\(skipped - Self.namedSkips) more containers skipped as malformed") }
        let assets = containers.map { container in
            let name = container.Names?.first.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? String(container.Id.prefix(12))
            let ports = (container.Ports ?? []).map { port in
                port.PublicPort.map { "\(port.IP ?? "0.0.0.0"):\($0)->\(port.PrivatePort)/\(port.Type)" } ?? "\(port.PrivatePort)/\(port.Type)"
            }.sorted()
            return Asset(kind: "container", key: container.Id, name: name,
                         properties: ["image": container.Image ?? "?", "state": container.State ?? "?", "status": container.Status ?? "?",
                                      "created": container.Created.map(String.init) ?? "?", "ports": ports.joined(separator: ", "),
                                      "engine": "docker \(engineVersion) at \(engine.socket)", "id": String(container.Id.prefix(12))])
        }
        return try encodeJSON(ScanResult(assets: assets, notes: notes))
    }
}

@_cdecl("brane_plugin_entry")
public func braneContainersEntry() -> UnsafeRawPointer { exportPlugin(Containers.self) }
