import Foundation

/// Runs one scanner sandboxed and records what it found in the asset catalog: the host supplies
/// the inputs a sandbox cannot gather (the Docker Engine's answers for `docker-engine` targets)
/// and adds what only it can see (which process owns each listening port).
public enum Scanning {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public static func scan(_ plugin: SupervisedPlugin, into store: ObservationStore,
                            dockerInput: () -> JSONValue = { DockerEngine.scannerInput() }) throws -> ScanSummary {
        let manifest = plugin.plan.bundle.manifest
        let input: JSONValue = manifest.scanner?.targets.contains("docker-engine") == true ? dockerInput() : .object([:])
        let bytes: [UInt8]
        do {
            switch try plugin.call(method: "scanner/scan", input: Array(input.serialized().utf8)) {
            case .result(let answer): bytes = answer
            case .pluginError(let error):
                throw Failure(description: "\(manifest.id): \(PluginInstance.CallOutcome.errorMessage(error))")
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(manifest.id): \(error)")
        }
        let answer: JSONValue
        do { answer = try JSONValue(parsing: bytes) } catch { throw Failure(description: "\(manifest.id) answered invalid JSON: \(error)") }
        let owners = (answer["assets"]?.arrayValue ?? []).contains { $0["kind"]?.stringValue == "port" } ? SocketOwners.current() : [:]
        var assets: [(kind: String, key: String, name: String, properties: [String: String])] = []
        for item in answer["assets"]?.arrayValue ?? [] {
            guard let kind = item["kind"]?.stringValue, let key = item["key"]?.stringValue else {
                throw Failure(description: "\(manifest.id) answered an asset without kind and key: \(item.serialized())")
            }
            var properties: [String: String] = [:]
            if case .object(let values)? = item["properties"] { properties = values.compactMapValues(\.stringValue) }
            if kind == "port", let inode = properties["inode"] {
                properties.removeValue(forKey: "inode")  // changes with every restart; the owner is what matters
                if let owner = owners[inode] { properties["process"] = "\(owner.name) (pid \(owner.pid))" }
            }
            assets.append((kind, key, item["name"]?.stringValue ?? key, properties))
        }
        return try store.recordScan(scanner: manifest.id, assets: assets, notes: answer["notes"]?.arrayValue?.compactMap(\.stringValue) ?? [])
    }
}
