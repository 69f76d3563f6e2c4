@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Instances forked by their plugin's zygote (InstanceLauncher): the host's own children, each with
/// a canary of its own, a layout shared only with the same plugin's instances, and nothing of the
/// zygote's; the hostile suite runs through this path (and again spawned, in scripts/test).
final class ZygoteTests: XCTestCase {
    /// Each test starts with no zygote: what one test leaves (a spare, a stopped zygote) is not the next one's.
    override func setUp() { InstanceLauncher.endZygotes() }

    private func plan(_ directory: String, zygote: Bool = true) throws -> SandboxPlan {
        var settings = SandboxSettings.current
        settings.zygote = zygote
        return try SandboxPlan(bundle: try PluginBundle.open(directory), settings: settings)
    }

    private func layout(_ instance: PluginInstance) throws -> (guard: String, libc: String, parent: Int) {
        let answer = try Harness.json(try instance.call(method: "inspect/layout", input: Array("{}".utf8)))
        return (try XCTUnwrap(answer["stackGuard"]?.stringValue), try XCTUnwrap(answer["libc"]?.stringValue),
                Int(try XCTUnwrap(answer["parent"]?.numberValue)))
    }

    private func status(_ pid: Int32) -> String { (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? "" }

    private func networkNamespace(_ pid: Int32) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net") }

    /// Starts an instance of `plan`'s plugin twice through `start`, and waits for what that leaves:
    /// its zygote (in the host's network namespace) and two spares (each in an empty one of its
    /// own), with `sandboxed`, both with their sandbox applied ahead (the load filter on).
    private func zygoteAndSpares(of plan: SandboxPlan, sandboxed: Bool = false, starting start: () throws -> Void) throws -> (zygote: Int32, spares: Set<Int32>) {
        for _ in 0..<2 { try start() }
        let inHostNetwork = { [self] (pid: Int32) in networkNamespace(pid) == networkNamespace(getpid()) }
        let ready = { [self] (pids: Set<Int32>) in
            pids.count == 3 && pids.filter(inHostNetwork).count == 1
                && (!sandboxed || pids.filter { status($0).contains("Seccomp:\t2\n") }.count == 2)
        }
        let deadline = Date().addingTimeInterval(5)
        var pids = InstanceLauncher.zygotePIDs(of: plan)
        while !ready(pids) && Date() < deadline {
            usleep(5000)
            pids = InstanceLauncher.zygotePIDs(of: plan)
        }
        let zygote = try XCTUnwrap(ready(pids) ? pids.first(where: inHostNetwork) : nil, "a zygote and two spares in their own namespaces: \(pids)")
        return (zygote, pids.subtracting([zygote]))
    }

    func testInstancesAreTheHostsChildrenWithCanariesOfTheirOwnAndTheirPluginsLayoutOnly() throws {
        let hostile = try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest))
        let runner = try Harness.runner()
        let first = try PluginInstance(plan: hostile, runner: runner), second = try PluginInstance(plan: hostile, runner: runner)
        defer { [first, second].forEach { $0.stop() } }
        let (a, b) = (try layout(first), try layout(second))
        XCTAssertEqual([a.parent, b.parent], [Int(getpid()), Int(getpid())], "the host is every instance's parent, not the zygote")
        XCTAssertEqual(a.libc, b.libc, "two instances of one plugin fork from one zygote")
        XCTAssertNotEqual(a.guard, b.guard, "each instance has a stack canary of its own")
        XCTAssertFalse(InstanceLauncher.zygotePIDs(of: hostile).isEmpty)

        // The zygote runs no plugin code and has no sandbox: one thread, no filter, no plugin library.
        // A spare has its instance's sandbox on already (the load filter, no privileges), its plugin not loaded.
        let (zygote, spares) = try zygoteAndSpares(of: hostile, sandboxed: true) {}
        for pid in [zygote] + spares {
            XCTAssertTrue(status(pid).contains("Threads:\t1\n"), status(pid))
            let maps = (try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? ""
            XCTAssertFalse(maps.contains("libHostileFixture"), "\(pid) never loads the plugin")
        }
        XCTAssertTrue(status(zygote).contains("Seccomp:\t0\n"), status(zygote))
        for pid in spares {
            for line in ["Seccomp:\t2\n", "Seccomp_filters:\t1\n", "NoNewPrivs:\t1\n", "CapEff:\t0000000000000000\n", "CapBnd:\t0000000000000000\n"] {
                XCTAssertTrue(status(pid).contains(line), "spare \(pid) lacks \(line): \(status(pid))")
            }
        }

        try XCTSkipIf((try? String(contentsOfFile: "/proc/sys/kernel/randomize_va_space", encoding: .utf8))?.hasPrefix("0") == true,
                      "address space randomisation is off on this machine")
        // Another plugin (another library) forks from another zygote; a spawned runner has a layout of its own.
        let twin = try PluginInstance(plan: try plan(try Harness.hostileCopy(self, library: "libHostileTwin.so")), runner: runner)
        let spawned = try PluginInstance(plan: try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest), zygote: false), runner: runner)
        defer { [twin, spawned].forEach { $0.stop() } }
        XCTAssertNotEqual(try layout(twin).libc, a.libc, "no plugin shares another's layout")
        XCTAssertNotEqual(try layout(spawned).libc, a.libc)
    }

    /// A plugin that crashes its instance to probe the layout gets a fresh zygote each time.
    func testAnInstanceDeathRetiresItsPluginsZygote() throws {
        let plugin = try Harness.hostile(self)
        defer { plugin.stop() }
        _ = try plugin.callJSON("ping")
        let before = InstanceLauncher.zygotePIDs(of: plugin.plan)
        XCTAssertFalse(before.isEmpty)
        _ = plugin.expectDeath("crash/segfault")
        XCTAssertTrue(before.allSatisfy { !processExists($0) }, "the zygote and its spare are ended with the death")
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
        let after = InstanceLauncher.zygotePIDs(of: plugin.plan)
        XCTAssertFalse(after.isEmpty)
        XCTAssertTrue(after.isDisjoint(with: before))
    }

    /// Killing the zygote or its spare (by anyone, at any time) costs a start nothing but the fork:
    /// the instance is spawned instead, no death is reported, and the next start has a new zygote.
    func testAKilledZygoteAndSpareLeaveStartsWorking() throws {
        let plugin = try Harness.hostile(self)
        defer { plugin.stop() }
        let (zygote, spares) = try zygoteAndSpares(of: plugin.plan) {
            _ = try plugin.callJSON("ping")
            plugin.stop()
        }
        let killed = spares.union([zygote])
        for pid in killed { kill(pid, SIGKILL) }
        for _ in 0..<3 {
            plugin.stop()
            XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
        }
        XCTAssertEqual(plugin.deaths.map(\.cause), [])
        XCTAssertTrue(InstanceLauncher.zygotePIDs(of: plugin.plan).isDisjoint(with: killed))
    }

    /// A spare enters its namespaces for the plan it was forked for; the same plugin started with
    /// another network isolation (`network.observe`) gets a child of its own, not that spare.
    func testASpareIsOnlyUsedForTheNamespacesItEntered() throws {
        let runner = try Harness.runner()
        let isolated = try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest))
        _ = try zygoteAndSpares(of: isolated) { try PluginInstance(plan: isolated, runner: runner).stop() }

        let observing = try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest + "network:\n  mode: none\n  observe: true\n"))
        XCTAssertFalse(observing.isolateNetwork)
        let instance = try PluginInstance(plan: observing, runner: runner)
        defer { instance.stop() }
        XCTAssertEqual(networkNamespace(instance.pid), networkNamespace(getpid()), "an observing plugin sees the machine's network")
        XCTAssertEqual(try layout(instance).parent, Int(getpid()))
    }

    /// A spare applies its sandbox ahead for the plan that prepared it, and that plan's next start
    /// takes it. A start whose SETUP would differ in anything (here only the plugin's config), or
    /// whose Landlock paths are other files than when the spare was sandboxed (a plugin directory
    /// replaced in place, as an install does), never takes one, and gets what it asked for.
    func testASpareSandboxedAheadServesOnlyTheSamePlanOnTheSameFiles() throws {
        let runner = try Harness.runner()
        let directory = Harness.pluginDirectory(self, manifest: Harness.hostileManifest)
        let first = try plan(directory)
        let spares = try zygoteAndSpares(of: first, sandboxed: true) { try PluginInstance(plan: first, runner: runner).stop() }.spares
        let same = try PluginInstance(plan: first, runner: runner)
        XCTAssertTrue(spares.contains(same.pid), "the plan that prepared a spare takes it: \(same.pid) not in \(spares)")
        same.stop()

        var other = first
        other.config = .object(["another": .bool(true)])
        let before = InstanceLauncher.zygotePIDs(of: first)
        let configured = try PluginInstance(plan: other, runner: runner)
        defer { configured.stop() }
        XCTAssertFalse(before.contains(configured.pid), "a spare sandboxed for another plan was used")
        XCTAssertEqual(try Harness.json(try configured.call(method: "inspect/config", input: Array("{}".utf8)))["another"], .bool(true))

        let sandboxed = try zygoteAndSpares(of: first, sandboxed: true) { try PluginInstance(plan: first, runner: runner).stop() }.spares
        let moved = directory + ".old"
        try FileManager.default.moveItem(atPath: directory, toPath: moved)
        try FileManager.default.copyItem(atPath: moved, toPath: directory)
        let replaced = try PluginInstance(plan: try plan(directory), runner: runner)
        defer { replaced.stop() }
        XCTAssertFalse(sandboxed.contains(replaced.pid), "a spare whose Landlock rules hold the old directory was used")
        XCTAssertEqual(try Harness.json(try replaced.call(method: "ping", input: Array("{}".utf8))), .object(["pong": .bool(true)]))
    }

    /// Red team: a plugin that SIGKILLed itself in init, started from a spare sandboxed ahead, was
    /// taken for a spare killed while it waited: no death reported, its zygote kept. LOADING, sent
    /// before the plugin is loaded, is where plugin code may begin: after it, any end is the plugin's.
    func testAPluginThatKillsItselfInInitFromASpareIsReportedAndRetiresItsZygote() throws {
        let runner = try Harness.runner()
        let directory = Harness.pluginDirectory(self, manifest: Harness.hostileManifest + "config:\n  initAttack: sigkill-in-init-after-marker\n")
        let hostile = try plan(directory)
        let (zygote, spares) = try zygoteAndSpares(of: hostile, sandboxed: true) { try PluginInstance(plan: hostile, runner: runner).stop() }
        XCTAssertTrue(FileManager.default.createFile(atPath: directory + "/kill-marker", contents: Data()))
        XCTAssertThrowsError(try PluginInstance(plan: hostile, runner: runner)) { error in
            let death = error as? PluginDeath
            XCTAssertEqual(death?.termination, .signaled(signal: SIGKILL, coreDumped: false), "\(error)")
            XCTAssertTrue(spares.contains(death?.pid ?? 0), "the spare's own death is the one reported, not a retry's: \(error)")
        }
        XCTAssertFalse(InstanceLauncher.zygotePIDs(of: hostile).contains(zygote), "its death retires the zygote")
    }

    /// Red team: spares stopped while they waited (SIGSTOP) were blamed on the plugin after the
    /// start's 10 s. A spare that does not answer LOADING within 2 s ran no plugin code: it is
    /// ended and the start made again, with nothing reported.
    func testStoppedSparesAreReplacedNotBlamed() throws {
        let plugin = try Harness.hostile(self)
        defer { plugin.stop() }
        let (_, spares) = try zygoteAndSpares(of: plugin.plan, sandboxed: true) {
            _ = try plugin.callJSON("ping")
            plugin.stop()
        }
        for pid in spares { kill(pid, SIGSTOP) }
        let started = ContinuousClock.now
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(5))
        XCTAssertEqual(plugin.deaths.map(\.cause), [])
        for pid in spares { kill(pid, SIGCONT) }
    }

    /// A zygote that stops answering (stopped, swapped out, frozen) is ended after its 2 s: its
    /// late answer must never be read as the next request's, which would pair one child's pid
    /// with another's socket (found by the red team: plugin code then ran untracked, under
    /// another instance's uid, with its forbidden calls unanswered).
    func testAZygoteThatAnswersLateIsEndedAndNoStartIsMisPaired() throws {
        let plugin = try Harness.hostile(self)
        defer { plugin.stop() }
        let zygote = try zygoteAndSpares(of: plugin.plan) {
            _ = try plugin.callJSON("ping")
            plugin.stop()
        }.zygote
        XCTAssertEqual(kill(zygote, SIGSTOP), 0)
        // This start takes a spare; the request for the next then waits on the stopped zygote and runs out of time.
        plugin.stop()
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
        usleep(2_300_000)
        kill(zygote, SIGCONT)   // were it still there, it would answer now, late
        usleep(100_000)
        for _ in 0..<3 {
            plugin.stop()
            _ = try plugin.start()
            let pid = try XCTUnwrap(plugin.pid)
            let layout = try plugin.callJSON("inspect/layout")
            XCTAssertEqual(layout["pid"]?.numberValue, Double(pid), "the host tracks the process it talks to")
            XCTAssertEqual(layout["parent"]?.numberValue, Double(getpid()))
        }
        XCTAssertFalse(processExists(zygote), "the zygote that stopped answering was ended")
        XCTAssertFalse(InstanceLauncher.zygotePIDs(of: plugin.plan).contains(zygote))
        XCTAssertEqual(plugin.deaths.map(\.cause), [])
    }

    /// Not only crashes: a start the host refused after plugin code ran (here a filter of the
    /// plugin's own, caught by the filter count) retires the zygote too.
    func testAStartRefusedAfterPluginCodeRanRetiresTheZygote() throws {
        var refused = try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest))
        let runner = try Harness.runner()
        try PluginInstance(plan: refused, runner: runner).stop()
        let before = InstanceLauncher.zygotePIDs(of: refused)
        XCTAssertFalse(before.isEmpty)
        refused.config = .string("own-filter")
        XCTAssertThrowsError(try PluginInstance(plan: refused, runner: runner)) { error in
            XCTAssertTrue("\(error)".contains("seccomp filters"), "\(error)")
        }
        XCTAssertTrue(InstanceLauncher.zygotePIDs(of: refused).isDisjoint(with: before))
        XCTAssertTrue(before.allSatisfy { !processExists($0) })
    }

    /// One plugin's stalled zygote delays only that plugin's starts (found by the red team: one
    /// lock over every zygote made every plugin wait out the stalled one's 2 s).
    func testAStalledZygoteDoesNotDelayAnotherPlugin() throws {
        let runner = try Harness.runner()
        let stalled = try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest))
        let other = try plan(try Harness.hostileCopy(self, library: "libHostileOther.so"))
        try PluginInstance(plan: stalled, runner: runner).stop()
        try PluginInstance(plan: other, runner: runner).stop()
        let pids = InstanceLauncher.zygotePIDs(of: stalled)
        XCTAssertEqual(pids.count, 1, "one start: a zygote, no spare yet")
        let zygote = try XCTUnwrap(pids.first)
        XCTAssertEqual(kill(zygote, SIGSTOP), 0)
        let waiting = expectation(description: "the stalled plugin's start ends (spawned after 2 s)")
        Thread {
            try? PluginInstance(plan: stalled, runner: runner).stop()
            waiting.fulfill()
        }.start()
        usleep(100_000)   // the start above now waits on the stopped zygote
        let started = ContinuousClock.now
        try PluginInstance(plan: other, runner: runner).stop()
        XCTAssertLessThan(ContinuousClock.now - started, .milliseconds(500), "another plugin's start does not wait for the stalled zygote")
        wait(for: [waiting], timeout: 15)
        XCTAssertFalse(processExists(zygote))
    }

    /// A runner replaced on disk (an upgrade, a sandbox fix) reaches the next start: its zygote
    /// is replaced too, as a spawn would run the new file (found by the red team).
    func testAReplacedRunnerGetsANewZygote() throws {
        let directory = Harness.temporaryDirectory(self)
        let runner = directory.appendingPathComponent("brane-sandbox").path
        try FileManager.default.copyItem(atPath: try Harness.runner(), toPath: runner)
        let hostile = try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest))
        try PluginInstance(plan: hostile, runner: runner).stop()
        let before = InstanceLauncher.zygotePIDs(of: hostile)
        XCTAssertFalse(before.isEmpty)
        let replacement = directory.appendingPathComponent("brane-sandbox.new").path
        try FileManager.default.copyItem(atPath: try Harness.runner(), toPath: replacement)
        XCTAssertEqual(rename(replacement, runner), 0)
        let instance = try PluginInstance(plan: hostile, runner: runner)
        defer { instance.stop() }
        XCTAssertTrue(InstanceLauncher.zygotePIDs(of: hostile).isDisjoint(with: before))
        XCTAssertTrue(before.allSatisfy { !processExists($0) })
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(instance.pid)/exe")
        XCTAssertEqual(executable, runner, "the instance runs the runner now on disk, not a deleted one")
    }

    /// `zygote: false` (or BRANE_ZYGOTE=0) spawns every runner: nothing is forked, nothing kept.
    func testTheSettingTurnsTheZygoteOff() throws {
        let spawned = try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest), zygote: false)
        let instance = try PluginInstance(plan: spawned, runner: try Harness.runner())
        defer { instance.stop() }
        XCTAssertEqual(try layout(instance).parent, Int(getpid()))
        XCTAssertTrue(((try? String(contentsOfFile: "/proc/\(instance.pid)/cmdline", encoding: .utf8)) ?? "").split(separator: "\0").count == 2,
                      "a spawned runner's command line is brane-sandbox <host-pid>")
    }

    func testTheSettingIsReadFromTheEnvironmentAndHostYAML() throws {
        let home = BraneHome(root: Harness.temporaryDirectory(self).path)
        XCTAssertTrue(SandboxSettings.load(environment: [:], home: home).zygote)
        XCTAssertFalse(SandboxSettings.load(environment: ["BRANE_ZYGOTE": "0"], home: home).zygote)
        try "zygote: false\n".write(toFile: home.hostSettings, atomically: true, encoding: .utf8)
        XCTAssertFalse(SandboxSettings.load(environment: [:], home: home).zygote)
        try "zygote: sometimes\n".write(toFile: home.hostSettings, atomically: true, encoding: .utf8)
        let settings = SandboxSettings.load(environment: [:], home: home)
        XCTAssertTrue(settings.zygote, "a value that is not a boolean changes nothing")
        XCTAssertEqual(settings.diagnostics.map(\.description), ["\(home.hostSettings):1:9: error: zygote: expected true or false, found \"sometimes\""])
    }
}
