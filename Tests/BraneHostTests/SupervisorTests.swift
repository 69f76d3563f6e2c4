import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class SupervisorTests: XCTestCase {
    func testRestartsAfterACrashWithBackoffAndRecordsEachDeath() throws {
        let plugin = try Harness.hostile(self)
        let firstPID = try XCTUnwrap({ _ = try plugin.callJSON("ping"); return plugin.pid }())
        _ = plugin.expectDeath("crash/segfault")
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
        XCTAssertNotEqual(plugin.pid, firstPID, "a new instance serves after the crash")
        XCTAssertEqual(plugin.deaths.map(\.cause), [.crashed(signal: SIGSEGV)])
        XCTAssertFalse(processExists(firstPID), "the dead instance was reaped")
    }

    func testCircuitOpensAfterRepeatedFailuresAndClosesAfterItsCooldown() throws {
        var policy = SupervisedPlugin.Policy()
        policy.initialBackoff = .milliseconds(1)
        policy.failureThreshold = 3
        policy.openDuration = .milliseconds(300)
        let plugin = try Harness.hostile(self, policy: policy)
        for _ in 0..<3 { _ = plugin.expectDeath("crash/abort") }
        XCTAssertTrue(plugin.isCircuitOpen)
        guard case .circuitOpen(let id, _, let last)? = plugin.callError("ping") else {
            return XCTFail("calls must be refused while the circuit is open")
        }
        XCTAssertEqual(id, "test.brane.hostile")
        XCTAssertEqual(last?.cause, .crashed(signal: SIGABRT))
        Thread.sleep(forTimeInterval: 0.35)
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]), "half-open: one trial start, which succeeds")
        XCTAssertFalse(plugin.isCircuitOpen)
    }

    func testBackoffDoublesBetweenConsecutiveFailures() throws {
        var policy = SupervisedPlugin.Policy()
        policy.initialBackoff = .milliseconds(40)
        policy.failureThreshold = 10
        let plugin = try Harness.hostile(self, policy: policy)
        _ = plugin.expectDeath("crash/abort")   // next start waits 40 ms
        _ = plugin.expectDeath("crash/abort")   // next start waits 80 ms
        let started = ContinuousClock.now
        _ = try plugin.callJSON("ping")
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - started, .milliseconds(80))
    }

    func testStoppedAndDeadInstancesLeaveNoProcessOrZombie() throws {
        let plugin = try Harness.hostile(self)
        _ = try plugin.callJSON("ping")
        let pid = try XCTUnwrap(plugin.pid)
        plugin.stop()
        XCTAssertFalse(processExists(pid))
        _ = plugin.expectDeath("attack/socket-inet")
        XCTAssertEqual(childrenOfThisProcess().filter { $0 != pid }.count, 0, "no child left behind: \(childrenOfThisProcess())")
    }

    /// PR_SET_PDEATHSIG follows the spawning thread; an instance started from a thread that has
    /// since exited (a Dispatch worker, in `mcp serve`) must keep serving.
    func testAnInstanceOutlivesTheThreadThatStartedIt() throws {
        let plugin = try Harness.hostile(self)
        let started = expectation(description: "started on a short-lived thread")
        let thread = Thread {
            _ = try? plugin.start()
            started.fulfill()
        }
        thread.start()
        wait(for: [started], timeout: 10)
        while !thread.isFinished { usleep(1000) }
        usleep(200_000)  // time for a parent-death signal to arrive, if one were sent
        let pid = try XCTUnwrap(plugin.pid)
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
        XCTAssertEqual(plugin.pid, pid, "the same instance answered")
        XCTAssertEqual(plugin.deaths.map(\.cause), [])
    }

    func testPluginsDieWithTheHost() throws {
        // A real host process (the CLI) running a plugin that sleeps; SIGKILL the host.
        let brane = BuildProducts.brane
        let host = Process()
        host.executableURL = brane
        host.arguments = ["plugin", "run", Harness.hostileDirectory, "attack/sleep-forever"]
        host.standardError = FileHandle.nullDevice
        try host.run()
        // The instance is the child under a seccomp filter; a zygote (also a child) has none.
        var children: [Int32] = [], runner: Int32?
        let deadline = Date().addingTimeInterval(5)
        while runner == nil && Date() < deadline {
            children = ProcessTable.children(of: host.processIdentifier)
            runner = children.first { ((try? String(contentsOfFile: "/proc/\($0)/status", encoding: .utf8)) ?? "").contains("Seccomp:\t2") }
            if runner == nil { Thread.sleep(forTimeInterval: 0.01) }
        }
        _ = try XCTUnwrap(runner, "the host never started its plugin")
        kill(host.processIdentifier, SIGKILL)
        host.waitUntilExit()
        let gone = Date().addingTimeInterval(2)
        while children.contains(where: processExists) && Date() < gone { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(children.filter(processExists), [], "the plugin (or its zygote) outlived its host")
    }
}

/// The leftover check's reader of /proc/PID/stat against names a plugin's child could take to
/// look gone: not UTF-8, ending in a mark that merges with the `)` as a Character, holding `) Z`.
final class ProcessTableTests: XCTestCase {
    func testAProcessIsAliveWhateverItNamesItself() throws {
        // The name is set with prctl(PR_SET_NAME), as any process may, from raw bytes.
        for name in [[0x73, 0x68, 0xd8, 0x80], Array("a) Z 1 (".utf8), [0xcc, 0x81, 0x73, 0x68], [0x73, 0xff, 0x68]] as [[UInt8]] {
            let child = Process()
            child.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            child.arguments = ["-c", "import ctypes, sys; ctypes.CDLL(None).prctl(15, bytes(\(name)), 0, 0, 0); print(flush=True); sys.stdin.read()"]
            let (input, output) = (Pipe(), Pipe())
            (child.standardInput, child.standardOutput) = (input, output)
            try child.run()
            _ = output.fileHandleForReading.availableData  // named by now
            let stat = try XCTUnwrap(FileManager.default.contents(atPath: "/proc/\(child.processIdentifier)/stat"))
            XCTAssertTrue(stat.starts(with: Array("\(child.processIdentifier) (".utf8) + name), "\(name) is its name")
            XCTAssertTrue(ProcessTable.isAlive(child.processIdentifier), "\(name)")
            XCTAssertTrue(ProcessTable.children(of: getpid()).contains(child.processIdentifier), "\(name)")
            child.terminate()
            child.waitUntilExit()
            XCTAssertFalse(ProcessTable.isAlive(child.processIdentifier), "\(name)")
        }
    }
}

func processExists(_ pid: Int32) -> Bool {
    // A zombie still has a /proc entry; count it as existing.
    FileManager.default.fileExists(atPath: "/proc/\(pid)")
}

/// This process's children but its zygotes (they run no plugin code and outlive instances).
func childrenOfThisProcess() -> [Int32] { ProcessTable.children(of: getpid()).filter { !InstanceLauncher.zygotePIDs().contains($0) } }
