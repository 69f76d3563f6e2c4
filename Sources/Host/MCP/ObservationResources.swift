import Foundation

/// A neuron's observations as MCP resources, `brane://<neuron>/…`: each resource is read as the
/// answer of a host tool with its defaults (`HostObservations`), so a resource and a tool never
/// disagree, and only the resources of the host tools the neuron lists exist: `resources: true`
/// exposes nothing its `host.tools` does not. URIs are canonical — every byte outside RFC 3986's unreserved set percent-encoded,
/// in upper-case hex — and one that is not (a lower-case escape, `%41` for `A`, an escaped `/`,
/// bytes that are not UTF-8) names no resource: a subscription cannot be doubled by a twin.
public struct ObservationResources: Sendable {
    public enum Resource: Hashable, Sendable {
        case summary, alerts, assetChanges
        /// Every asset (nil) or those of one kind.
        case assets(kind: String?)
        case latest(sensor: String)
        case history(sensor: String)

        /// The host tool that reads it, and that tool's arguments.
        var question: (HostTool, JSONValue) {
            switch self {
            case .summary: (.healthSummary, [:])
            case .alerts: (.alerts, [:])
            case .assetChanges: (.assetChanges, [:])
            case .assets(nil): (.assets, [:])
            case .assets(let kind?): (.assets, ["kind": .string(kind)])
            case .latest(let sensor): (.latestReading, ["sensor": .string(sensor)])
            case .history(let sensor): (.sensorHistory, ["sensor": .string(sensor)])
            }
        }
    }

    /// JSON-RPC error for a URI that names no resource (MCP: "Resource not found").
    public static let notFound = -32002
    /// The most asset kinds `resources/list` names (each is also reachable by the template).
    static let listedKinds = 100
    /// The longest URI that names a resource.
    static let uriLimit = 2048

    let observations: HostObservations
    private let enabled: Set<HostTool>
    private var neuron: String { observations.neuron.config.id }
    private var sensors: [String] { observations.sensors.map(\.id) }

    public init(_ observations: HostObservations) {
        self.observations = observations
        enabled = Set(observations.neuron.config.host.tools)
    }

    public func uri(_ resource: Resource) -> String {
        let base = "brane://\(neuron)/"
        return switch resource {
        case .summary: base + "summary"
        case .alerts: base + "alerts"
        case .assetChanges: base + "asset-changes"
        case .assets(nil): base + "assets"
        case .assets(let kind?): base + "assets/" + Self.encode(kind)
        case .latest(let sensor): base + "sensors/\(Self.encode(sensor))/latest"
        case .history(let sensor): base + "sensors/\(Self.encode(sensor))/history"
        }
    }

    /// The resource `uri` names, or nil: exactly this neuron's, in canonical form, and a sensor
    /// the neuron enables.
    public func resource(_ uri: String) -> Resource? {
        let base = "brane://\(neuron)/"
        guard uri.utf8.count <= Self.uriLimit, uri.hasPrefix(base) else { return nil }
        let parts = uri.dropFirst(base.count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let resource: Resource? = switch parts.count {
        case 1: ["summary": .summary, "alerts": .alerts, "asset-changes": .assetChanges, "assets": .assets(kind: nil)][parts[0]]
        case 2 where parts[0] == "assets": Self.decode(parts[1]).flatMap { $0.isEmpty ? nil : .assets(kind: $0) }
        case 3 where parts[0] == "sensors" && parts[2] == "latest": Self.decode(parts[1]).map { .latest(sensor: $0) }
        case 3 where parts[0] == "sensors" && parts[2] == "history": Self.decode(parts[1]).map { .history(sensor: $0) }
        default: nil
        }
        guard let resource, enabled.contains(resource.question.0) else { return nil }
        switch resource {
        case .latest(let sensor), .history(let sensor): return sensors.contains(sensor) ? resource : nil
        default: return resource
        }
    }

    /// `resources/list`'s resources: the summary, alerts, asset changes and assets, the assets of
    /// each kind present (at most `listedKinds`), and each sensor's latest reading and history.
    public func list() throws -> [JSONValue] {
        var resources: [(Resource, String, String)] = [
            (.summary, "health summary", "Each sensor's newest reading, alerts of the last 7 days, assets by kind and the last scans."),
            (.alerts, "alerts", "Alerts this neuron's specialists raised in the last 7 days (newest 50)."),
            (.assetChanges, "asset changes", "What this neuron's scanners saw added, changed or removed in the last 24 hours."),
            (.assets(kind: nil), "assets", "Assets this neuron's scanners found."),
        ]
        // Only kinds with a URI clients keep as it is (URL parsers resolve `.` and `..` away, even
        // encoded) and short enough to read; each name shown sanitised (a scanner chose it).
        let kinds = !enabled.contains(.assets) ? [] : try observations.store.assetCounts(scanners: observations.scanners.map(\.id)).keys.sorted()
            .filter { !["", ".", ".."].contains($0) && uri(.assets(kind: $0)).utf8.count <= Self.uriLimit }.prefix(Self.listedKinds)
        for kind in kinds {
            resources.append((.assets(kind: kind), "assets: \(UntrustedText.sanitized(kind, limit: 64))", "Assets of this kind that this neuron's scanners found."))
        }
        for sensor in sensors {
            resources.append((.latest(sensor: sensor), "\(sensor) latest", "The newest stored reading of \(sensor)."))
            resources.append((.history(sensor: sensor), "\(sensor) history", "\(sensor)'s readings of the last 24 hours, at most 100."))
        }
        return resources.filter { enabled.contains($0.0.question.0) }.map { resource, name, description in
            ["uri": .string(uri(resource)), "name": .string(name), "description": .string(description), "mimeType": "application/json"]
        }
    }

    /// `resources/templates/list`'s templates (RFC 6570 level 1).
    public func templates() -> [JSONValue] {
        let base = "brane://\(neuron)/"
        let templates: [(HostTool, JSONValue)] = [
            (.assets, ["uriTemplate": .string(base + "assets/{kind}"), "name": "assets of a kind", "mimeType": "application/json",
                       "description": "Assets of one kind (process, port, container…) that this neuron's scanners found."]),
            (.latestReading, ["uriTemplate": .string(base + "sensors/{sensor}/latest"), "name": "a sensor's latest reading", "mimeType": "application/json",
                              "description": .string("The newest stored reading of a sensor: \(sensors.joined(separator: ", ")).")]),
            (.sensorHistory, ["uriTemplate": .string(base + "sensors/{sensor}/history"), "name": "a sensor's history", "mimeType": "application/json",
                              "description": "A sensor's readings of the last 24 hours, at most 100."]),
        ]
        return templates.filter { enabled.contains($0.0) }.map(\.1)
    }

    /// `resources/read`'s answer for `resource`: its host tool's answer, and the tier of its data.
    public func read(_ resource: Resource) -> ToolResult {
        let (tool, arguments) = resource.question
        return observations.answer(tool, arguments: arguments)
    }

    private static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    /// A segment percent-encoded; `.` and `..` in full, which RFC 3986 would otherwise resolve away.
    static func encode(_ segment: String) -> String {
        if segment == "." || segment == ".." { return String(repeating: "%2E", count: segment.count) }
        var out = ""
        for byte in segment.utf8 {
            if unreserved.contains(byte) { out.unicodeScalars.append(Unicode.Scalar(byte)) }
            else { out += "%" + hex([byte]).uppercased() }
        }
        return out
    }

    /// The text a segment encodes, only when the segment is its canonical encoding.
    static func decode(_ segment: String) -> String? {
        var bytes: [UInt8] = []
        var input = Array(segment.utf8)[...]
        while let byte = input.popFirst() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard input.count >= 2, let value = UInt8(String(decoding: input.prefix(2), as: UTF8.self), radix: 16) else { return nil }
            bytes.append(value)
            input = input.dropFirst(2)
        }
        guard let text = String(validating: bytes, as: UTF8.self), encode(text) == segment else { return nil }
        return text
    }
}
