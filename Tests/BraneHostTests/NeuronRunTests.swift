import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// A neuron file's header (an Ollama model at `endpoint`), then `more`: its YAML blocks.
func neuronYAML(id: String, tier: Int, endpoint: String = "http://127.0.0.1:11434", more: String) -> String {
    """
    apiVersion: brane.dev/v1
    kind: Neuron
    id: \(id)
    name: \(id)
    privacyTier: \(tier)
    model: {provider: ollama, model: m, endpoint: "\(endpoint)"}

    """ + more
}

/// A tier-0 neuron with the neuroscientist as its specialist; `more` adds YAML blocks after it.
func tierZeroNeuronYAML(id: String, more: String = "") -> String {
    neuronYAML(id: id, tier: 0, more: "specialists:\n  - plugin: com.brane.neuroscientist\n\n" + more)
}

/// `brane neuron run`: sensors, scanners and specialist rules writing to SQLite, a clean stop
/// that leaves no plugin process, and SIGHUP reloads that keep the old config when the new one is bad.
final class NeuronRunTests: XCTestCase {
    let plugins = PluginLocator(searchDirectories: [BundledPlugins.directory])
    let dataset = BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl"
    var directory: URL!

    override func setUp() { directory = BundledPlugins.temporaryDirectory() }
    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    func neuronYAML(sensors: [String] = ["com.brane.sensor.memory"]) -> String {
        tierZeroNeuronYAML(id: "run-test", more: """
            sensors:
            \(sensors.map { "  - {plugin: \($0), interval: 1s}\n" }.joined())scanners:
              - plugin: com.brane.scanner.machine
            """)
    }

    func testARunSamplesScansFeedsTheRulesAndStoresWhatHappened() throws {
        let neuron = try NeuronLoader.parse(neuronYAML(sensors: ["com.brane.sensor.memory", "com.brane.sensor.compute"]),
                                            file: "run-test.yaml", plugins: plugins).neuron
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        let inboxRoot = directory.appendingPathComponent("inbox").path
        let runner = try NeuronRunner(neuron: neuron, runner: try ResourceLocator.current.runner(), store: store, inboxRoot: inboxRoot)
        defer { runner.stop() }
        XCTAssertEqual(runner.eventKinds.map(\.kind), ["biometrics.daily"])
        let folder = runner.inbox.folder("biometrics.daily")
        try FileManager.default.copyItem(atPath: dataset, toPath: "\(folder)/a-hrv.jsonl")
        try "{\"date\": \"2026-04-05\", \"rmssd\": 50}\nnot json\n".write(toFile: "\(folder)/b-bad.jsonl", atomically: true, encoding: .utf8)

        var events: [NeuronRunner.Event] = []
        let end = Date().addingTimeInterval(1.5)
        while Date() < end {
            events += runner.step()
            Thread.sleep(forTimeInterval: min(0.1, max(0.005, runner.nextWake.timeIntervalSinceNow)))
        }
        let pids = runner.plugins.compactMap(\.pid)
        XCTAssertEqual(pids.count, 3, "two sensors and the specialist are running (the scanner stops after its scan)")

        XCTAssertEqual(Set(try store.latestReadings().map(\.sensor)), ["com.brane.sensor.memory", "com.brane.sensor.compute"])
        XCTAssertGreaterThanOrEqual(runner.tally.sensorSamples, 4, "each sensor sampled at start and again after its 1 s interval")
        XCTAssertEqual(runner.tally.scans, 1)
        XCTAssertEqual(try store.assets(kind: "machine").count, 1)
        let alerts = try store.alerts(neuron: "run-test")
        XCTAssertEqual(alerts.map { $0.alert["date"]?.stringValue ?? "" }, ["2026-03-03", "2026-03-04"], "the HRV-drop episode in the dataset")
        XCTAssertEqual(Set(alerts.map(\.rule)), ["hrv-drop"])
        XCTAssertEqual(alerts.map(\.specialist), ["com.brane.neuroscientist", "com.brane.neuroscientist"])

        let fed = events.compactMap { event -> (String, Int, [String])? in
            if case .fed(let file, let count, _, let problems) = event { (URL(fileURLWithPath: file).lastPathComponent, count, problems) } else { nil }
        }
        XCTAssertEqual(fed.map(\.0), ["a-hrv.jsonl", "b-bad.jsonl"])
        XCTAssertEqual(fed.map(\.1), [90, 1])
        // Each bad line is named by file and line, and skipped: one the specialist refuses, one that is not JSON.
        XCTAssertEqual(fed[1].2.count, 2, "\(fed[1].2)")
        XCTAssertTrue(fed[1].2[0].hasPrefix("\(folder)/b-bad.jsonl:1: com.brane.neuroscientist refused the event: invalid input"), fed[1].2[0])
        XCTAssertEqual(fed[1].2[1], "\(folder)/b-bad.jsonl:2: not a JSON object; skipped")
        XCTAssertEqual(runner.inbox.pending("biometrics.daily"), [], "read files leave the inbox")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder)/done/a-hrv.jsonl"))

        runner.stop()
        XCTAssertEqual(pids.filter(ProcessTable.isAlive), [], "stop ends every plugin process")
    }

    func testSIGHUPReloadsOrKeepsTheOldConfigAndSIGTERMLeavesNoPluginBehind() throws {
        let file = directory.appendingPathComponent("run-test.yaml")
        try neuronYAML().write(to: file, atomically: true, encoding: .utf8)
        let home = BraneHome(root: directory.appendingPathComponent("home").path)
        let run = try RunningProcess.brane(["neuron", "run", file.path, "--plugins", BundledPlugins.directory], home: home)
        defer { if run.process.isRunning { run.signal(SIGKILL) } }
        XCTAssertTrue(run.waitFor("com.brane.sensor.memory: stored (first)"), run.stdout + run.stderr)
        var pids = Set(run.children)
        XCTAssertFalse(pids.isEmpty)

        // A broken file: the reload is refused with the file's diagnostics, and the old config keeps running.
        try neuronYAML().replacingOccurrences(of: "privacyTier: 0", with: "privacyTier: zero").write(to: file, atomically: true, encoding: .utf8)
        run.signal(SIGHUP)
        XCTAssertTrue(run.waitFor("reload refused, still running the previous configuration"), run.stderr)
        XCTAssertTrue(run.stderr.contains("\(file.path):5:14: error: privacyTier"), run.stderr)
        XCTAssertTrue(run.process.isRunning)

        // Another neuron's id: its lock, inbox and windows are another run's — refused, the old config runs on.
        try neuronYAML().replacingOccurrences(of: "id: run-test", with: "id: another").write(to: file, atomically: true, encoding: .utf8)
        run.signal(SIGHUP)
        XCTAssertTrue(run.waitFor("now names neuron another, not run-test"), run.stderr)
        XCTAssertTrue(run.process.isRunning)

        // A valid change: the new config runs (now two sensors).
        try neuronYAML(sensors: ["com.brane.sensor.memory", "com.brane.sensor.compute"]).write(to: file, atomically: true, encoding: .utf8)
        run.signal(SIGHUP)
        XCTAssertTrue(run.waitFor("reloaded \(file.path)"), run.stdout + run.stderr)
        XCTAssertTrue(run.waitFor("com.brane.sensor.compute: stored (first)"), run.stdout + run.stderr)
        pids.formUnion(run.children)

        run.signal(SIGTERM)
        XCTAssertEqual(run.exitStatus(), 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("== neuron run-test at tier 0 (sensitive: no network): stopped by a signal"), run.stdout)
        XCTAssertTrue(run.stdout.contains("every plugin process stopped"), run.stdout)
        XCTAssertEqual(pids.filter(ProcessTable.isAlive), [], "no plugin process outlives the run")
    }
}

/// Issue 14, point 1: the inbox is read as a stream and fed exactly once.
final class ExactlyOnceInboxTests: XCTestCase {
    private lazy var directory: URL = {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }()

    private func runner() throws -> (NeuronRunner, ObservationStore) {
        let plugins = PluginLocator(searchDirectories: [BundledPlugins.directory])
        let neuron = try NeuronLoader.parse(tierZeroNeuronYAML(id: "inbox-test"), file: "inbox-test.yaml", plugins: plugins).neuron
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        let runner = try NeuronRunner(neuron: neuron, runner: try ResourceLocator.current.runner(), store: store,
                                      inboxRoot: directory.appendingPathComponent("inbox").path)
        addTeardownBlock { runner.stop() }
        return (runner, store)
    }

    private func feedAll(_ runner: NeuronRunner) -> [(events: Int, problems: [String])] {
        var fed: [(Int, [String])] = []
        for _ in 0..<3 {
            for event in runner.step() { if case .fed(_, let count, _, let problems) = event { fed.append((count, problems)) } }
            Thread.sleep(forTimeInterval: 1.05)   // the inbox is looked at once a second
        }
        return fed
    }

    /// CRLF lines, a line that is not UTF-8 and one past the line limit: each reported as file:line, the rest fed.
    func testLinesAreReadAsAStreamAndEachBadOneIsNamed() throws {
        let (runner, _) = try runner()
        let folder = runner.inbox.folder("biometrics.daily")
        var bytes = Data((#"{"date":"2026-04-01","rmssd":63.4,"restingHR":52.5,"sleepHours":7.7,"sleepQuality":77,"load":436}"# + "\r\n").utf8)
        bytes.append(Data([0x7B, 0xFF, 0xFE, 0x7D, 0x0A]))                                  // line 2: not UTF-8
        bytes.append(Data(repeating: UInt8(ascii: "x"), count: EventInbox.lineLimit + 10))   // line 3: too long
        bytes.append(Data("\n".utf8))
        // Line 4: exactly the limit, with CRLF — the CR is not part of the line (an "x" string, not JSON: skipped as such).
        bytes.append(Data(repeating: UInt8(ascii: "x"), count: EventInbox.lineLimit))
        bytes.append(Data("\r\n".utf8))
        bytes.append(Data((#"{"date":"2026-04-02","rmssd":60.3,"restingHR":52.5,"sleepHours":7.75,"sleepQuality":85,"load":503}"# + "\r\n").utf8))
        try bytes.write(to: URL(fileURLWithPath: "\(folder)/mixed.jsonl"))
        let fed = feedAll(runner)
        XCTAssertEqual(fed.map(\.events), [2], "both CRLF events fed")
        let problems = try XCTUnwrap(fed.first?.problems)
        XCTAssertEqual(problems.count, 3, "\(problems)")
        XCTAssertTrue(problems.contains("\(folder)/mixed.jsonl:4: not a JSON object; skipped"), "the limit, read as a line: \(problems)")
        XCTAssertTrue(problems.contains("\(folder)/mixed.jsonl:2: not UTF-8; skipped"), "\(problems)")
        XCTAssertTrue(problems.contains("\(folder)/mixed.jsonl:3: longer than \(EventInbox.lineLimit) bytes; skipped"), "\(problems)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder)/done/mixed.jsonl"))
    }

    /// Resumed from its committed offset, a file feeds only the rest; an alert fed twice is stored once.
    func testAFileResumesFromItsOffsetAndNoAlertIsStoredTwice() throws {
        let (runner, store) = try runner()
        let folder = runner.inbox.folder("biometrics.daily")
        let file = "\(folder)/hrv.jsonl"
        try FileManager.default.copyItem(atPath: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl", toPath: file)
        var info = stat()
        XCTAssertEqual(stat(file, &info), 0)
        // As if a run was killed after committing 80 of the 90 lines.
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let first80 = text.split(separator: "\n", omittingEmptySubsequences: false).prefix(80).map { $0 + "\n" }.joined()
        try store.commitInbox(neuron: "inbox-test", file: file, inode: UInt64(info.st_ino), generation: "g", offset: UInt64(first80.utf8.count), line: 80, batch: .init())
        XCTAssertEqual(feedAll(runner).map(\.events), [10], "only the lines after the offset")
        // The same alert key twice: stored once.
        let alert = StoredAlert(neuron: "inbox-test", specialist: "x", alert: ["rule": "r", "date": "2026-01-01"])
        try store.commitInbox(neuron: "inbox-test", file: "f", inode: 1, generation: "g", offset: 1, line: 1, batch: .init(alerts: [(alert, key: "k"), (alert, key: "k")]))
        try store.commitInbox(neuron: "inbox-test", file: "f", inode: 1, generation: "g", offset: 2, line: 2, batch: .init(alerts: [(alert, key: "k")]))
        XCTAssertEqual(try store.alerts(neuron: "inbox-test").filter { $0.specialist == "x" }.count, 1)
    }

    /// Whatever inbox each names: the lock is the neuron's in its home, where its store is.
    func testASecondRunOfTheSameNeuronIsRefusedNamingTheFirst() throws {
        let home = BraneHome(root: directory.appendingPathComponent("home").path)
        do {
            let held = try RunningNeurons.lockForOneRun(neuron: "n", home: home)
            XCTAssertThrowsError(try RunningNeurons.lockForOneRun(neuron: "n", home: home)) { error in
                XCTAssertTrue("\(error)".contains("already running (pid \(getpid()))"), "\(error)")
            }
            XCTAssertNoThrow(try RunningNeurons.lockForOneRun(neuron: "another", home: home))
            withExtendedLifetime(held) {}
        }
        XCTAssertNoThrow(try RunningNeurons.lockForOneRun(neuron: "n", home: home), "released with its holder")
    }
}

/// Issue 14, point 6: a stop in the middle of a file ends the feed at once, with what was fed committed.
final class PromptStopTests: XCTestCase {
    func testAStopMidFileCommitsAndTheNextRunFeedsOnlyTheRest() throws {
        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let plugins = PluginLocator(searchDirectories: [BundledPlugins.directory])
        let neuron = try NeuronLoader.parse(tierZeroNeuronYAML(id: "stop-test"), file: "stop-test.yaml", plugins: plugins).neuron
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        let inboxRoot = directory.appendingPathComponent("inbox").path
        var fed: [Int] = []
        // The first run is stopped after 30 lines, as SIGTERM would.
        do {
            let runner = try NeuronRunner(neuron: neuron, runner: try ResourceLocator.current.runner(), store: store, inboxRoot: inboxRoot)
            defer { runner.stop() }
            try FileManager.default.copyItem(atPath: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl",
                                             toPath: runner.inbox.folder("biometrics.daily") + "/hrv.jsonl")
            final class Counter: @unchecked Sendable { var asked = 0 }
            let counter = Counter()
            runner.stopRequested = { counter.asked += 1; return counter.asked > 30 }
            let started = ContinuousClock.now
            for event in runner.step() { if case .fed(_, let count, _, _) = event { fed.append(count) } }
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
            XCTAssertEqual(runner.inbox.pending("biometrics.daily").count, 1, "a file stopped mid-way stays in the inbox")
        }
        // The next run feeds lines 31-90 only, and the file is done.
        let runner = try NeuronRunner(neuron: neuron, runner: try ResourceLocator.current.runner(), store: store, inboxRoot: inboxRoot)
        defer { runner.stop() }
        for event in runner.step() { if case .fed(_, let count, _, _) = event { fed.append(count) } }
        XCTAssertEqual(fed, [30, 60])
        XCTAssertEqual(runner.inbox.pending("biometrics.daily"), [])
    }
}
