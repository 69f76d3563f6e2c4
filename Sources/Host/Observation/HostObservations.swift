import Foundation

/// Answers a neuron's host tools from its observation store: only the neuron's own sensors,
/// scanners and specialists are read (the store is shared by every neuron of the home). Every
/// answer is a JSON object bounded in items (`maximumItems`) and bytes (`answerLimit`: items past
/// it are left out and `truncated` says so), and carries the privacy tier of the data it may hold —
/// the most sensitive tier among the plugins in the question's scope, `privacyTier` in the JSON
/// and `ToolResult.tier` for `DataFlow`.
public struct HostObservations: Sendable {
    public static let maximumItems = 500
    public static let defaultItems = 100
    public static let defaultAlerts = 50
    /// The most bytes an answer's JSON holds (before the envelope): a model's context and a
    /// client's memory are not a dump of the store.
    public static let answerLimit = 256 << 10
    static let defaultHistory: TimeInterval = 86_400
    static let defaultAlertWindow: TimeInterval = 7 * 86_400

    public let neuron: ResolvedNeuron
    let store: ObservationStore
    /// The neuron's plugins of each source kind, in file order, with their tiers.
    let sensors: [(id: String, tier: PrivacyTier)]
    let scanners: [(id: String, tier: PrivacyTier)]
    let specialists: [(id: String, tier: PrivacyTier)]

    public init(neuron: ResolvedNeuron, store: ObservationStore) {
        self.neuron = neuron
        self.store = store
        func tiers(_ uses: [PluginUse]) -> [(String, PrivacyTier)] { uses.map { ($0.id, neuron.bundle($0.id).manifest.tier) } }
        sensors = tiers(neuron.config.sensors.map(\.plugin))
        scanners = tiers(neuron.config.scanners)
        specialists = tiers(neuron.config.specialists)
    }

    /// The tier of whatever `tool` can answer: the most sensitive of its sources (the neuron's
    /// own tier when it has none, so an empty answer claims no more reach than the neuron).
    public static func tier(of tool: HostTool, in neuron: ResolvedNeuron) -> PrivacyTier {
        tier(of: tool, among: neuron.config.allPlugins.map { neuron.bundle($0.id).manifest }, neuronTier: neuron.config.privacyTier)
    }

    /// The same, from the manifests of a neuron's plugins (as validation has them).
    static func tier(of tool: HostTool, among manifests: [Manifest], neuronTier: PrivacyTier) -> PrivacyTier {
        manifests.filter { tool.sources.contains($0.kind) }.map(\.tier).min() ?? neuronTier
    }

    /// `tool` as the neuron offers it to its model and MCP clients.
    public static func exposedTool(_ tool: HostTool, in neuron: ResolvedNeuron) -> ExposedTool {
        ExposedTool(name: tool.rawValue, description: tool.summary,
                    inputSchema: tool.inputSchema(sensors: neuron.config.sensors.map(\.plugin.id), specialists: neuron.config.specialists.map(\.id)),
                    use: PluginUse(id: "host"), tier: tier(of: tool, in: neuron), target: .host(tool))
    }

    /// A refused question: an error result at the tier its scope would have had.
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// Answers `tool` (arguments already checked against its inputSchema).
    public func answer(_ tool: HostTool, arguments: JSONValue, now: Date = Date()) -> ToolResult {
        let tier = Self.tier(of: tool, in: neuron)
        do {
            let (answer, answerTier) = try compute(tool, arguments, now: now)
            var object = answer
            object["privacyTier"] = .number(Double(answerTier.rawValue))
            let json = JSONValue.object(object)
            return ToolResult(isError: false, text: json.serialized(), structured: json, tier: answerTier)
        } catch let refusal as Refusal {
            return ToolResult(isError: true, text: "\(tool.rawValue): \(refusal)", structured: nil, tier: tier)
        } catch {
            return ToolResult(isError: true, text: "\(tool.rawValue): the observation store could not be read: \(error)", structured: nil, tier: tier)
        }
    }

    private func compute(_ tool: HostTool, _ arguments: JSONValue, now: Date) throws -> ([String: JSONValue], PrivacyTier) {
        let limit = arguments["limit"]?.numberValue.map { Int($0) }
        switch tool {
        case .latestReading:
            let scope = try pick(arguments["sensor"], from: sensors)
            var items = BoundedItems()
            for sensor in scope {
                guard let reading = try store.latestReading(sensor.id) else { continue }
                items.append(Self.json(reading))
            }
            return (["readings": items.array, "truncated": .bool(items.truncated)], tier(scope))
        case .sensorHistory:
            let scope = try pick(arguments["sensor"], from: sensors)
            let sensor = scope[0]
            let from = try since(arguments["since"], default: Self.defaultHistory, now: now)
            let points = arguments["points"]?.numberValue.map { Int($0) } ?? Self.defaultItems
            let (readings, inRange) = try store.sampledHistory(sensor.id, in: from...max(from, now), points: points)
            let metric = arguments["metric"]?.stringValue
            if let metric, !readings.isEmpty, !readings.contains(where: { $0.reading.metrics[metric] != nil }) {
                // The names came from a plugin, through the store: shown sanitised, and few.
                let known = Set(readings.flatMap(\.reading.metrics.keys)).sorted()
                let hint = closestMatch(to: metric, in: known).map { "; did you mean '\(UntrustedText.sanitized($0, limit: 128))'?" } ?? ""
                let shown = known.prefix(20).map { UntrustedText.sanitized($0, limit: 64) }.joined(separator: ", ")
                throw Refusal(description: "\(sensor.id) has no metric '\(UntrustedText.sanitized(metric, limit: 128))'\(hint) (its readings have: \(shown)\(known.count > 20 ? ", …" : ""))")
            }
            var items = BoundedItems()
            for reading in readings {
                if let metric {
                    guard let value = reading.reading.metrics[metric] else { continue }
                    items.append(["takenAt": .string(Timestamp.string(reading.takenAt)), "value": .number(value)])
                } else {
                    items.append(Self.json(reading))
                }
            }
            var answer: [String: JSONValue] = ["sensor": .string(sensor.id), "since": .string(Timestamp.string(from)),
                                               "readingsInRange": .number(Double(inRange)), "downsampled": .bool(inRange > readings.count),
                                               "points": items.array, "truncated": .bool(items.truncated)]
            if let metric { answer["metric"] = .string(metric) }
            return (answer, sensor.tier)
        case .assets:
            let (assets, total) = try store.assets(scanners: scanners.map(\.id), kind: arguments["kind"]?.stringValue,
                                                   nameContains: arguments["name"]?.stringValue,
                                                   includeRemoved: arguments["includeRemoved"] == .bool(true), limit: limit ?? Self.defaultItems)
            var items = BoundedItems()
            for asset in assets { items.append(Self.json(asset)) }
            return (["assets": items.array, "total": .number(Double(total)), "truncated": .bool(items.truncated || total > items.count)], tier(scanners))
        case .assetChanges:
            let from = try since(arguments["since"], default: Self.defaultHistory, now: now)
            let (changes, total) = try store.assetChanges(scanners: scanners.map(\.id), since: from, limit: limit ?? Self.defaultItems)
            var items = BoundedItems()
            for dated in changes {
                items.append(["at": .string(Timestamp.string(dated.at)), "scanner": .string(dated.scanner), "assetID": .string(dated.change.assetID),
                              "change": .string(dated.change.change.rawValue), "detail": .object(dated.change.detail.mapValues(JSONValue.string))])
            }
            return (["since": .string(Timestamp.string(from)), "changes": items.array, "total": .number(Double(total)),
                     "truncated": .bool(items.truncated || total > items.count)], tier(scanners))
        case .alerts:
            let scope = arguments["specialist"] == nil ? specialists : try pick(arguments["specialist"], from: specialists)
            let from = try since(arguments["since"], default: Self.defaultAlertWindow, now: now)
            let (alerts, total) = try store.newestAlerts(neuron: neuron.config.id, specialists: scope.map(\.id), since: from,
                                                         limit: limit ?? Self.defaultAlerts)
            var items = BoundedItems()
            for alert in alerts { items.append(Self.json(alert)) }
            return (["since": .string(Timestamp.string(from)), "alerts": items.array, "total": .number(Double(total)),
                     "truncated": .bool(items.truncated || total > items.count)], tier(scope))
        case .healthSummary:
            var readings = BoundedItems(limit: Self.answerLimit / 2)
            for sensor in sensors {
                if let reading = try store.latestReading(sensor.id) { readings.append(Self.json(reading)) }
            }
            let week = now.addingTimeInterval(-Self.defaultAlertWindow)
            let (recent, total) = try store.newestAlerts(neuron: neuron.config.id, specialists: specialists.map(\.id), since: week, limit: 5)
            var alerts = BoundedItems(limit: Self.answerLimit / 4)
            for alert in recent { alerts.append(Self.json(alert)) }
            var kinds = BoundedItems(limit: Self.answerLimit / 8)
            for (kind, count) in try store.assetCounts(scanners: scanners.map(\.id)).sorted(by: { $0.key < $1.key }) {
                kinds.append(["kind": .string(kind), "present": .number(Double(count))])
            }
            var scans = BoundedItems(limit: Self.answerLimit / 8)
            for scan in try store.lastScans(scanners: scanners.map(\.id)) {
                scans.append(["scanner": .string(scan.scanner), "at": .string(Timestamp.string(scan.at)), "assets": .number(Double(scan.assets))])
            }
            return (["neuron": .string(neuron.config.id), "at": .string(Timestamp.string(now)), "sensors": readings.array,
                     "alerts": ["last7Days": .number(Double(total)), "newest": alerts.array],
                     "assets": kinds.array, "lastScans": scans.array,
                     "truncated": .bool(readings.truncated || alerts.truncated || kinds.truncated || scans.truncated)],
                    tier(sensors + scanners + specialists))
        }
    }

    /// The plugins a question names (`id`, which the schema checked is one of them), or all.
    private func pick(_ id: JSONValue?, from plugins: [(id: String, tier: PrivacyTier)]) throws -> [(id: String, tier: PrivacyTier)] {
        guard let id = id?.stringValue else {
            guard !plugins.isEmpty else { throw Refusal(description: "neuron \(neuron.config.id) enables none of the plugins this tool reads") }
            return plugins
        }
        guard let plugin = plugins.first(where: { $0.id == id }) else {
            throw Refusal(description: "'\(UntrustedText.sanitized(id, limit: 128))' is not one of neuron \(neuron.config.id)'s plugins")
        }
        return [plugin]
    }

    private func tier(_ plugins: [(id: String, tier: PrivacyTier)]) -> PrivacyTier {
        plugins.map(\.tier).min() ?? neuron.config.privacyTier
    }

    /// `since`: a duration back from `now` ("24h", "7d") or a time; absent, `default` seconds back.
    private func since(_ value: JSONValue?, default seconds: TimeInterval, now: Date) throws -> Date {
        guard let text = value?.stringValue else { return now.addingTimeInterval(-seconds) }
        if let milliseconds = DurationText.milliseconds(text) { return now.addingTimeInterval(-Double(milliseconds) / 1000) }
        if let date = Timestamp.date(text) { return date }
        throw Refusal(description: "since: expected a duration such as 24h or 7d, or a time such as 2026-12-01T00:00:00Z; found '\(UntrustedText.sanitized(text, limit: 64))'")
    }

    static func json(_ reading: StoredReading) -> JSONValue {
        var object: [String: JSONValue] = ["sensor": .string(reading.sensor), "takenAt": .string(Timestamp.string(reading.takenAt)),
                                           "changed": .array(reading.changed.map(JSONValue.string))]
        object["metrics"] = reading.reading.json["metrics"] ?? .object([:])
        if let states = reading.reading.json["states"] { object["states"] = states }
        return .object(object)
    }

    static func json(_ alert: StoredAlert) -> JSONValue {
        ["specialist": .string(alert.specialist), "rule": .string(alert.rule), "raisedAt": .string(Timestamp.string(alert.raisedAt)),
         "alert": alert.alert]
    }

    static func json(_ asset: CatalogAsset) -> JSONValue {
        ["id": .string(asset.id), "kind": .string(asset.kind), "name": .string(asset.name), "scanner": .string(asset.scanner),
         "properties": .object(asset.properties.mapValues(JSONValue.string)), "firstSeen": .string(Timestamp.string(asset.firstSeen)),
         "lastSeen": .string(Timestamp.string(asset.lastSeen)), "present": .bool(asset.present)]
    }
}

/// A list that stops taking items once their JSON reaches `limit` bytes: what a plugin stored
/// (a reading, an alert) can be large, and an answer is bounded whatever it holds.
struct BoundedItems {
    private(set) var items: [JSONValue] = []
    private(set) var truncated = false
    private var bytes = 0
    let limit: Int

    init(limit: Int = HostObservations.answerLimit) { self.limit = limit }

    var count: Int { items.count }
    var array: JSONValue { .array(items) }

    mutating func append(_ item: JSONValue) {
        guard !truncated else { return }
        let size = item.serialized().utf8.count + 1
        guard bytes + size <= limit else { truncated = true; return }
        bytes += size
        items.append(item)
    }
}
