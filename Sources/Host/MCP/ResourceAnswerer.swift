import Foundation

/// Answers an MCP session's `resources/*` requests from the neuron's observations and tells
/// its subscribers when a resource changed (`notifications/resources/updated`). Changes are
/// seen by polling the observation store's feeds (`ObservationStore.Feed`) every
/// `pollInterval` while anything is subscribed — a rowid range read, the same whether the store
/// was written by this process (`neuron run --mcp`) or by another `neuron run`. Each new alert is
/// one notification of the alerts resource, up to `notificationsPerPoll` a poll; past that the
/// rest are told as one more.
final class ResourceAnswerer: @unchecked Sendable {
    static let methods: Set<String> = ["resources/list", "resources/read", "resources/templates/list", "resources/subscribe", "resources/unsubscribe"]
    /// The most resources one session may subscribe to.
    static let subscriptionLimit = 256
    static let pollInterval: TimeInterval = 0.02
    static let notificationsPerPoll = 16
    /// New rows read from a feed in one poll; more wait for the next.
    static let rowsPerPoll = 1_000

    let resources: ObservationResources
    /// Who writes this neuron's rows of each feed (`ObservationStore.Feed`): its sensors, its
    /// scanners, and `neuron/specialist` for its specialists' alerts.
    private let writers: [ObservationStore.Feed: Set<String>]
    private let notify: @Sendable (JSONValue) -> Void
    private let condition = NSCondition()
    private var subscribed: Set<ObservationResources.Resource> = []
    private var stopped = false
    private var watching = false
    /// The newest row of each feed already told of; read and moved by the watch's thread alone.
    private var marks: [ObservationStore.Feed: Int64] = [:]

    init(_ resources: ObservationResources, notify: @escaping @Sendable (JSONValue) -> Void) {
        self.resources = resources
        self.notify = notify
        let observations = resources.observations
        writers = [.alerts: Set(observations.specialists.map { "\(observations.neuron.config.id)/\($0.id)" }),
                   .readings: Set(observations.sensors.map(\.id)), .scans: Set(observations.scanners.map(\.id))]
    }

    /// The response to a `resources/*` request.
    func answer(id: JSONValue, method: String, params: JSONValue?) -> JSONValue {
        func result(_ value: JSONValue) -> JSONValue { ["jsonrpc": "2.0", "id": id, "result": value] }
        func invalid(_ detail: String) -> JSONValue {
            JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.invalidParams, "Invalid params: \(detail)")
        }
        switch method {
        case "resources/list", "resources/templates/list":
            // Everything fits one page: a cursor can only be one this server never gave.
            if params?["cursor"] != nil { return invalid("\(method) has one page; no cursor is valid") }
            if method == "resources/templates/list" { return result(["resourceTemplates": .array(resources.templates())]) }
            do { return result(["resources": .array(try resources.list())]) } catch {
                return JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.internalError, "Internal error: the observation store could not be read: \(error)")
            }
        default:
            guard let uri = params?["uri"]?.stringValue else { return invalid("\(method) needs params.uri, a string") }
            guard let resource = resources.resource(uri) else {
                return JSONRPCLine.errorResponse(id: id, code: ObservationResources.notFound,
                                                 "Resource not found: \(UntrustedText.sanitized(uri, limit: 256))",
                                                 data: ["uri": .string(UntrustedText.sanitized(uri, limit: 2048))])
            }
            switch method {
            case "resources/read":
                let answer = resources.read(resource)
                guard !answer.isError else {
                    return JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.internalError, "Internal error: \(answer.text)")
                }
                return result(["contents": [["uri": .string(resources.uri(resource)), "mimeType": "application/json", "text": .string(answer.text)]]])
            case "resources/subscribe":
                let added = condition.withLock { () -> Bool in
                    guard subscribed.contains(resource) || subscribed.count < Self.subscriptionLimit else { return false }
                    subscribed.insert(resource)
                    return true
                }
                guard added else { return invalid("a session may subscribe to at most \(Self.subscriptionLimit) resources; unsubscribe from one first") }
                startWatching()
                return result([:])
            default:
                condition.withLock { _ = subscribed.remove(resource) }
                return result([:])
            }
        }
    }

    /// Ends the watch (the session is over); returns once it stopped, or after 2 s (a
    /// notification stuck on a client that stopped reading).
    func stop() {
        let deadline = Date().addingTimeInterval(2)
        condition.withLock {
            stopped = true
            condition.broadcast()
            while watching && condition.wait(until: deadline) {}
        }
    }

    private func startWatching() {
        let start = condition.withLock { () -> Bool in
            guard !watching && !stopped else { return false }
            watching = true
            return true
        }
        guard start else { return }
        let store = resources.observations.store
        // The marks are taken now: what was stored before the first subscription is no news.
        for feed in ObservationStore.Feed.allCases { marks[feed] = (try? store.newestRowID(feed)) ?? 0 }
        let thread = Thread { [self] in
            while true {
                let polling = condition.withLock { () -> Bool in
                    if !stopped { _ = condition.wait(until: Date().addingTimeInterval(Self.pollInterval)) }
                    return !stopped
                }
                guard polling else { break }
                for uri in changes() { notify(["jsonrpc": "2.0", "method": "notifications/resources/updated", "params": ["uri": .string(uri)]]) }
            }
            condition.withLock {
                watching = false
                condition.broadcast()
            }
        }
        thread.name = "mcp-resources"
        thread.start()
    }

    /// The URIs of subscribed resources that changed since `marks`, which move on: one per new
    /// alert of this neuron, one for each resource a new reading or scan changed.
    private func changes() -> [String] {
        let store = resources.observations.store
        var changed: [ObservationResources.Resource] = []
        var newAlerts = 0
        var touched: Set<ObservationStore.Feed> = [], sensors: Set<String> = []
        for feed in ObservationStore.Feed.allCases {
            guard let rows = try? store.rows(feed, after: marks[feed] ?? 0, limit: Self.rowsPerPoll), let last = rows.last else { continue }
            marks[feed] = last.id
            let ours = rows.filter { writers[feed]?.contains($0.by) == true }
            guard !ours.isEmpty else { continue }
            touched.insert(feed)
            if feed == .alerts { newAlerts = ours.count }
            if feed == .readings { sensors.formUnion(ours.map(\.by)) }
        }
        guard !touched.isEmpty else { return [] }
        let subscriptions = condition.withLock { subscribed }
        for resource in subscriptions {
            let repeats: Int = switch resource {
            case .summary: 1
            case .alerts: touched.contains(.alerts) ? min(newAlerts, Self.notificationsPerPoll + 1) : 0   // the last one for the rest
            case .assets, .assetChanges: touched.contains(.scans) ? 1 : 0
            case .latest(let sensor), .history(let sensor): sensors.contains(sensor) ? 1 : 0
            }
            changed += Array(repeating: resource, count: repeats)
        }
        return changed.sorted { resources.uri($0) < resources.uri($1) }.map(resources.uri)
    }
}
