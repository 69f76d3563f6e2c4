import BraneHost
import Foundation
import BraneTestSupport
import XCTest

/// Asserts a death is the sandbox stopping `call` (a syscall name, or its whole decoded form).
func assertStopped(_ death: PluginDeath?, call: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let stopped = death?.cause.forbiddenCall else {
        return XCTFail("expected the sandbox to stop \(call), got \(death.map(String.init(describing:)) ?? "no death")", file: file, line: line)
    }
    XCTAssertEqual(call.contains("(") ? stopped.description : stopped.name, call, file: file, line: line)
    XCTAssertEqual(death?.termination, .signaled(signal: SIGKILL, coreDumped: false), "killed by the host", file: file, line: line)
    XCTAssertTrue(death?.description.contains("is not allowed at tier \(stopped.tier)") ?? false, file: file, line: line)
}

/// Every sandbox promise, attacked by a real plugin. Each test asserts exactly how the
/// attack is contained (a forbidden call stopped and named, EACCES, a limit, a host kill) and that the host then serves
/// the plugin again from a fresh instance.
final class HostileTests: XCTestCase {
    /// The attack is stopped in the kernel, reported by the host's listener as `call` — a name, or
    /// the whole decoded call when it holds "(" — and the instance killed by the host (SIGKILL).
    private func assertSandboxKills(_ method: String, input: String = "{}", call: String,
                                    file: StaticString = #filePath, line: UInt = #line) throws {
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]), file: file, line: line)
        let death = plugin.expectDeath(method, input: input, file: file, line: line)
        assertStopped(death, call: call, file: file, line: line)
        XCTAssertEqual(death?.pluginID, "test.brane.hostile", file: file, line: line)
        plugin.assertServesAgain(file: file, line: line)
    }

    private func errnoOf(_ plugin: SupervisedPlugin, _ method: String, path: String) throws -> Double? {
        try plugin.callJSON(method, input: #"{"path":"\#(path)"}"#)["errno"]?.numberValue
    }

    // MARK: Network in tier 0

    func testInternetSocketInTierZeroIsStoppedAndNamed() throws { try assertSandboxKills("attack/socket-inet", call: "socket(AF_INET, SOCK_STREAM, 0)") }
    func testUnixSocketPairInTierZeroIsStoppedAndNamed() throws { try assertSandboxKills("attack/socketpair-unix", call: "socketpair(AF_UNIX, SOCK_STREAM, 0)") }

    // MARK: Files

    func testReadingEtcShadowIsDeniedByLandlock() throws {
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(try errnoOf(plugin, "attack/open-read", path: "/etc/shadow"), Double(EACCES))
        XCTAssertEqual(try errnoOf(plugin, "attack/open-read", path: "/etc/hostname"), Double(EACCES))
    }

    func testReadingTheHostsDataDirectoryIsDenied() throws {
        let home = Harness.temporaryDirectory(self)
        let registry = home.appendingPathComponent("registry.sqlite")
        try Data("host data".utf8).write(to: registry)
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(try errnoOf(plugin, "attack/open-read", path: registry.path), Double(EACCES))
        XCTAssertEqual(try errnoOf(plugin, "attack/open-read", path: "/proc/\(getpid())/environ"), Double(EACCES))
    }

    func testOpeningForWriteWithoutDeclaredWritePathsIsKilled() throws {
        try assertSandboxKills("attack/open-write", input: #"{"path":"/tmp/brane-escape"}"#,
                               call: #"openat(AT_FDCWD, "/tmp/brane-escape", O_WRONLY|O_CREAT|O_TRUNC)"#)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/brane-escape"))
    }

    func testWritingOutsideDeclaredPathsIsDeniedAndInsideWorks() throws {
        let allowed = Harness.temporaryDirectory(self), outside = Harness.temporaryDirectory(self)
        let plugin = try Harness.hostile(self) { $0 + "filesystem:\n  write: [\(allowed.path)]\n" }
        let inside = try plugin.callJSON("attack/open-write", input: #"{"path":"\#(allowed.path)/ok.txt"}"#)
        XCTAssertNotNil(inside["fd"], "a declared write path must be writable: \(inside)")
        XCTAssertEqual(try errnoOf(plugin, "attack/open-write", path: outside.path + "/escape.txt"), Double(EACCES))
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside.path + "/escape.txt"))
    }

    // MARK: Programs and processes

    func testExecveOfAShellIsKilled() throws { try assertSandboxKills("attack/execve", call: #"execve("/bin/sh", …)"#) }
    func testForkIsKilled() throws { try assertSandboxKills("attack/fork", call: "clone") }
    func testVforkIsKilled() throws { try assertSandboxKills("attack/vfork", call: "vfork") }
    func testCloneOfAProcessIsKilled() throws { try assertSandboxKills("attack/clone-process", call: "clone(SIGCHLD)") }
    func testForkBombDiesOnItsFirstFork() throws { try assertSandboxKills("attack/fork-bomb", call: "clone") }

    func testThreadBombIsBoundedAndThePluginKeepsServing() throws {
        let plugin = try Harness.hostile(self)
        let threads = try plugin.callJSON("attack/thread-bomb")["threads"]?.numberValue ?? -1
        // 128 MiB of address space holds at most ~15 default 8 MiB thread stacks.
        XCTAssertLessThan(threads, 64, "threads created: \(threads)")
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
    }

    // MARK: The kernel and other processes

    func testPtraceIsKilled() throws { try assertSandboxKills("attack/raw-syscall", input: #"{"nr":101}"#, call: "ptrace(PTRACE_TRACEME, 0)") }
    func testSignallingAnotherProcessIsKilled() throws { try assertSandboxKills("attack/kill-init", call: "kill(1, signal 0)") }
    func testIoUringSetupIsKilled() throws { try assertSandboxKills("attack/raw-syscall", input: #"{"nr":425}"#, call: "io_uring_setup") }
    func testBpfIsKilled() throws { try assertSandboxKills("attack/raw-syscall", input: #"{"nr":321}"#, call: "bpf") }
    func testMountIsKilled() throws { try assertSandboxKills("attack/raw-syscall", input: #"{"nr":165}"#, call: "mount") }
    func testUnshareIsKilled() throws { try assertSandboxKills("attack/raw-syscall", input: #"{"nr":272}"#, call: "unshare(0x0)") }
    func testSetnsIsKilled() throws { try assertSandboxKills("attack/raw-syscall", input: #"{"nr":308}"#, call: "setns") }

    func testOtherKernelAttackSurfaceIsKilled() throws {
        // perf_event_open, userfaultfd, process_vm_readv, keyctl, init_module, chroot, memfd_create, pidfd_open
        let names = [298: "perf_event_open", 323: "userfaultfd", 310: "process_vm_readv", 250: "keyctl", 175: "init_module",
                     161: "chroot", 319: "memfd_create", 434: "pidfd_open"]
        for (number, name) in names.sorted(by: { $0.key < $1.key }) {
            try assertSandboxKills("attack/raw-syscall", input: #"{"nr":\#(number)}"#, call: name)
        }
    }

    func testPrctlCapabilityProbeIsKilled() throws { try assertSandboxKills("attack/prctl-capbset-read", call: "prctl(PR_CAPBSET_READ)") }
    func testPrctlSetDumpableIsKilled() throws { try assertSandboxKills("attack/prctl-set-dumpable", call: "prctl(PR_SET_DUMPABLE)") }
    func testSetuidEscalationIsKilled() throws { try assertSandboxKills("attack/setuid-root", call: "setuid(0)") }
    func testInstallingItsOwnSeccompFilterIsKilled() throws { try assertSandboxKills("attack/own-seccomp-filter", call: "prctl(PR_SET_SECCOMP)") }
    func testTIOCSTIKeystrokeInjectionIsKilled() throws { try assertSandboxKills("attack/tiocsti", call: "ioctl(fd 0, 0x5412)") }
    func testWritableExecutableMappingIsKilled() throws { try assertSandboxKills("attack/mmap-wx", call: "mmap(len 4096, PROT_READ|PROT_WRITE|PROT_EXEC)") }
    func testMakingWritableMemoryExecutableIsKilled() throws { try assertSandboxKills("attack/mprotect-wx", call: "mprotect(len 4096, PROT_READ|PROT_WRITE|PROT_EXEC)") }
    func testIgnoringSIGSYSDoesNotSaveIt() throws { try assertSandboxKills("attack/ignore-sigsys-then-socket", call: "socket") }

    func testCapabilitySetsAreEmptyAndTheSandboxIsOn() throws {
        let plugin = try Harness.hostile(self)
        _ = try plugin.callJSON("ping")
        let pid = try XCTUnwrap(plugin.pid)
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> String? {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map { $0.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces) }
        }
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            XCTAssertEqual(field(set), "0000000000000000", "\(set) must be empty")
        }
        XCTAssertEqual(field("NoNewPrivs"), "1")
        XCTAssertEqual(field("Seccomp"), "2", "seccomp filter mode")
        XCTAssertEqual(getsid(pid), pid, "the plugin leads its own session (no controlling terminal)")
        let hostNet = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        let pluginNet = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")
        XCTAssertNotEqual(hostNet, pluginNet, "a tier-0 plugin lives in its own network namespace")
    }

    // MARK: What leaks from the parent

    func testNoDescriptorLeaksFromTheHost() throws {
        let canary = open("/etc/hostname", O_RDONLY)  // deliberately not close-on-exec
        defer { close(canary) }
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(try plugin.callJSON("inspect/open-fds")["fds"], .array([0, 1, 2, 3].map { .number($0) }))
    }

    func testNoEnvironmentLeaksFromTheHost() throws {
        setenv("BRANE_CANARY", "secret-token", 1)
        defer { unsetenv("BRANE_CANARY") }
        let plugin = try Harness.hostile(self)
        // Exactly what the host sets: this fixture links the Swift runtime (SwiftPM built it), so
        // its runner preloads the toolchain's libswiftCore (SandboxPlan.runnerEnvironment).
        let environment = try XCTUnwrap(plugin.callJSON("inspect/environment")["environment"]?.arrayValue?.compactMap(\.stringValue))
        XCTAssertEqual(environment.count, 2, "\(environment)")
        XCTAssertEqual(environment.first, "SWIFT_BACKTRACE=enable=no")
        let preload = try XCTUnwrap(environment.last?.split(separator: "=", maxSplits: 1).last).split(separator: " ")
        XCTAssertTrue(environment.last?.hasPrefix("LD_PRELOAD=/") == true && preload.contains { $0.hasSuffix("/libswiftCore.so") }, "\(environment)")
        XCTAssertFalse(environment.contains { $0.contains("secret-token") })
    }

    /// The stack an instance starts on is laid out as the kernel lays it out for an exec, forked
    /// or spawned: past the environment's NULL lies the auxiliary vector, which runtimes that
    /// walk the stack (Go's) read. The red team broke it once in a forked instance by unsetting a
    /// variable in the zygote, which shifts the environment array and leaves a second NULL.
    func testTheAuxiliaryVectorFollowsTheEnvironment() throws {
        let plugin = try Harness.hostile(self)
        let auxv = try plugin.callJSON("inspect/auxv")
        XCTAssertNotEqual(auxv["firstType"]?.numberValue, 0, "\(auxv)")
        XCTAssertEqual(auxv["atRandomFound"], .bool(true), "\(auxv)")
    }

    // MARK: Limits

    func testMemoryBombStopsAtTheAddressSpaceLimit() throws {
        let plugin = try Harness.hostile(self)
        let allocated = try plugin.callJSON("attack/memory-bomb")["allocatedMiB"]?.numberValue ?? -1
        XCTAssertGreaterThanOrEqual(allocated, 0)
        XCTAssertLessThan(allocated, 128, "the manifest allows 128 MiB of address space")
        plugin.assertServesAgain()
    }

    func testCPUSpinIsStoppedByTheCPULimit() throws {
        // A generous wall clock, so a busy machine cannot turn the CPU limit into a call timeout.
        let plugin = try Harness.hostile(self) { $0.replacingOccurrences(of: "callTimeout: 3s", with: "callTimeout: 30s") }
        let death = plugin.expectDeath("attack/cpu-spin")
        XCTAssertEqual(death?.cause, .cpuLimit, "\(String(describing: death))")
        plugin.assertServesAgain()
    }

    func testSleepingPastTheCallTimeoutIsKilledByTheHost() throws {
        let plugin = try Harness.hostile(self) { $0.replacingOccurrences(of: "callTimeout: 3s", with: "callTimeout: 300ms") }
        let started = ContinuousClock.now
        let death = plugin.expectDeath("attack/sleep-forever")
        XCTAssertEqual(death?.cause, .callTimeout(milliseconds: 300))
        XCTAssertEqual(death?.termination, .signaled(signal: SIGKILL, coreDumped: false))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
        plugin.assertServesAgain()
    }

    func testEndlessOutputIsCutAtMaxOutput() throws {
        let plugin = try Harness.hostile(self) { $0.replacingOccurrences(of: "memory: 128MiB", with: "memory: 512MiB") }
        let death = plugin.expectDeath("attack/endless-output")
        guard case .protocolViolation(let why)? = death?.cause else { return XCTFail("\(String(describing: death))") }
        XCTAssertTrue(why.contains("exceeds the limit of 65536"), why)
        plugin.assertServesAgain()
    }

    // MARK: The wire

    func testGiantFrameIsRefusedByItsHeader() throws {
        let plugin = try Harness.hostile(self)
        guard case .protocolViolation(let why)? = plugin.expectDeath("attack/giant-frame")?.cause else { return XCTFail() }
        XCTAssertTrue(why.contains("4294967280 bytes"), why)
        plugin.assertServesAgain()
    }

    func testGarbageOnTheSocketIsAProtocolViolation() throws {
        let plugin = try Harness.hostile(self)
        guard case .protocolViolation? = plugin.expectDeath("attack/garbage-frame")?.cause else { return XCTFail() }
        plugin.assertServesAgain()
    }

    /// At tier 1, where shutdown is allowed (on brokered streams), a plugin can still only end itself with it.
    func testShuttingTheSocketGetsThePluginKilled() throws {
        let plugin = try Harness.hostile(self) {
            $0.replacingOccurrences(of: "  tier: 0", with: "  tier: 1") + "network:\n  mode: loopback\n  connect: [{host: 127.0.0.1, port: 9}]\n"
        }
        let death = plugin.expectDeath("attack/shutdown-socket")
        XCTAssertEqual(death?.cause, .closedSocket)
        XCTAssertEqual(death?.termination, .signaled(signal: SIGKILL, coreDumped: false))
        plugin.assertServesAgain()
    }

    /// Fd 3 is pinned: no other file may take its number, so recvmsg on fd 3 reads only the host's frames.
    func testTheRunnersSocketCannotBeClosedOrReplaced() throws {
        assertStopped(try Harness.hostile(self).expectDeath("attack/close-socket"), call: "close(fd 3)")
        assertStopped(try Harness.hostile(self).expectDeath("attack/dup-onto-socket"), call: "dup2(fd 0, fd 3)")
        // With bits above 32 set, which the kernel drops: compared as the kernel reads it.
        assertStopped(try Harness.hostile(self).expectDeath("attack/dup-onto-socket-high"), call: "dup2(fd 0, fd 3)")
        assertStopped(try Harness.hostile(self).expectDeath("attack/close-socket-high"), call: "close(fd 3)")
    }

    // MARK: Loading

    func testHostileConstructorIsKilledDuringDlopen() throws {
        let plugin = try Harness.hostile(self) { $0.replacingOccurrences(of: "libHostileFixture.so", with: "libHostileConstructorFixture.so") }
        let death = plugin.expectDeath("ping")
        // The constructor's socket() runs inside dlopen, after seccomp: stopped and named.
        assertStopped(death, call: "socket")
    }

    private func assertRefusedAtLoad(library: String, step: SetupStep, message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let plugin = try Harness.hostile(self) { $0.replacingOccurrences(of: "libHostileFixture.so", with: library) }
        plugin.assertRefusedAtStart(step: step, mentioning: message, file: file, line: line)
    }

    func testMissingEntrySymbolIsRefused() throws {
        try assertRefusedAtLoad(library: "libMissingEntryFixture.so", step: .entrySymbol, message: "does not export brane_plugin_entry")
    }

    func testBadMagicIsRefused() throws {
        try assertRefusedAtLoad(library: "libBadMagicFixture.so", step: .abiCheck, message: "bad magic")
    }

    func testIncompatibleMajorABIIsRefusedBeforeInit() throws {
        // Its init aborts: a SIGABRT here would mean the host called into it.
        try assertRefusedAtLoad(library: "libFutureABIFixture.so", step: .abiCheck, message: "newer major version")
    }

    func testALibraryWhoseIdDiffersFromItsManifestIsRefused() throws {
        let plugin = try Harness.hostile(self) { $0.replacingOccurrences(of: "id: test.brane.hostile", with: "id: test.brane.impostor") }
        guard case .setupFailed(let failure)? = plugin.expectDeath("ping")?.cause else { return XCTFail() }
        XCTAssertEqual(failure.step, .identity)
    }

    // MARK: Crashes are not sandbox kills

    func testSegfaultIsReportedAsACrash() throws {
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(plugin.expectDeath("crash/segfault")?.cause, .crashed(signal: SIGSEGV))
        plugin.assertServesAgain()
    }

    func testAbortIsReportedAsACrashNotASandboxKill() throws {
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(plugin.expectDeath("crash/abort")?.cause, .crashed(signal: SIGABRT))
        plugin.assertServesAgain()
    }
}

/// The limits and the tier-1 network rules, each hit by a plugin that tries to pass them.
final class HostileLimitTests: XCTestCase {
    func testWritingPastMaxFileSizeIsKilledBySIGXFSZ() throws {
        let allowed = Harness.temporaryDirectory(self)
        let plugin = try Harness.hostile(self) {
            $0.replacingOccurrences(of: "  threads: 64", with: "  threads: 64\n  maxFileSize: 64KiB")
                + "filesystem:\n  write: [\(allowed.path)]\n"
        }
        let small = try plugin.callJSON("attack/write-bytes", input: #"{"path":"\#(allowed.path)/small","bytes":32768}"#)
        XCTAssertEqual(small["written"], .number(32768))
        let death = plugin.expectDeath("attack/write-bytes", input: #"{"path":"\#(allowed.path)/big","bytes":1048576}"#)
        XCTAssertEqual(death?.cause, .fileSizeLimit)
        let size = try FileManager.default.attributesOfItem(atPath: allowed.path + "/big")[.size] as? Int
        XCTAssertEqual(size, 64 << 10, "nothing past the limit reached the disk")
        plugin.assertServesAgain()
    }

    func testOpenFilesStopAtTheDescriptorLimit() throws {
        let plugin = try Harness.hostile(self) { $0.replacingOccurrences(of: "  threads: 64", with: "  threads: 64\n  openFiles: 16") }
        let result = try plugin.callJSON("attack/open-many")
        XCTAssertEqual(result["opened"], .number(12), "fds 0-3 are taken; 16 is the limit")
        XCTAssertEqual(result["errno"], .number(Double(EMFILE)))
    }
}

/// Consults (ABI 1.1), each attacked; connections (ABI 1.2) are in EgressTests.
final class HostileConsultTests: XCTestCase {
    func testAConsultWhereTheHostRoutesNoneIsRefused() throws {
        let answer = try Harness.hostile(self).callJSON("attack/consult", input: #"{"id":"com.brane.neuroscientist"}"#)
        XCTAssertEqual(answer["status"], .number(1), "BRANE_ERROR")
        XCTAssertEqual(answer["answer"]?["message"], .string("this host does not route consults"))
    }

    /// A specialist that consults itself would wait on its own lock forever; the router refuses the cycle.
    func testAConsultCycleIsRefusedInsteadOfDeadlocking() throws {
        let directory = try Harness.hostileCopy(self, library: "libHostileSpecialist.so") {
            $0.replacingOccurrences(of: "kind: synapse", with: "kind: specialist") + "specialist:\n  domains: [test]\n  consults: [test.brane.hostile]\n"
        }
        let router = SpecialistRouter(locator: PluginLocator(explicit: ["test.brane.hostile": directory]), runner: try Harness.runner())
        defer { router.stopAll() }
        guard case .result(let bytes) = try router.call("test.brane.hostile", method: "attack/consult", input: Array(#"{"id":"test.brane.hostile"}"#.utf8)) else {
            return XCTFail("the caller must get the refusal as an answer")
        }
        let answer = try JSONValue(parsing: bytes)
        XCTAssertEqual(answer["status"], .number(1), "BRANE_ERROR")
        XCTAssertEqual(answer["answer"]?["message"]?.stringValue,
                       "test.brane.hostile may not consult test.brane.hostile: test.brane.hostile is already answering in this consult chain (test.brane.hostile)")
    }
}

/// Issue 14, point 7: an input past the call frame limit is the caller's error, answered by the host:
/// the plugin is not killed, and its circuit breaker does not count it.
final class OversizedInputTests: XCTestCase {
    func testAnInputPastTheFrameLimitIsRefusedWithoutADeath() throws {
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
        let pid = plugin.pid
        for _ in 0..<5 {
            guard case .pluginError(let bytes) = try plugin.call(method: "ping", input: [UInt8](repeating: 0x20, count: 17 << 20)) else {
                return XCTFail("an oversized input must be refused")
            }
            XCTAssertTrue(PluginInstance.CallOutcome.errorMessage(bytes).contains("a call may carry at most 16 MiB"))
        }
        XCTAssertEqual(plugin.pid, pid, "the same instance, not a restarted one")
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]), "the circuit stays closed")
        XCTAssertEqual(plugin.deaths.count, 0)
    }

    /// On the command line the same rule is an input error: exit 2, before any plugin starts.
    func testTheCLIRefusesAnInputPastTheFrameLimitWithExit2() throws {
        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("input.json")
        try Data(repeating: 0x20, count: 17 << 20).write(to: input)
        let home = BraneHome(root: directory.appendingPathComponent("home").path)
        let run = try CLI.run(["plugin", "run", Harness.hostileDirectory, "ping", "--input", "@\(input.path)"], home: home)
        XCTAssertEqual(run.status, 2, run.stderr)
        XCTAssertTrue(run.stderr.contains("brane: the input is 17825792 bytes; a call may carry at most 16 MiB"), run.stderr)
        XCTAssertFalse(run.stderr.contains("died"), run.stderr)
    }
}
