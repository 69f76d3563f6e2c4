import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// A plugin directory holding the tally fixture (a specialist whose state is a count of the
/// events it was fed: any event a replay misses or doubles shows in its alerts).
func tallyPlugins(in directory: URL) throws -> String {
    try BundledPlugins.fixturePlugins("Tally", id: "test.brane.tally", in: directory.appendingPathComponent("fixture")).path
}

/// A tier-0 neuron whose events feed the tally fixture first, then the neuroscientist.
func tallyAndNeuroscientistYAML(id: String) -> String {
    tierZeroNeuronYAML(id: id).replacingOccurrences(of: "specialists:\n", with: "specialists:\n  - plugin: test.brane.tally\n")
}

/// Issue 14, point 2: a neuron's alerts do not depend on restarts. The host keeps each specialist's
/// `specialist.window` of events and replays it into every new instance, so split feeding, a
/// reload, a specialist's death and a SIGKILL at any instant all store exactly the alerts of one
/// uninterrupted run, each once.
final class DurableSpecialistStateTests: XCTestCase {
    private lazy var plugins = PluginLocator(searchDirectories: [try! tallyPlugins(in: directory), BundledPlugins.directory])
    private lazy var directory: URL = {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }()
    private lazy var days: [String] = {
        let text = try! String(contentsOfFile: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl", encoding: .utf8)
        return text.split(separator: "\n").map(String.init)
    }()

    private func store(_ name: String) throws -> ObservationStore {
        try ObservationStore(path: directory.appendingPathComponent("\(name).sqlite").path)
    }

    private func runner(_ store: ObservationStore, _ name: String, neuron: String = "state-test") throws -> NeuronRunner {
        let resolved = try NeuronLoader.parse(tallyAndNeuroscientistYAML(id: neuron), file: "\(neuron).yaml", plugins: plugins).neuron
        let runner = try NeuronRunner(neuron: resolved, runner: try ResourceLocator.current.runner(), store: store,
                                      inboxRoot: directory.appendingPathComponent("inbox-\(name)").path)
        addTeardownBlock { runner.stop() }
        return runner
    }

    /// Drops `lines` into the runner's inbox as one file and feeds it.
    private func feed(_ runner: NeuronRunner, _ lines: ArraySlice<String>, as name: String) throws {
        let folder = runner.inbox.folder("biometrics.daily")
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(folder)/.\(name)", atomically: false, encoding: .utf8)
        XCTAssertEqual(rename("\(folder)/.\(name)", "\(folder)/\(name)"), 0)
        _ = runner.step()
        XCTAssertEqual(runner.inbox.pending("biometrics.daily"), [], "fed whole")
    }

    /// The alerts as the specialist raised them (what, not when they were received).
    private func alerts(_ store: ObservationStore, neuron: String = "state-test") throws -> [String] {
        try store.alerts(neuron: neuron).map { $0.alert.serialized() }
    }

    private lazy var uninterrupted: [String] = {
        let store = try! store("uninterrupted")
        try! feed(try! runner(store, "uninterrupted"), days[...], as: "all.jsonl")
        return try! alerts(store)
    }()

    /// The reference: the HRV-drop episode's two alerts, and the tally's at events 25, 50 and 75.
    func testTheDatasetRaisesTwoHRVAlertsAndThreeTalliesInOneRun() throws {
        let hrv = uninterrupted.filter { $0.contains("hrv-drop") }
        XCTAssertEqual(hrv.count, 2, "\(uninterrupted)")
        XCTAssertTrue(hrv[0].contains("\"date\":\"2026-03-03\"") && hrv[0].contains("drop-with-poor-sleep-and-high-load"), hrv[0])
        XCTAssertTrue(hrv[1].contains("\"date\":\"2026-03-04\"") && hrv[1].contains("sustained-drop"), hrv[1])
        XCTAssertEqual(uninterrupted.filter { $0.contains("every-25") }.map { (try? JSONValue(parsing: $0))?["date"]?.stringValue },
                       ["event 25", "event 50", "event 75"])
    }

    /// Fed in two files by two runs (a restart, or a reload: each builds a new runner and new
    /// instances), split before the baseline is full, inside the low streak and after the alerts.
    func testSplitFeedingAcrossTwoRunsRaisesTheSameAlerts() throws {
        for split in [10, 40, 56, 57, 58, 59, 60, 75] {
            let store = try store("split-\(split)")
            do {
                let first = try runner(store, "split-\(split)")
                try feed(first, days[..<split], as: "a.jsonl")
                first.stop()
            }
            try feed(try runner(store, "split-\(split)"), days[split...], as: "b.jsonl")
            XCTAssertEqual(try alerts(store), uninterrupted, "split after line \(split)")
        }
    }

    /// With corrections (each day sent three times), a split still raises the alerts of one run:
    /// the window counts events, and 256 of them cover the 32 days the rule needs.
    func testSplitFeedingWithCorrectionsRaisesTheSameAlerts() throws {
        let corrected = days.flatMap { [$0, $0, $0] }
        let reference = try store("corrected-reference")
        try feed(try runner(reference, "corrected-reference"), corrected[...], as: "all.jsonl")
        let expected = try alerts(reference)
        let split = try store("corrected-split")
        do {
            let first = try runner(split, "corrected-split")
            try feed(first, corrected[..<171], as: "a.jsonl")   // into the low streak
            first.stop()
        }
        try feed(try runner(split, "corrected-split"), corrected[171...], as: "b.jsonl")
        XCTAssertEqual(try alerts(split), expected)
    }

    /// Every day in its own run: each instance is replayed the window and nothing else.
    func testADayPerRunRaisesTheSameAlerts() throws {
        let store = try store("daily")
        for (index, day) in days.enumerated() {
            let run = try runner(store, "daily")
            try feed(run, [day], as: "day-\(100 + index).jsonl")
            run.stop()
        }
        XCTAssertEqual(try alerts(store), uninterrupted)
    }

    /// The window is pruned to the manifest's 256 events, per neuron and specialist, in the batch's transaction.
    func testTheStoreKeepsOnlyTheWindow() throws {
        let store = try store("window")
        // Every day sent 3 times (the reading and two corrections): 270 events.
        let corrected = days.flatMap { [$0, $0, $0] }
        try feed(try runner(store, "window"), corrected[...], as: "all.jsonl")
        let kept = try store.specialistWindow(neuron: "state-test", specialist: "com.brane.neuroscientist", limit: 10_000)
        XCTAssertEqual(kept.map { String(decoding: $0, as: UTF8.self) }, Array(corrected.suffix(256)))
        XCTAssertEqual(try store.specialistWindow(neuron: "another", specialist: "com.brane.neuroscientist", limit: 100), [])
        // Point 5: after a file is fed the WAL is folded in and truncated, not left at its largest.
        let wal = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("window.sqlite-wal").path)
        XCTAssertEqual(wal[.size] as? UInt64, 0)
    }

    /// A specialist killed between files: the next file goes to failed/ and, dropped in again, is
    /// fed into a new instance replayed from the store.
    func testASpecialistThatDiedIsReplayedItsWindow() throws {
        let store = try store("killed")
        let run = try runner(store, "killed")
        let folder = run.inbox.folder("biometrics.daily")
        try feed(run, days[..<50], as: "a.jsonl")
        let pid = try XCTUnwrap(run.plugins.first { $0.plan.bundle.manifest.id == "test.brane.tally" }?.pid)
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        try (days[50...].joined(separator: "\n") + "\n").write(toFile: "\(folder)/b.jsonl", atomically: true, encoding: .utf8)
        Thread.sleep(forTimeInterval: 1.05)   // the inbox is looked at once a second
        let events = run.step()
        let problems = events.flatMap { event -> [String] in if case .fed(_, _, _, let problems) = event { problems } else { [] } }
        XCTAssertTrue(problems.contains { $0.contains("b.jsonl:1: test.brane.tally died") }, "\(problems)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(folder)/failed/b.jsonl"))
        XCTAssertEqual(rename("\(folder)/failed/b.jsonl", "\(folder)/b.jsonl"), 0)
        Thread.sleep(forTimeInterval: 1.05)   // the inbox is looked at once a second
        _ = run.step()
        XCTAssertEqual(run.inbox.pending("biometrics.daily"), [])
        XCTAssertEqual(try alerts(store), uninterrupted)
    }

    /// A specialist killed in the middle of a file: what was fed before the line it died on is
    /// committed, the file goes to failed/ keeping its place, and dropped in again it resumes at
    /// that line, into a new instance replayed the committed window — the alerts of one run.
    func testASpecialistKilledMidFileResumesAtTheLineItDiedOn() throws {
        let store = try store("mid-file")
        let run = try runner(store, "mid-file")
        let folder = run.inbox.folder("biometrics.daily")
        try feed(run, days[..<10], as: "a.jsonl")   // the specialists are running
        // The neuroscientist, fed after the tally: it dies on a line the tally already took.
        let pid = try XCTUnwrap(run.plugins.first { $0.plan.bundle.manifest.id == "com.brane.neuroscientist" }?.pid)
        final class Lines: @unchecked Sendable { var asked = 0 }
        let lines = Lines()
        run.stopRequested = {
            lines.asked += 1
            if lines.asked == 50 { kill(pid, SIGKILL) }   // before line 50 of b.jsonl (day 59, inside the episode)
            return false
        }
        try (days[10..<70].joined(separator: "\n") + "\n").write(toFile: "\(folder)/b.jsonl", atomically: true, encoding: .utf8)
        try (days[70...].joined(separator: "\n") + "\n").write(toFile: "\(folder)/c.jsonl", atomically: true, encoding: .utf8)
        Thread.sleep(forTimeInterval: 1.05)   // the inbox is looked at once a second
        let interrupted = run.step().compactMap { event -> (Int, [String])? in if case .fed(_, let count, _, let problems) = event { (count, problems) } else { nil } }
        let problems = interrupted.flatMap(\.1)
        XCTAssertTrue(problems.contains { $0.contains("b.jsonl:50: com.brane.neuroscientist died") && $0.contains("it resumes at this line") }, "\(problems)")
        XCTAssertEqual(interrupted.map(\.0), [49], "the line it died on is not counted as fed, and c.jsonl waits")
        XCTAssertEqual(run.inbox.pending("biometrics.daily"), ["\(folder)/c.jsonl"], "after the death nothing later reaches the rules first")
        XCTAssertEqual(run.deaths.map(\.pluginID), ["com.brane.neuroscientist"], "the replaced specialist's death is kept for the report")
        XCTAssertEqual(rename("\(folder)/failed/b.jsonl", "\(folder)/b.jsonl"), 0)
        Thread.sleep(forTimeInterval: 1.05)
        let resumed = run.step().compactMap { event -> Int? in if case .fed(_, let count, _, _) = event { count } else { nil } }
        XCTAssertEqual(resumed, [11, 20], "lines 50-60 of b.jsonl, then c.jsonl")
        XCTAssertEqual(try alerts(store), uninterrupted)
        let window = try store.specialistWindow(neuron: "state-test", specialist: "com.brane.neuroscientist", limit: 10_000)
        XCTAssertEqual(window.map { String(decoding: $0, as: UTF8.self) }, days, "each day once in the window")
        let tallied = try store.specialistWindow(neuron: "state-test", specialist: "test.brane.tally", limit: 10_000)
        XCTAssertEqual(tallied.map { String(decoding: $0, as: UTF8.self) }, days, "the tally's window: every day, once")
    }

    /// A file dropped in again under the same name — even the same inode, rewritten in place — is
    /// new data: fed and its alerts stored (alert keys carry the feed's generation, not the inode,
    /// which filesystems recycle at once).
    func testANewFileUnderAnOldNameAndInodeIsFedAsNewData() throws {
        let store = try store("generations")
        let run = try runner(store, "generations")
        let folder = run.inbox.folder("biometrics.daily")
        try feed(run, days[..<50], as: "x.jsonl")
        XCTAssertEqual(try alerts(store).filter { $0.contains("every-25") }.count, 2)
        let done = "\(folder)/done/x.jsonl"
        var before = stat(), after = stat()
        XCTAssertEqual(stat(done, &before), 0)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: done))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data((days[50...].joined(separator: "\n") + "\n").utf8))
        try handle.close()
        XCTAssertEqual(rename(done, "\(folder)/x.jsonl"), 0)
        XCTAssertEqual(stat("\(folder)/x.jsonl", &after), 0)
        XCTAssertEqual(before.st_ino, after.st_ino, "the same inode, under the same name")
        Thread.sleep(forTimeInterval: 1.05)
        _ = run.step()
        XCTAssertEqual(try alerts(store), uninterrupted, "the second file's alerts are stored too")
    }

    /// A part-fed file rewritten in place (same name, same inode, other bytes) is another file: fed
    /// from its first line, not from where the first one stopped.
    func testAPartFedFileReplacedInPlaceIsFedFromTheTop() throws {
        let store = try store("rewritten")
        let run = try runner(store, "rewritten")
        let folder = run.inbox.folder("biometrics.daily"), file = "\(folder)/x.jsonl"
        try (days[..<60].joined(separator: "\n") + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        final class Lines: @unchecked Sendable { var asked = 0 }
        let lines = Lines()
        run.stopRequested = { lines.asked += 1; return lines.asked > 40 }
        let first = run.step().compactMap { event -> Int? in if case .fed(_, let count, _, _) = event { count } else { nil } }
        XCTAssertEqual(first, [40])
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: file))   // same inode, new content, longer
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data((days[60...].joined(separator: "\n") + "\n" + days[..<40].joined(separator: "\n") + "\n").utf8))
        try handle.close()
        run.stopRequested = { false }
        Thread.sleep(forTimeInterval: 1.05)
        let second = run.step().compactMap { event -> Int? in if case .fed(_, let count, _, _) = event { count } else { nil } }
        XCTAssertEqual(second, [70], "all of the new file, from its first line")
    }

    /// A file renamed in under the name of one being fed is not moved to done/ unread: it stays, and is fed next.
    func testAFileRenamedInDuringAFeedIsNotTakenForTheOneFed() throws {
        let store = try store("renamed-in")
        let run = try runner(store, "renamed-in")
        let folder = run.inbox.folder("biometrics.daily"), file = "\(folder)/x.jsonl"
        try (days[..<45].joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        try (days[45...].joined(separator: "\n") + "\n").write(toFile: "\(folder)/.next", atomically: true, encoding: .utf8)
        final class Lines: @unchecked Sendable { var asked = 0 }
        let lines = Lines()
        run.stopRequested = {
            lines.asked += 1
            if lines.asked == 20 { rename("\(folder)/.next", file) }   // the writer's next file, renamed in as it should be
            return false
        }
        _ = run.step()
        XCTAssertEqual(run.inbox.pending("biometrics.daily"), [file], "the new file waits in the inbox")
        Thread.sleep(forTimeInterval: 1.05)
        _ = run.step()
        XCTAssertEqual(run.inbox.pending("biometrics.daily"), [])
        XCTAssertEqual(try alerts(store), uninterrupted, "both files' events, each once")
    }

    /// A failed file dropped in again under another name still resumes where it stopped (the same
    /// inode and first bytes), and an inbox named by another spelling (a link to it) is the same inbox.
    func testAFailedFileRenamedAndAnInboxSpelledAnotherWayResume() throws {
        let store = try store("spelled")
        let real = directory.appendingPathComponent("inbox-spelled").path
        let resolved = try NeuronLoader.parse(tallyAndNeuroscientistYAML(id: "state-test"), file: "state-test.yaml", plugins: plugins).neuron
        var run = try NeuronRunner(neuron: resolved, runner: try ResourceLocator.current.runner(), store: store, inboxRoot: real)
        let folder = run.inbox.folder("biometrics.daily")
        let pid = try XCTUnwrap({ try feed(run, days[..<10], as: "a.jsonl"); return run.plugins.first { $0.plan.bundle.manifest.id == "com.brane.neuroscientist" }?.pid }())
        final class Lines: @unchecked Sendable { var asked = 0 }
        let lines = Lines()
        run.stopRequested = { lines.asked += 1; if lines.asked == 30 { kill(pid, SIGKILL) }; return false }
        try (days[10...].joined(separator: "\n") + "\n").write(toFile: "\(folder)/b.jsonl", atomically: true, encoding: .utf8)
        Thread.sleep(forTimeInterval: 1.05)
        _ = run.step()
        run.stop()
        XCTAssertEqual(rename("\(folder)/failed/b.jsonl", "\(folder)/c.jsonl"), 0, "dropped in again as c.jsonl")
        // The next run names the inbox through a link to it.
        let link = directory.appendingPathComponent("inbox-link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real)
        run = try NeuronRunner(neuron: resolved, runner: try ResourceLocator.current.runner(), store: store, inboxRoot: link + "/")
        defer { run.stop() }
        let resumed = run.step().compactMap { event -> Int? in if case .fed(_, let count, _, _) = event { count } else { nil } }
        XCTAssertEqual(resumed, [51], "from line 30 of b.jsonl, now c.jsonl")
        XCTAssertEqual(try alerts(store), uninterrupted)
    }

    /// A done/ planted as a link is not followed: the file stays in the inbox and the problem is named.
    func testADoneFolderThatIsALinkIsNotFollowed() throws {
        let store = try store("linked-done")
        let run = try runner(store, "linked-done")
        let folder = run.inbox.folder("biometrics.daily")
        let elsewhere = directory.appendingPathComponent("elsewhere").path
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/done", withDestinationPath: elsewhere)
        try (days[0] + "\n").write(toFile: "\(folder)/x.jsonl", atomically: true, encoding: .utf8)
        let problems = run.step().flatMap { event -> [String] in if case .fed(_, _, _, let problems) = event { problems } else { [] } }
        XCTAssertTrue(problems.contains { $0.contains("is not a directory (a symbolic link?)") }, "\(problems)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere), [])
        XCTAssertEqual(run.inbox.pending("biometrics.daily"), ["\(folder)/x.jsonl"])
    }

    /// A specialist that spends its lifetime CPU-time limit is replaced and the file resumes at the
    /// line — not parked in failed/ — and the count it keeps comes out exact.
    func testASpecialistAtItsCPULimitIsReplacedAndTheFileGoesOn() throws {
        let plugins = directory.appendingPathComponent("cpu-plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        try BundledPlugins.copy("test.brane.tally", into: plugins, from: BundledPlugins.repository.appendingPathComponent("Tests/Fixtures/Tally").path) {
            // A window of 8 events: a replay costs at most one burning event, so each instance gets on.
            $0.replacingOccurrences(of: "  callTimeout: 2s", with: "  callTimeout: 2s\n  cpuTime: 1s").replacingOccurrences(of: "window: 10000", with: "window: 8")
        }
        let yaml = tierZeroNeuronYAML(id: "cpu-test").replacingOccurrences(of: "  - plugin: com.brane.neuroscientist\n", with: "  - plugin: test.brane.tally\n")
        let resolved = try NeuronLoader.parse(yaml, file: "cpu-test.yaml", plugins: PluginLocator(searchDirectories: [plugins.path])).neuron
        let store = try store("cpu")
        let run = try NeuronRunner(neuron: resolved, runner: try ResourceLocator.current.runner(), store: store,
                                   inboxRoot: directory.appendingPathComponent("inbox-cpu").path)
        defer { run.stop() }
        let folder = run.inbox.folder("biometrics.daily")
        // 50 events, every 8th costs 300 ms of CPU: 1.8 s in all, past the 1 s limit.
        let events = (1...50).map { #"{"date":"d\#($0)","burn":\#($0 % 8 == 0)}"# }
        try (events.joined(separator: "\n") + "\n").write(toFile: "\(folder)/x.jsonl", atomically: true, encoding: .utf8)
        var problems: [String] = []
        for _ in 0..<6 where !run.inbox.pending("biometrics.daily").isEmpty {
            problems += run.step(now: Date().addingTimeInterval(3600 * Double(problems.count + 1))).flatMap { event -> [String] in
                if case .fed(_, _, _, let problems) = event { problems } else { [] }
            }
        }
        XCTAssertTrue(problems.contains { $0.contains("reached its CPU-time limit over its life") }, "\(problems)")
        XCTAssertEqual(run.inbox.pending("biometrics.daily"), [], "\(problems)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(folder)/failed/x.jsonl"), "\(problems)")
        // (The count restarts from the 8-event window at each replacement: this window is too short
        // for the tally's state on purpose; what is checked is that the file goes on.)
        XCTAssertFalse(try store.alerts(neuron: "cpu-test").isEmpty)
    }

    /// A configuration whose baseline a replay of the window could not rebuild is refused at start,
    /// rather than raise different alerts after a restart.
    func testAConfigurationLongerThanTheWindowIsRefused() throws {
        let yaml = tierZeroNeuronYAML(id: "long-baseline").replacingOccurrences(
            of: "  - plugin: com.brane.neuroscientist\n", with: "  - plugin: com.brane.neuroscientist\n    config: {hrvDrop: {baselineDays: 70}}\n")
        let resolved = try NeuronLoader.parse(yaml, file: "long-baseline.yaml", plugins: plugins).neuron
        let logs = CollectedLines()
        let run = try NeuronRunner(neuron: resolved, runner: try ResourceLocator.current.runner(), store: try store("long"),
                                   inboxRoot: directory.appendingPathComponent("inbox-long").path,
                                   onLog: { _, line in logs.append("\(line.level): \(line.message)") })
        defer { run.stop() }
        let folder = run.inbox.folder("biometrics.daily")
        try (days[0] + "\n").write(toFile: "\(folder)/a.jsonl", atomically: true, encoding: .utf8)
        let problems = run.step().flatMap { event -> [String] in if case .fed(_, _, _, let problems) = event { problems } else { [] } }
        XCTAssertTrue(problems.contains { $0.contains("a.jsonl:1: com.brane.neuroscientist died") && $0.contains("init") }, "\(problems)")
        XCTAssertTrue(logs.all.contains {
            $0.contains("error: init failed: hrvDrop: baselineDays + consecutiveDays + 1 is 74, more than the 64 days the host replays")
        }, "\(logs.all)")
    }

    /// A manifest's window is a whole number of events within the replay bound.
    func testTheWindowIsBounded() throws {
        for (value, message) in [("0", "specialist.window: 0 is out of range; expected 1…10000"),
                                 ("100000", "specialist.window: 100000 is out of range; expected 1…10000"),
                                 ("28d", "specialist.window: expected a whole number, found")] {
            let manifest = try String(contentsOfFile: BundledPlugins.path("com.brane.neuroscientist") + "/manifest.yaml", encoding: .utf8)
            XCTAssertTrue(manifest.contains("  window: 256\n"))
            XCTAssertThrowsError(try ManifestLoader.parse(manifest.replacingOccurrences(of: "window: 256", with: "window: \(value)"),
                                                          file: "manifest.yaml"), value) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }
}

/// The same through `brane neuron run`: killed with SIGKILL at random instants and restarted, or
/// reloaded with SIGHUP again and again while it feeds, it stores exactly the alerts of one
/// uninterrupted run, each once, and leaves no plugin process behind.
final class KilledAndReloadedRunTests: XCTestCase {
    private lazy var directory: URL = {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }()

    /// 2,700 days: the 90-day dataset thirty times over, each copy dated after the one before.
    private func longDataset() throws -> String {
        let days = try String(contentsOfFile: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl", encoding: .utf8)
            .split(separator: "\n").compactMap { try? JSONValue(parsing: Array($0.utf8)) }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let first = calendar.date(from: DateComponents(year: 2026, month: 1, day: 5))!
        let format = Date.ISO8601FormatStyle().year().month().day()
        return (0..<2700).map { index -> String in
            guard case .object(var day) = days[index % days.count] else { return "" }
            day["date"] = .string(calendar.date(byAdding: .day, value: index, to: first)!.formatted(format))
            return JSONValue.object(day).serialized()
        }.joined(separator: "\n") + "\n"
    }

    private struct Setup {
        var home: BraneHome
        var neuronFile: String
        var folder: String
        var store: String
    }

    private func setup(_ name: String, dataset: String) throws -> Setup {
        let root = directory.appendingPathComponent(name)
        let home = BraneHome(root: root.appendingPathComponent("home").path)
        let neuronFile = root.appendingPathComponent("kill-test.yaml").path
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try tallyAndNeuroscientistYAML(id: "kill-test").write(toFile: neuronFile, atomically: true, encoding: .utf8)
        let folder = "\(home.inbox)/kill-test/biometrics.daily"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try dataset.write(toFile: "\(folder)/.days.jsonl", atomically: true, encoding: .utf8)
        XCTAssertEqual(rename("\(folder)/.days.jsonl", "\(folder)/days.jsonl"), 0)
        return Setup(home: home, neuronFile: neuronFile, folder: folder, store: home.observations)
    }

    private func start(_ setup: Setup) throws -> RunningProcess {
        try RunningProcess.brane(["neuron", "run", setup.neuronFile, "--plugins", try tallyPlugins(in: directory), "--plugins", BundledPlugins.directory,
                                  "--duration", "60s"], home: setup.home)
    }

    /// Runs until the file is in done/, then stops it cleanly: the run's output, and how long the
    /// feed took from the header (printed once its signal handlers are in).
    @discardableResult
    private func finish(_ run: RunningProcess, _ setup: Setup) -> (output: String, milliseconds: Int) {
        XCTAssertTrue(run.waitFor("running neuron kill-test"), run.stderr)
        let started = Date(), end = started.addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: "\(setup.folder)/done/days.jsonl") && Date() < end { usleep(5_000) }
        let milliseconds = Int(Date().timeIntervalSince(started) * 1000)
        run.signal(SIGTERM)
        XCTAssertEqual(run.exitStatus(), 0, run.stderr)
        return (run.stdout + run.stderr, milliseconds)
    }

    private func alerts(_ setup: Setup) throws -> [String] {
        try ObservationStore(path: setup.store).alerts(neuron: "kill-test").map { $0.alert.serialized() }
    }

    func testSIGKILLAtRandomInstantsAndSIGHUPReloadsStoreTheAlertsOfOneRunOnce() throws {
        let dataset = try longDataset()
        let reference = try setup("reference", dataset: dataset)
        let feedTime = finish(try start(reference), reference).milliseconds
        let expected = try alerts(reference)
        XCTAssertEqual(expected.filter { $0.contains("every-25") }.count, 108, "a tally every 25 of 2,700 events")
        XCTAssertGreaterThanOrEqual(expected.filter { $0.contains("hrv-drop") }.count, 10, "about two HRV alerts per 90 days")

        // SIGKILL at random instants: the host dies with no chance to commit, and the plugins with it.
        let killed = try setup("killed", dataset: dataset)
        var delays: [Int] = [], plugins = Set<Int32>(), killedWhilePending = 0
        for _ in 0..<6 {
            let run = try start(killed)
            XCTAssertTrue(run.waitFor("running neuron kill-test"), run.stderr)
            // Each restart resumes the file, so six kills within a third of the feed each land in it.
            let delay = Int.random(in: 0...max(10, feedTime / 3))
            delays.append(delay)
            usleep(UInt32(delay) * 1000)
            plugins.formUnion(run.children)
            run.signal(SIGKILL)
            _ = run.exitStatus()
            if !FileManager.default.fileExists(atPath: "\(killed.folder)/done/days.jsonl") { killedWhilePending += 1 }
        }
        let output = finish(try start(killed), killed).output
        XCTAssertEqual(try alerts(killed), expected, "killed after \(delays) ms; last run: \(output)")
        XCTAssertGreaterThan(killedWhilePending, 0, "some kill came before the file was fed whole (\(delays) ms, feed \(feedTime) ms)")
        let deadline = Date().addingTimeInterval(5)
        while !plugins.filter(ProcessTable.isAlive).isEmpty && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(plugins.filter(ProcessTable.isAlive), [], "no plugin outlives a killed host")

        // SIGHUP while it feeds, again once each reload is done: each ends the feed at a line, and
        // a new runner, with new instances replayed their window, resumes the file there.
        let reloaded = try setup("reloaded", dataset: dataset)
        let run = try start(reloaded)
        XCTAssertTrue(run.waitFor("running neuron kill-test"), run.stderr)
        for count in 1...8 where !FileManager.default.fileExists(atPath: "\(reloaded.folder)/done/days.jsonl") {
            usleep(UInt32.random(in: 0...20_000))
            run.signal(SIGHUP)
            XCTAssertTrue(run.waitFor("reloaded \(reloaded.neuronFile)", count: count), run.stderr)
        }
        let text = finish(run, reloaded).output
        let parts = text.split(separator: "\n").filter { $0.contains("inbox \(reloaded.folder)/days.jsonl:") }
        XCTAssertGreaterThan(parts.count, 1, "the feed was split by reloads: \(text)")
        XCTAssertEqual(try alerts(reloaded), expected, text)
    }
}

/// Disk full, for real: the store and the inbox on a 4 MiB tmpfs filled to the last byte. The
/// feed stores nothing it cannot, says so per file and line, and keeps the file in the inbox;
/// once space is free the next feed stores each alert exactly once. (Needs root to mount.)
final class DiskFullTests: XCTestCase {
    func testAFullDiskLosesNothingAndDoublesNothing() throws {
        guard geteuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root") }
        let mount = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: mount) }
        let mountResult = try CLI.capture("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mount.path])
        guard mountResult.status == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(mountResult.stderr)") }
        defer { _ = try? CLI.capture("/bin/umount", ["-l", mount.path]) }

        let plugins = PluginLocator(searchDirectories: [try tallyPlugins(in: mount), BundledPlugins.directory])
        let neuron = try NeuronLoader.parse(tallyAndNeuroscientistYAML(id: "full-test"), file: "full-test.yaml", plugins: plugins).neuron
        let store = try ObservationStore(path: mount.appendingPathComponent("observations.sqlite").path)
        let runner = try NeuronRunner(neuron: neuron, runner: try ResourceLocator.current.runner(), store: store,
                                      inboxRoot: mount.appendingPathComponent("inbox").path)
        defer { runner.stop() }
        let folder = runner.inbox.folder("biometrics.daily")
        try FileManager.default.copyItem(atPath: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl", toPath: "\(folder)/hrv.jsonl")

        // Fill every byte left.
        let filler = mount.appendingPathComponent("filler").path
        let fd = open(filler, O_WRONLY | O_CREAT, 0o600)
        let block = [UInt8](repeating: 0xAA, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        XCTAssertEqual(errno, ENOSPC)
        _ = block.withUnsafeBytes { write(fd, $0.baseAddress, 1) }
        close(fd)

        let full = runner.step()
        let problems = full.flatMap { event -> [String] in if case .fed(_, _, _, let problems) = event { problems } else { [] } }
        XCTAssertTrue(problems.contains { $0.contains("hrv.jsonl:1: not stored") && $0.contains("the file stays in the inbox and is fed again from line 1") },
                      "\(problems)")
        XCTAssertEqual(runner.inbox.pending("biometrics.daily"), ["\(folder)/hrv.jsonl"], "not marked done")
        XCTAssertEqual(try store.alerts(neuron: "full-test"), [])

        // Space again: the next look at the inbox feeds it, and every alert is stored once.
        XCTAssertEqual(unlink(filler), 0)
        Thread.sleep(forTimeInterval: 1.05)
        _ = runner.step()
        XCTAssertEqual(runner.inbox.pending("biometrics.daily"), [])
        // The same alerts, to the last figure, as a run that never met a full disk: the specialist
        // that had read the file while nothing could be stored was replaced and replayed.
        let reference = try ObservationStore(path: mount.appendingPathComponent("reference.sqlite").path)
        let clean = try NeuronRunner(neuron: neuron, runner: try ResourceLocator.current.runner(), store: reference,
                                     inboxRoot: mount.appendingPathComponent("inbox-reference").path)
        defer { clean.stop() }
        try FileManager.default.copyItem(atPath: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl",
                                         toPath: clean.inbox.folder("biometrics.daily") + "/hrv.jsonl")
        _ = clean.step()
        let expected = try reference.alerts(neuron: "full-test").map { $0.alert.serialized() }
        XCTAssertEqual(expected.count, 5, "two HRV alerts, three tallies")
        XCTAssertEqual(try store.alerts(neuron: "full-test").map { $0.alert.serialized() }, expected)
    }
}
