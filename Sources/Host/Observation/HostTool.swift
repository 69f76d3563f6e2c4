import Foundation

/// A read-only tool the host answers itself from a neuron's observation store, with no plugin
/// process: what the neuron's sensors read, what its scanners found, what its specialists
/// raised. A neuron enables them by name in its `host:` section (`HostAccess`);
/// `HostObservations` answers them, and MCP resources are read through the same answers.
public enum HostTool: String, CaseIterable, Sendable, Codable {
    case latestReading = "latest_reading"
    case sensorHistory = "sensor_history"
    case assets
    case assetChanges = "asset_changes"
    case alerts
    case healthSummary = "health_summary"

    /// The kinds of plugin whose observations its answers hold: its data carries their tiers.
    public var sources: [PluginKind] {
        switch self {
        case .latestReading, .sensorHistory: [.sensor]
        case .assets, .assetChanges: [.scanner]
        case .alerts: [.specialist]
        case .healthSummary: [.sensor, .scanner, .specialist]
        }
    }

    public var summary: String {
        switch self {
        case .latestReading: "The newest stored reading of one of this neuron's sensors, or of each of them."
        case .sensorHistory: "A sensor's readings over a time range, downsampled to at most `points` evenly spaced readings; `metric` picks one number."
        case .assets: "Assets this neuron's scanners found (present ones unless includeRemoved), optionally of one kind and with a name containing `name`."
        case .assetChanges: "Assets this neuron's scanners saw added, changed or removed since a time, newest last."
        case .alerts: "Alerts this neuron's specialists raised since a time (default the last 7 days), optionally of one specialist, newest last."
        case .healthSummary: "One call for the state of this neuron: each sensor's newest reading, alerts of the last 7 days, assets by kind and the last scans."
        }
    }

    /// "since" as a tool takes it: a duration back from now or a time.
    static let sinceSchema: JSONValue = ["type": "string", "maxLength": 64,
                                         "description": "How far back: a duration such as 24h or 7d, or a time such as 2026-12-01T00:00:00Z."]

    static func limitSchema(default value: Int) -> JSONValue {
        ["type": "integer", "minimum": 1, "maximum": .number(Double(HostObservations.maximumItems)),
         "description": .string("At most this many, newest kept (default \(value)).")]
    }

    /// Its inputSchema for a neuron with these sensors and specialists: ids are enums, so a
    /// model is shown exactly what it may ask for and a wrong one is refused before any read.
    func inputSchema(sensors: [String], specialists: [String]) -> JSONValue {
        func choice(_ ids: [String], _ what: String) -> JSONValue {
            ["type": "string", "enum": .array(ids.map(JSONValue.string)), "description": .string(what)]
        }
        let properties: [String: JSONValue]
        var required: [JSONValue] = []
        switch self {
        case .latestReading:
            properties = ["sensor": choice(sensors, "The sensor (default: every sensor of the neuron).")]
        case .sensorHistory:
            properties = ["sensor": choice(sensors, "The sensor."),
                          "metric": ["type": "string", "maxLength": 128, "description": "One metric of its readings, e.g. memory.usedPercent (default: all of them)."],
                          "since": Self.sinceSchema,
                          "points": ["type": "integer", "minimum": 1, "maximum": .number(Double(HostObservations.maximumItems)),
                                     "description": "At most this many readings, one per equal slice of the range (default 100)."]]
            required = ["sensor"]
        case .assets:
            properties = ["kind": ["type": "string", "maxLength": 128, "description": "Only assets of this kind, e.g. process or port."],
                          "name": ["type": "string", "maxLength": 128, "description": "Only assets whose name contains this text (ignoring ASCII case)."],
                          "includeRemoved": ["type": "boolean", "description": "Also assets a later scan no longer found."],
                          "limit": Self.limitSchema(default: HostObservations.defaultItems)]
        case .assetChanges:
            properties = ["since": Self.sinceSchema, "limit": Self.limitSchema(default: HostObservations.defaultItems)]
        case .alerts:
            properties = ["since": Self.sinceSchema, "specialist": choice(specialists, "Only this specialist's alerts."),
                          "limit": Self.limitSchema(default: HostObservations.defaultAlerts)]
        case .healthSummary:
            properties = [:]
        }
        var schema: [String: JSONValue] = ["type": "object", "properties": .object(properties), "additionalProperties": false]
        if !required.isEmpty { schema["required"] = .array(required) }
        return .object(schema)
    }
}
