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
    /// Asked between inbox lines: true ends the feed at the next line, with what was fed committed
    /// (so SIGTERM in the middle of a large file stops within a line, losing and doubling nothing).
    public var stopRequested: @Sendable () -> Bool = { false }
    public private(set) var tally = Tally()
    private let store: ObservationStore
    private let scheduler: SensorScheduler
    private var scanners: [(plugin: SupervisedPlugin, interval: Double?, due: Date)]
    private let specialists: SpecialistRouter
    /// Event kind → the specialists whose rules consume it.
    private let consumers: [String: [String]]
    /// Specialist → its `specialist.window`, for those whose rules keep state.
    private let windows: [String: Int]
    private var nextInboxCheck = Date.distantPast
    /// When the observation store's WAL is next folded in and truncated.
    private var nextCheckpoint = Date.distantPast
    /// Lines a specialist reached its CPU-time limit on once ("file\0line"): a second time fails the file.
    private var cpuLimitRetried: Set<String> = []
    /// The deaths of specialists replaced after a failed feed.
    private var retiredDeaths: [PluginDeath] = []

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
        var consumers: [String: [String]] = [:], windows: [String: Int] = [:]
        for use in config.specialists {
            guard let settings = neuron.bundle(use.id).manifest.specialist, !settings.rules.isEmpty else { continue }
            for kind in settings.consumes { consumers[kind, default: []].append(use.id) }
            windows[use.id] = settings.window
        }
        self.consumers = consumers
        self.windows = windows
        let neuronID = config.id
        specialists = SpecialistRouter(locator: .includingInstalled(explicit: neuron.bundles.mapValues(\.directory)),
                                       runner: runner, onLog: onLog, plan: neuron.plan(for:), window: { [windows, store] manifest in
            // Read at each start, so an instance restarted after a death also resumes its state; a
            // window that cannot be read stops the start rather than run the rules from nothing.
            guard let limit = windows[manifest.id] else { return [] }
            return try store.specialistWindow(neuron: neuronID, specialist: manifest.id, limit: limit)
        }, neuron: neuronID)
        try FileManager.default.createDirectory(atPath: inboxRoot, withIntermediateDirectories: true)   // so it resolves the same on every run
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
        var fed = false
        if now >= nextInboxCheck {
            nextInboxCheck = now.addingTimeInterval(1)
            for (kind, ids) in consumers {
                for file in inbox.pending(kind) {
                    let outcome = feed(file, to: ids)
                    events += outcome.events
                    fed = true
                    // After a death the kind's later files wait: fed now, they would reach the rules
                    // before the rest of this one (which resumes first, or waits in failed/).
                    if outcome.specialistDied { break }
                }
            }
        }
        if fed || now >= nextCheckpoint {
            nextCheckpoint = now.addingTimeInterval(60)
            try? store.checkpoint()   // a reader holding an old snapshot only delays it to the next one
        }
        return events
    }

    /// When `step` next has something to do.
    public var nextWake: Date { ([scheduler.nextDue, nextInboxCheck] + scanners.map(\.due)).min()! }

    /// Feeds one inbox file, exactly once: read as a stream from where it last stopped, each batch's
    /// alerts (keyed by file, its feed's generation, line, specialist and index) and the offset committed in one
    /// transaction, and the file moved to done/ only when all of it is stored. A kill at any point
    /// resumes from the last commit, and what was fed again stores nothing twice.
    private func feed(_ file: String, to specialistIDs: [String]) -> (events: [Event], specialistDied: Bool) {
        var events: [Event] = [], count = 0, alerts = 0, problems: [String] = [], died = false
        let id = neuron.config.id
        guard var lines = EventInbox.Lines(file) else {
            var link = stat()
            guard lstat(file, &link) == 0 else { return ([], false) }   // gone meanwhile
            problems.append("\(file): not a regular file that can be read; moved to failed/")
            do { try inbox.finish(file, inode: UInt64(link.st_ino), failed: true) } catch { problems.append("\(error)") }
            return ([.fed(file: file, events: 0, alerts: 0, problems: problems)], false)
        }
        let inode = lines.inode
        let progress: (offset: UInt64, line: Int, generation: String)?
        var renamedFrom: String?
        do {
            if let here = try store.inboxProgress(neuron: id, file: file, inode: inode) {
                progress = here
            } else if let elsewhere = try store.inboxProgress(neuron: id, inode: inode), elsewhere.file != file {
                // The same file under another name (a failed one dropped in again, renamed): it resumes too.
                progress = (elsewhere.offset, elsewhere.line, elsewhere.generation)
                renamedFrom = elsewhere.file
            } else {
                progress = nil
            }
        } catch {
            lines.close()
            // Fed from the top it would be fed twice: it waits for a store that can say where it stopped.
            return ([.fed(file: file, events: 0, alerts: 0, problems: ["\(file): not fed (\(error)); it stays in the inbox"])], false)
        }
        // Its feed resumes only if it is the same file: the same inode (filesystems recycle those),
        // at least as long as what was fed, and the same first bytes.
        let resumed = progress.flatMap { progress in
            lines.size >= progress.offset && Self.isSameFile(lines, generation: progress.generation) && lines.resume(at: progress.offset, line: progress.line)
                ? progress : nil
        }
        let start = (offset: resumed?.offset ?? 0, line: resumed?.line ?? 0)
        let generation = resumed?.generation ?? Self.newGeneration(lines)
        defer { lines.close() }
        let fresh = ObservationStore.InboxBatch(windows: windows.filter { specialistIDs.contains($0.key) })
        var batch = fresh, batchLines = 0, committed = start.line
        func commit(through offset: UInt64, line: Int) -> Bool {
            do {
                try store.commitInbox(neuron: id, file: file, inode: inode, generation: generation, offset: offset, line: line, batch: batch)
                alerts += batch.alerts.count
                (batch, batchLines, committed) = (fresh, 0, line)
                if let old = renamedFrom, resumed != nil {
                    try? store.forgetInbox(neuron: id, file: old)   // its progress now goes by this name
                    renamedFrom = nil
                }
                return true
            } catch {
                problems.append("\(file):\(committed + 1): not stored (\(error)); the file stays in the inbox and is fed again from line \(committed + 1)")
                return false
            }
        }
        var stored = true
        var interrupted = false, retryLater = false
        feeding: while true {
            // Asked before a line is read, so the committed offset never passes a line not fed.
            if stopRequested() {
                interrupted = true
                break
            }
            // Where this line starts, in the file and in what is gathered: a line a specialist dies
            // on is not part of the commit (nor what another specialist made of it).
            let before = (offset: lines.offset, line: lines.number, alerts: batch.alerts.count, events: batch.events.count, shown: events.count)
            guard let line = lines.next() else { break }
            defer { batchLines += 1 }
            switch line {
            case .problem(let why):
                problems.append("\(file):\(lines.number): \(why)")
            case .text(let text):
                if text.allSatisfy(\.isWhitespace) { break }
                guard case .object? = try? JSONValue(parsing: Array(text.utf8)) else {
                    problems.append("\(file):\(lines.number): not a JSON object; skipped")
                    break
                }
                count += 1
                for specialist in specialistIDs {
                    do {
                        switch try specialists.call(specialist, method: "specialist/event", input: Array(text.utf8)) {
                        case .pluginError(let bytes):
                            let message = PluginInstance.CallOutcome.errorMessage(bytes)
                            problems.append("\(file):\(lines.number): \(specialist) refused the event: \(message); skipped")
                        case .result(let bytes):
                            if windows[specialist] != nil { batch.events.append((specialist, Array(text.utf8))) }
                            for (index, alert) in ((try? JSONValue(parsing: bytes))?["alerts"]?.arrayValue ?? []).enumerated() {
                                let raised = StoredAlert(neuron: id, specialist: specialist, alert: alert)
                                let key = SHA256.hash(Array("\(file)\u{0}\(generation)\u{0}\(lines.number)\u{0}\(specialist)\u{0}\(index)".utf8))
                                batch.alerts.append((raised, key: key))
                                events.append(.alert(raised))
                            }
                        }
                    } catch {
                        // Its lifetime CPU budget spent is the instance's end, not this line's fault: a new
                        // one (replayed the window) takes the line again next time. A second time, it is.
                        let place = "\(file)\u{0}\(lines.number)"
                        if case SupervisedPlugin.CallError.died(let death) = error, death.cause == .cpuLimit, !cpuLimitRetried.contains(place) {
                            cpuLimitRetried.insert(place)
                            problems.append("\(file):\(lines.number): \(specialist) reached its CPU-time limit over its life; "
                                + "it is replaced and the file resumes at this line")
                            retryLater = true
                        } else {
                            problems.append("\(file):\(lines.number): \(specialist) died: \(error); this and later lines not processed, "
                                + "file moved to failed/ (dropped in again, it resumes at this line)")
                        }
                        died = true
                        count -= 1   // not fed: counted when the line is fed again
                        batch.alerts.removeLast(batch.alerts.count - before.alerts)
                        batch.events.removeLast(batch.events.count - before.events)
                        events.removeLast(events.count - before.shown)
                        stored = commit(through: before.offset, line: before.line)
                        break feeding
                    }
                }
            }
            if batchLines >= 63 && !commit(through: lines.offset, line: lines.number) {
                stored = false
                break feeding
            }
        }
        if stored && !died { stored = commit(through: lines.offset, line: lines.number) }
        // Fed but not committed: the specialists' state ran ahead of the store. New instances,
        // replayed the committed window, take the lines again from where the store says.
        if died || !stored {
            retiredDeaths += specialists.running.flatMap(\.deaths)   // kept for the report: the router forgets them
            specialists.stopAll()
        }
        tally.events += count
        tally.alerts += alerts
        tally.eventsSkipped += problems.count
        if stored && !interrupted && !retryLater {
            do {
                try inbox.finish(file, inode: inode, failed: died)
                // A failed file keeps its progress: dropped in again, it resumes at the line it stopped on.
                if !died { try store.forgetInbox(neuron: id, file: file) }
            } catch { problems.append("\(error)") }
        }
        events.append(.fed(file: file, events: count, alerts: alerts, problems: problems))
        return (events, died)
    }

    /// A feed's generation: `<n>:<SHA-256 of the file's first n bytes>:<random>`, n at most 4 KiB.
    static func newGeneration(_ lines: EventInbox.Lines) -> String {
        let length = Int(min(lines.size, 4096))
        return "\(length):\(lines.digestOfFirst(length) ?? "-"):\(UUID().uuidString)"
    }

    /// Whether the file still begins as it did when the feed of `generation` began.
    static func isSameFile(_ lines: EventInbox.Lines, generation: String) -> Bool {
        let parts = generation.split(separator: ":", maxSplits: 2)
        guard parts.count == 3, let length = Int(parts[0]) else { return true }   // a feed begun before generations
        return lines.digestOfFirst(length) == String(parts[1])
    }

    /// Every plugin death of the run, the replaced specialists' included.
    public var deaths: [PluginDeath] { retiredDeaths + plugins.flatMap(\.deaths) }

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
