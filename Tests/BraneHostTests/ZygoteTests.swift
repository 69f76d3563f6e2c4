@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Instances forked by their plugin's zygote (InstanceLauncher): the host's own children, each with
/// a canary of its own, a layout shared only with the same plugin's instances, and nothing of the
/// zygote's; the hostile suite runs through this path (and again spawned, in scripts/test).
final class ZygoteTests: XCTestCase {
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

        // The zygote (and a spare) run no plugin code: one thread, no filter, no plugin library.
        for pid in InstanceLauncher.zygotePIDs(of: hostile) {
            XCTAssertTrue(status(pid).contains("Threads:\t1\n"), status(pid))
            XCTAssertTrue(status(pid).contains("Seccomp:\t0\n"), status(pid))
            let maps = (try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? ""
            XCTAssertFalse(maps.contains("libHostileFixture"), "the zygote \(pid) never loads the plugin")
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
        for _ in 0..<3 {
            _ = try plugin.callJSON("ping")
            plugin.stop()
        }
        _ = try plugin.callJSON("ping")
        let deadline = Date().addingTimeInterval(2)
        while InstanceLauncher.zygotePIDs(of: plugin.plan).count < 2 && Date() < deadline { usleep(5000) }
        let killed = InstanceLauncher.zygotePIDs(of: plugin.plan)
        XCTAssertEqual(killed.count, 2, "a plugin started more than once keeps a zygote and a spare")
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
        for _ in 0..<2 { try PluginInstance(plan: isolated, runner: runner).stop() }
        let deadline = Date().addingTimeInterval(2)
        while InstanceLauncher.zygotePIDs(of: isolated).count < 2 && Date() < deadline { usleep(5000) }
        XCTAssertEqual(InstanceLauncher.zygotePIDs(of: isolated).count, 2, "the zygote and a spare in an empty network namespace")

        let observing = try plan(Harness.pluginDirectory(self, manifest: Harness.hostileManifest + "network:\n  mode: none\n  observe: true\n"))
        XCTAssertFalse(observing.isolateNetwork)
        let instance = try PluginInstance(plan: observing, runner: runner)
        defer { instance.stop() }
        let namespace = { (pid: Int32) in try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net") }
        XCTAssertEqual(namespace(instance.pid), namespace(getpid()), "an observing plugin sees the machine's network")
        XCTAssertEqual(try layout(instance).parent, Int(getpid()))
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
