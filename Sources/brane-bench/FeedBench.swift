import BraneHost
import Foundation

/// Feeding an inbox file: the exactly-once feed (`NeuronRunner`: streamed lines, a transaction
/// per 64 lines with the alerts, the specialists' windows and the offset) against the feed it
/// replaced, measured in the same run: the same events through the same sandboxed specialist,
/// each alert stored in a transaction of its own, nothing else. Both start a fresh specialist
/// and a fresh store each round; rounds alternate so drift hits both alike.
func feedBenchmarks(rounds: Int, copies: Int) throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("brane-feed-bench-\(getpid())")
    defer { try? FileManager.default.removeItem(at: scratch) }
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    let source = try String(contentsOf: repository.appendingPathComponent("Plugins/com.brane.neuroscientist/Tests/hrv-90-days.jsonl"), encoding: .utf8)
    let days = source.split(separator: "\n").map(String.init)
    // `copies` times the 90 days, dated on, so the rule sees one long history.
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let first = calendar.date(from: DateComponents(year: 2026, month: 1, day: 5))!
    let lines = (0..<(days.count * copies)).map { index -> String in
        guard case .object(var day) = try! JSONValue(parsing: days[index % days.count]) else { return "" }
        day["date"] = .string(calendar.date(byAdding: .day, value: index, to: first)!.formatted(Date.ISO8601FormatStyle().year().month().day()))
        return JSONValue.object(day).serialized()
    }
    let text = lines.joined(separator: "\n") + "\n"
    let sourceFile = scratch.appendingPathComponent("days.jsonl").path
    try text.write(toFile: sourceFile, atomically: true, encoding: .utf8)
    let plugins = PluginLocator(searchDirectories: [repository.appendingPathComponent("Plugins").path])
    let neuron = try NeuronLoader.parse(benchNeuronYAML(id: "feed-bench", "specialists:\n  - plugin: com.brane.neuroscientist\n"),
                                        file: "feed-bench.yaml", plugins: plugins).neuron
    let bundle = neuron.bundle("com.brane.neuroscientist")

    var before = [Double](), exactlyOnce = [Double](), alertCounts = Set<Int>()
    for round in 0..<rounds {
        // The feed it replaced: read the file whole, each event to the rule, each alert stored alone.
        let oldStore = try ObservationStore(path: scratch.appendingPathComponent("old-\(round).sqlite").path)
        let specialist = SupervisedPlugin(plan: try neuron.plan(for: bundle), runner: runner)
        before.append(try nanoseconds {
            for line in try String(contentsOfFile: sourceFile, encoding: .utf8).split(separator: "\n") where !line.isEmpty {
                guard case .object? = try? JSONValue(parsing: Array(line.utf8)) else { continue }
                guard case .result(let bytes) = try specialist.call(method: "specialist/event", input: Array(line.utf8)) else { continue }
                for alert in (try? JSONValue(parsing: bytes))?["alerts"]?.arrayValue ?? [] {
                    try oldStore.record(StoredAlert(neuron: "feed-bench", specialist: bundle.manifest.id, alert: alert))
                }
            }
        })
        specialist.stop()
        let old = try oldStore.alerts(neuron: "feed-bench").count

        // The exactly-once feed, from dropping the file in to its move to done/.
        let store = try ObservationStore(path: scratch.appendingPathComponent("new-\(round).sqlite").path)
        let feeder = try NeuronRunner(neuron: neuron, runner: runner, store: store,
                                      inboxRoot: scratch.appendingPathComponent("inbox-\(round)").path)
        try text.write(toFile: feeder.inbox.folder("biometrics.daily") + "/days.jsonl", atomically: true, encoding: .utf8)
        exactlyOnce.append(nanoseconds { _ = feeder.step() })
        feeder.stop()
        alertCounts.insert(old)
        alertCounts.insert(try store.alerts(neuron: "feed-bench").count)
    }
    let old = Stats(before), new = Stats(exactlyOnce)
    let ratios = Stats(zip(exactlyOnce, before).map { $0 / $1 })
    Report.record("feed.replaced", old, scale: 1e6, unit: "ms")
    Report.record("feed.exactlyOnce", new, scale: 1e6, unit: "ms", baseline: ("feed.replaced", old), target: "≤ 1.5×")
    print("\n## Feeding an inbox file (\(lines.count) daily events, the 90-day dataset \(copies)× over; \(rounds) rounds)\n")
    print("| feed | median (IQR) | per event | vs. the feed it replaced |")
    print("|---|---|---|---|")
    print("| the feed it replaced: each event to the rule, each alert stored alone (baseline) | \(old.describe(1e6, "ms")) | \(String(format: "%.1f", old.median / Double(lines.count) / 1000)) µs | 1.00× |")
    print("| exactly-once: streamed, 64-line transactions with alerts, window and offset | \(new.describe(1e6, "ms")) | \(String(format: "%.1f", new.median / Double(lines.count) / 1000)) µs | \(String(format: "%.2f", new.median / old.median))× (per-round ratio median \(String(format: "%.2f", ratios.median))×) |")
    print("\nBoth start a fresh sandboxed specialist and store each round; alerts stored per round: \(alertCounts.sorted().map(String.init).joined(separator: ", ")) (one number: both stored the same). Target ≤ 1.5×.")

    // What a restart costs: a new instance replayed its 64-event window before the next event.
    let store = try ObservationStore(path: scratch.appendingPathComponent("replay.sqlite").path)
    let warm = try NeuronRunner(neuron: neuron, runner: runner, store: store, inboxRoot: scratch.appendingPathComponent("inbox-replay").path)
    try text.write(toFile: warm.inbox.folder("biometrics.daily") + "/days.jsonl", atomically: true, encoding: .utf8)
    _ = warm.step()
    warm.stop()
    let window = try store.specialistWindow(neuron: "feed-bench", specialist: bundle.manifest.id, limit: 10_000).count
    var cold = [Double](), replayed = [Double]()
    for round in 0..<rounds {
        let emptyStore = try ObservationStore(path: scratch.appendingPathComponent("empty-\(round).sqlite").path)
        for (target, samples) in [(emptyStore, 0), (store, 1)] {
            let feeder = try NeuronRunner(neuron: neuron, runner: runner, store: target,
                                          inboxRoot: scratch.appendingPathComponent("inbox-one-\(round)-\(samples)").path)
            try (lines[0] + "\n").write(toFile: feeder.inbox.folder("biometrics.daily") + "/one.jsonl", atomically: true, encoding: .utf8)
            let elapsed = nanoseconds { _ = feeder.step() }
            if samples == 0 { cold.append(elapsed) } else { replayed.append(elapsed) }
            feeder.stop()
        }
    }
    print("\nA restart: the first event into a new instance takes \(Stats(cold).describe(1e6, "ms", digits: 2)) with nothing to replay and "
        + "\(Stats(replayed).describe(1e6, "ms", digits: 2)) after replaying its \(window)-event window.")
}
