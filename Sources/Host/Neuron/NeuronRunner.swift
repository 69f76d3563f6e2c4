import Foundation

/// The long-running side of a neuron: samples its sensors on the scheduler, rescans with its
/// scanners, and feeds events from its inbox through its specialists' rules, writing readings,
/// assets and alerts to the observation store. Driven by `step`, so the caller owns the loop
/// (and with it signals and reloads); `stop` ends every plugin process it started.
public final class NeuronRunner: @unchecked Sendable {
    public enum Event: Sendable {
        case sensor(SensorScheduler.Event)
        case scanned(ScanSummary)
        case scanFailed(scanner: String, String)
        case alert(StoredAlert)
        /// An inbox file was read: how many events it had, and lines that were skipped or not reached.
        case fed(file: String, events: Int, alerts: Int, problems: [String])
    }

    /// What a run did, for the report at the end.
    public struct Tally: Sendable, Encodable {
        public var sensorSamples = 0
        public var readingsStored = 0
        public var sensorFailures = 0
        public var scans = 0
        public var assets = 0
        public var events = 0
        public var alerts = 0
        public var eventsSkipped = 0

        public init() {}

        /// Two runs' tallies together (a run and the one its reload replaced).
        public static func + (lhs: Self, rhs: Self) -> Self {
            var sum = lhs
            sum.sensorSamples += rhs.sensorSamples
            sum.readingsStored += rhs.readingsStored
            sum.sensorFailures += rhs.sensorFailures
            sum.scans += rhs.scans
            sum.assets += rhs.assets
            sum.events += rhs.events
            sum.alerts += rhs.alerts
            sum.eventsSkipped += rhs.eventsSkipped
            return sum
        }
    }

    public let neuron: ResolvedNeuron
    public let inbox: EventInbox
    public private(set) var tally = Tally()
    private let store: ObservationStore
    private let scheduler: SensorScheduler
    private var scanners: [(plugin: SupervisedPlugin, interval: Double?, due: Date)]
    private let specialists: SpecialistRouter
    /// Event kind → the specialists whose rules consume it.
    private let consumers: [String: [String]]
    private var nextInboxCheck = Date.distantPast

    public init(neuron: ResolvedNeuron, runner: String, store: ObservationStore, inboxRoot: String,
                onLog: @escaping @Sendable (String, PluginLogLine) -> Void = { _, _ in }) throws {
        self.neuron = neuron
        self.store = store
        let config = neuron.config
        scheduler = try SensorScheduler(sensors: config.sensors.map { use in
            SensorScheduler.Sensor(plugin: SupervisedPlugin(plan: try neuron.plan(for: use.plugin), runner: runner, onLog: onLog),
                                   thresholds: use.thresholds, interval: use.plugin.intervalSeconds)
        }, store: store)
        scanners = try config.scanners.map { use in
            (SupervisedPlugin(plan: try neuron.plan(for: use), runner: runner, onLog: onLog), use.intervalSeconds, Date.distantPast)
        }
        specialists = SpecialistRouter(locator: .includingInstalled(explicit: neuron.bundles.mapValues(\.directory)),
                                       runner: runner, onLog: onLog, plan: neuron.plan(for:))
        var consumers: [String: [String]] = [:]
        for use in config.specialists {
            guard let settings = neuron.bundle(use.id).manifest.specialist, !settings.rules.isEmpty else { continue }
            for kind in settings.consumes { consumers[kind, default: []].append(use.id) }
        }
        self.consumers = consumers
        inbox = EventInbox(root: inboxRoot, neuron: config.id)
        try inbox.prepare(kinds: consumers.keys.sorted())
    }

    /// The event kinds the inbox takes, with the specialists each feeds.
    public var eventKinds: [(kind: String, specialists: [String])] { consumers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    /// Does whatever is due: samples sensors, rescans, reads new inbox files.
    public func step(now: Date = Date()) -> [Event] {
        var events = scheduler.sampleDue(now: now).map { event -> Event in
            tally.sensorSamples += 1
            switch event {
            case .stored: tally.readingsStored += 1
            case .failed: tally.sensorFailures += 1
            case .unchanged: break
            }
            return .sensor(event)
        }
        for index in scanners.indices where scanners[index].due <= now {
            let scanner = scanners[index]
            scanners[index].due = scanner.interval.map { now.addingTimeInterval($0) } ?? .distantFuture
            do {
                let summary = try Scanning.scan(scanner.plugin, into: store)
                tally.scans += 1
                tally.assets += summary.assets
                events.append(.scanned(summary))
            } catch {
                events.append(.scanFailed(scanner: scanner.plugin.plan.bundle.manifest.id, "\(error)"))
            }
            scanner.plugin.stop()   // scanners run seldom: no process waits between scans
        }
        if now >= nextInboxCheck {
            nextInboxCheck = now.addingTimeInterval(1)
            for (kind, ids) in consumers {
                for file in inbox.pending(kind) { events += feed(file, to: ids) }
            }
        }
        return events
    }

    /// When `step` next has something to do.
    public var nextWake: Date { ([scheduler.nextDue, nextInboxCheck] + scanners.map(\.due)).min()! }

    private func feed(_ file: String, to specialistIDs: [String]) -> [Event] {
        var events: [Event] = [], count = 0, alerts = 0, problems: [String] = [], died = false
        let lines = (try? String(contentsOfFile: file, encoding: .utf8))?.split(separator: "\n", omittingEmptySubsequences: false) ?? []
        feeding: for (index, line) in lines.enumerated() where !line.allSatisfy(\.isWhitespace) {
            guard case .object? = try? JSONValue(parsing: Array(line.utf8)) else {
                problems.append("\(file):\(index + 1): not a JSON object; skipped")
                continue
            }
            count += 1
            for id in specialistIDs {
                do {
                    switch try specialists.call(id, method: "specialist/event", input: Array(line.utf8)) {
                    case .pluginError(let bytes):
                        let message = PluginInstance.CallOutcome.errorMessage(bytes)
                        problems.append("\(file):\(index + 1): \(id) refused the event: \(message); skipped")
                    case .result(let bytes):
                        for alert in (try? JSONValue(parsing: bytes))?["alerts"]?.arrayValue ?? [] {
                            let stored = StoredAlert(neuron: neuron.config.id, specialist: id, alert: alert)
                            do { try store.record(stored) } catch { problems.append("\(file):\(index + 1): alert not stored: \(error)") }
                            alerts += 1
                            events.append(.alert(stored))
                        }
                    }
                } catch {
                    problems.append("\(file):\(index + 1): \(id) died: \(error); this and later lines not processed, file moved to failed/")
                    died = true
                    break feeding
                }
            }
        }
        tally.events += count
        tally.alerts += alerts
        tally.eventsSkipped += problems.count
        do { try inbox.finish(file, failed: died) } catch { problems.append("\(error)") }
        events.append(.fed(file: file, events: count, alerts: alerts, problems: problems))
        return events
    }

    /// Every plugin the run started, for reports.
    public var plugins: [SupervisedPlugin] { scheduler.sensors.map(\.plugin) + scanners.map(\.plugin) + specialists.running }

    /// Ends every plugin process; safe to call more than once.
    public func stop() {
        scheduler.stop()
        for scanner in scanners { scanner.plugin.stop() }
        specialists.stopAll()
    }

    deinit { stop() }
}
