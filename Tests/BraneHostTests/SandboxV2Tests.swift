import BraneHost
import BraneTestSupport
import CBraneSystem
import Foundation
import XCTest

/// Fail closed: the real `brane` under `fault-wrapper`, which makes the kernel itself answer
/// landlock_create_ruleset with ENOSYS or unshare with EPERM — for the whole CLI (the host's
/// probe sees it) or for the runner alone (the runner's own check must refuse).
final class FailClosedTests: XCTestCase {
    private var bin: URL { BuildProducts.directory }

    private func brane(_ arguments: [String], fault: String? = nil, runnerFault: String? = nil,
                       environment: [String: String] = [:]) throws -> (CLI.Run, BraneHome) {
        let home = BraneHome(root: Harness.temporaryDirectory(self).path)
        var environment = environment
        if let runnerFault {
            let runner = Harness.temporaryDirectory(self).appendingPathComponent("runner-\(runnerFault)")
            try FileManager.default.createSymbolicLink(atPath: runner.path, withDestinationPath: bin.appendingPathComponent("fault-wrapper").path)
            environment["BRANE_SANDBOX_RUNNER"] = runner.path
        }
        let brane = bin.appendingPathComponent("brane").path
        let run = try CLI.capture(fault == nil ? brane : bin.appendingPathComponent("fault-wrapper").path,
                                  fault.map { [$0, brane] + arguments } ?? arguments,
                                  environment: ["BRANE_HOME": home.root].merging(environment) { $1 })
        return (run, home)
    }

    private func assertRefused(fault: String? = nil, runnerFault: String? = nil, mentioning: [String],
                               file: StaticString = #filePath, line: UInt = #line) throws {
        let (run, _) = try brane(["plugin", "run", Harness.hostileDirectory, "ping"], fault: fault, runnerFault: runnerFault)
        XCTAssertEqual(run.status, 4, "\(run.stderr)", file: file, line: line)
        XCTAssertEqual(run.stdout, "", "the plugin never answered", file: file, line: line)
        for text in mentioning { XCTAssertTrue(run.stderr.contains(text), "missing \"\(text)\" in: \(run.stderr)", file: file, line: line) }
    }

    func testWithoutLandlockTheHostRefusesToStartThePlugin() throws {
        try assertRefused(fault: "landlock-enosys", mentioning: ["refusing to start test.brane.hostile", "Landlock (unavailable on this kernel)",
                                                                "~/.ssh and $BRANE_HOME", "--allow-weaker-sandbox"])
    }

    func testWithoutNamespacesTheHostRefusesToStartThePlugin() throws {
        try assertRefused(fault: "unshare-eperm", mentioning: ["refusing to start", "namespaces", "share the host's network"])
    }

    func testARunnerThatFindsNoLandlockRefusesEvenWhenTheHostSawIt() throws {
        try assertRefused(runnerFault: "landlock-enosys", mentioning: ["applying Landlock", "the kernel offers Landlock ABI 0"])
    }

    func testARunnerThatCannotUnshareRefusesEvenWhenTheHostCould() throws {
        try assertRefused(runnerFault: "unshare-eperm", mentioning: ["cannot create an empty network namespace", "share the host's network"])
    }

    func testInspectAndDoctorSayWhatIsMissing() throws {
        let (inspect, _) = try brane(["plugin", "inspect", Harness.hostileDirectory], fault: "landlock-enosys")
        XCTAssertTrue(inspect.stdout.contains("landlock: NOT AVAILABLE"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("WILL NOT START"), inspect.stdout)
        let (doctor, _) = try brane(["doctor"], fault: "unshare-eperm")
        XCTAssertEqual(doctor.status, 4)
        XCTAssertTrue(doctor.stdout.contains(" NO  namespaces: unavailable"), doctor.stdout)
    }

    /// The opt-out, under each of its spellings: the plugin runs, a warning says so on every
    /// start, the audit log records it, and inspect shows the sandbox as it really is.
    func testTheDevelopmentOptOutRunsItLoudlyAndIsAudited() throws {
        for (arguments, environment) in [(["--allow-weaker-sandbox"], [String: String]()), ([], ["BRANE_ALLOW_WEAKER_SANDBOX": "1"])] {
            let (run, home) = try brane(arguments + ["plugin", "run", Harness.hostileDirectory, "ping"], fault: "landlock-enosys",
                                        environment: environment)
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertTrue(run.stdout.contains("\"pong\""), run.stdout)
            XCTAssertTrue(run.stderr.contains("WARNING: test.brane.hostile runs with a WEAKER sandbox"), run.stderr)
            let audit = try CLI.run(["audit", "verify"], home: home)
            XCTAssertEqual(audit.status, 0, audit.stderr + audit.stdout)
            let entries = try Marketplace(home: home).auditEntries()
            XCTAssertEqual(entries.map(\.action), ["sandbox-weaker"])
            XCTAssertTrue(entries[0].detail.contains("Landlock"), entries[0].detail)
            let (inspect, _) = try brane(arguments + ["plugin", "inspect", Harness.hostileDirectory], fault: "landlock-enosys", environment: environment)
            XCTAssertTrue(inspect.stdout.contains("WEAKER THAN TIER 0 REQUIRES"), inspect.stdout)
        }
        // The runner alone lacks Landlock: under the opt-out that start warns and is audited too.
        let (runnerWeak, runnerHome) = try brane(["--allow-weaker-sandbox", "plugin", "run", Harness.hostileDirectory, "ping"],
                                                 runnerFault: "landlock-enosys")
        XCTAssertEqual(runnerWeak.status, 0, runnerWeak.stderr)
        XCTAssertTrue(runnerWeak.stderr.contains("WEAKER sandbox") && runnerWeak.stderr.contains("started without Landlock"), runnerWeak.stderr)
        XCTAssertEqual(try Marketplace(home: runnerHome).auditEntries().map(\.action), ["sandbox-weaker"])
        // The host setting, the third spelling.
        let home = BraneHome(root: Harness.temporaryDirectory(self).path)
        try "allow-weaker-sandbox: true\n".write(toFile: home.hostSettings, atomically: true, encoding: .utf8)
        let run = try CLI.capture(bin.appendingPathComponent("fault-wrapper").path,
                                  ["landlock-enosys", bin.appendingPathComponent("brane").path, "plugin", "run", Harness.hostileDirectory, "ping"],
                                  environment: ["BRANE_HOME": home.root])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("allow-weaker-sandbox: true in \(home.hostSettings)"), run.stderr)
    }
}

/// `$BRANE_HOME/host.yaml` is outside input too: a FIFO there must not hang the host, and a typo
/// is named with file:line:column and a did-you-mean instead of silently ignored.
final class HostSettingsTests: XCTestCase {
    func testAFIFOInTheSettingsFileIsIgnoredAndMistakesAreNamed() throws {
        let home = BraneHome(root: Harness.temporaryDirectory(self).path)
        XCTAssertEqual(mkfifo(home.hostSettings, 0o600), 0)
        let started = ContinuousClock.now
        let fifo = try CLI.run(["doctor"], home: home)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10), "a FIFO as host.yaml does not hang the host")
        XCTAssertFalse(fifo.stdout.contains("development opt-out"), fifo.stdout)
        XCTAssertTrue(fifo.stdout.contains("host.yaml:1:1: error: cannot read the file: it is not a regular file of at most 64 KiB"), fifo.stdout)
        try FileManager.default.removeItem(atPath: home.hostSettings)

        // Not read, and said so: a link (even to good settings) and a file over the limit.
        let elsewhere = home.root + "/elsewhere.yaml"
        try "zygote: false\n".write(toFile: elsewhere, atomically: true, encoding: .utf8)
        XCTAssertEqual(symlink(elsewhere, home.hostSettings), 0)
        let linked = try CLI.run(["doctor"], home: home)
        XCTAssertTrue(linked.stdout.contains("a symbolic link is not followed"), linked.stdout)
        XCTAssertTrue(linked.stdout.contains("forked by a zygote"), "the linked settings are not applied: \(linked.stdout)")
        try FileManager.default.removeItem(atPath: home.hostSettings)
        try ("zygote: false\n" + String(repeating: "# padding\n", count: 7000)).write(toFile: home.hostSettings, atomically: true, encoding: .utf8)
        let large = try CLI.run(["doctor", "--json"], home: home)
        XCTAssertTrue(large.stdout.contains("not a regular file of at most 64 KiB"), large.stdout)
        try FileManager.default.removeItem(atPath: home.hostSettings)

        try "allow-weaker-sandox: true\nsandbox-id-base: 12\n".write(toFile: home.hostSettings, atomically: true, encoding: .utf8)
        let typo = try CLI.run(["doctor"], home: home)
        XCTAssertTrue(typo.stdout.contains("host.yaml:1:1: warning: allow-weaker-sandox: unknown key 'allow-weaker-sandox' is ignored; did you mean 'allow-weaker-sandbox'?"), typo.stdout)
        XCTAssertTrue(typo.stdout.contains("host.yaml:2:18: error: sandbox-id-base: 12 is out of range"), typo.stdout)
        XCTAssertFalse(typo.stdout.contains("development opt-out"), "a misspelt opt-out is not an opt-out")

        try "allow-weaker-sandbox: yes please\n".write(toFile: home.hostSettings, atomically: true, encoding: .utf8)
        let notABool = try CLI.run(["doctor"], home: home)
        XCTAssertTrue(notABool.stdout.contains("allow-weaker-sandbox: expected true or false"), notABool.stdout)
        XCTAssertFalse(notABool.stdout.contains("development opt-out"), notABool.stdout)
    }
}

/// One identity per instance, its own hostname, and what that closes.
final class InstanceIdentityTests: XCTestCase {
    private func ids(_ plugin: SupervisedPlugin) throws -> (uid: Double, gid: Double) {
        let ids = try plugin.callJSON("inspect/ids")
        return (ids["uid"]?.numberValue ?? -1, ids["gid"]?.numberValue ?? -1)
    }

    func testEachInstanceRunsUnderItsOwnUidAndThePluginsGid() throws {
        try XCTSkipIf(geteuid() != 0, "a per-instance uid needs a root host")
        let first = try Harness.hostile(self), second = try Harness.hostile(self)
        let (a, b) = (try ids(first), try ids(second))
        XCTAssertNotEqual(a.uid, b.uid, "two instances, two uids")
        XCTAssertEqual(a.gid, b.gid, "one plugin, one gid")
        XCTAssertGreaterThanOrEqual(a.uid, Double(SandboxSettings.defaultIdentityBase))
        XCTAssertEqual(a.uid, Double(SandboxSettings.defaultIdentityBase) + Double(try XCTUnwrap(first.pid)))
    }

    func testThreadsAreBoundedByTheManifest() throws {
        try XCTSkipIf(geteuid() != 0, "RLIMIT_NPROC binds a per-instance uid only on a root host (docs/sandbox.md)")
        let plugin = try Harness.hostile(self) { $0.replacingOccurrences(of: "threads: 64", with: "threads: 16")
            .replacingOccurrences(of: "memory: 128MiB", with: "memory: 1GiB") }
        let threads = try plugin.callJSON("attack/thread-bomb")["threads"]?.numberValue ?? -1
        XCTAssertEqual(threads, 15, "16 tasks: the main thread and 15 more")
        plugin.assertServesAgain()
    }

    func testARootOnlyFileInsideAnAllowedDirectoryStaysClosed() throws {
        try XCTSkipIf(geteuid() != 0, "needs a root host")
        let directory = Harness.temporaryDirectory(self)
        let secret = directory.appendingPathComponent("secret")
        XCTAssertTrue(FileManager.default.createFile(atPath: secret.path, contents: Data("s".utf8), attributes: [.posixPermissions: 0o600]))
        let plugin = try Harness.hostile(self) { $0 + "filesystem:\n  read: [\(directory.path)]\n" }
        XCTAssertEqual(try plugin.callJSON("attack/open-read", input: #"{"path":"\#(secret.path)"}"#)["errno"], .number(Double(EACCES)),
                       "Landlock allows the directory; the uid is not the owner")
    }

    func testTheHostnameIsTheSandboxesNotTheMachines() throws {
        XCTAssertEqual(try Harness.hostile(self).callJSON("inspect/uname")["nodename"], .string("brane-sandbox"))
    }

    func testWritePathsAreSharedByThePluginsInstances() throws {
        let allowed = Harness.temporaryDirectory(self)
        let manifest = { (m: String) in m + "filesystem:\n  write: [\(allowed.path)]\n" }
        let first = try Harness.hostile(self, edit: manifest)
        XCTAssertNotNil(try first.callJSON("attack/write-bytes", input: #"{"path":"\#(allowed.path)/shared","bytes":10}"#)["written"])
        first.stop()
        let second = try Harness.hostile(self, edit: manifest)
        XCTAssertNotNil(try second.callJSON("attack/open-write", input: #"{"path":"\#(allowed.path)/next"}"#)["fd"],
                        "the next instance (another uid, the plugin's gid) writes into the same directory")
        if geteuid() == 0 {
            XCTAssertEqual(try second.callJSON("attack/open-write", input: #"{"path":"\#(allowed.path)/shared"}"#)["errno"], .number(Double(EACCES)),
                           "a file the first instance created 0600 stays its own (docs/sandbox.md)")
        }
    }
}

/// Declared paths cannot be widened by a symlink, at validation or at spawn.
final class DeclaredPathTests: XCTestCase {
    func testARelativeEntryThatIsASymlinkIsRefusedAtValidation() throws {
        let directory = Harness.pluginDirectory(self, manifest: Harness.hostileManifest + "filesystem:\n  read: [data]\n  write: [state/db]\n")
        let home = Harness.temporaryDirectory(self)
        try FileManager.default.createSymbolicLink(atPath: directory + "/data", withDestinationPath: home.path)
        try FileManager.default.createDirectory(atPath: directory + "/real", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory + "/state", withDestinationPath: directory + "/real")
        XCTAssertThrowsError(try PluginBundle.open(directory)) { error in
            let messages = (error as? ValidationFailure)?.errors.map { "\($0.path): \($0.message)" } ?? []
            XCTAssertEqual(messages.count, 2, "\(error)")
            XCTAssertTrue(messages[0].hasPrefix("filesystem.read[0]: \(directory)/data is a symbolic link"), messages[0])
            XCTAssertTrue(messages[1].hasPrefix("filesystem.write[0]: \(directory)/state is a symbolic link"), "a link part-way counts too: \(messages[1])")
        }
    }

    /// The plugin tree changes after validation (a race, or a hostile install step): the runner's
    /// openat2 refuses the link, and the plugin does not start.
    func testASymlinkSwappedInAfterValidationIsRefusedByTheRunner() throws {
        let directory = Harness.pluginDirectory(self, manifest: Harness.hostileManifest + "filesystem:\n  read: [data]\n")
        try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: try PluginBundle.open(directory)), runner: try Harness.runner())
        try FileManager.default.removeItem(atPath: directory + "/data")
        try FileManager.default.createSymbolicLink(atPath: directory + "/data", withDestinationPath: Harness.temporaryDirectory(self).path)
        // The plugin's tree is at fault, not the host: a death (exit 3), never "try --allow-weaker-sandbox".
        plugin.assertRefusedAtStart(step: .declaredPath, mentioning: "filesystem entry data is or passes through a symbolic link")
    }

    func testAWritableAbsoluteEntryThroughASymlinkIsRefused() throws {
        let target = Harness.temporaryDirectory(self), links = Harness.temporaryDirectory(self)
        try FileManager.default.createSymbolicLink(atPath: links.path + "/out", withDestinationPath: target.path)
        XCTAssertThrowsError(try PluginBundle.open(Harness.pluginDirectory(self, manifest: Harness.hostileManifest
            + "filesystem:\n  write: [\(links.path)/out]\n  \n"))) { error in
            XCTAssertTrue("\(error)".contains("is a symbolic link"), "\(error)")
        }
    }

    func testTheWholePluginDirectoryMayNotBeWritable() throws {
        for entry in [".", "./", "./."] {
            XCTAssertThrowsError(try PluginBundle.open(Harness.pluginDirectory(self, manifest: Harness.hostileManifest
                + "filesystem:\n  write: [\"\(entry)\"]\n")), entry) { XCTAssertTrue("\($0)".contains("whole directory may not be writable"), "\($0)") }
        }
    }

    func testEmptyAndDotDotEntriesAreRefused() throws {
        for entry in ["\"\"", "../x", "a/../../b"] {
            XCTAssertThrowsError(try PluginBundle.open(Harness.pluginDirectory(self, manifest: Harness.hostileManifest
                + "filesystem:\n  read: [\(entry)]\n")), entry) { XCTAssertTrue("\($0)".contains("may not be empty or contain '..'"), "\($0)") }
        }
    }
}

/// How an instance died is the host's finding, not the plugin's story.
final class DeathReportTests: XCTestCase {
    func testRaisingSIGSYSAtItselfIsNotASandboxViolation() throws {
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(plugin.expectDeath("attack/raise-sigsys")?.cause, .signaledItself(signal: SIGSYS))
        plugin.assertServesAgain()
    }

    func testRaisingSIGXCPUAtItselfIsNotTheCPULimit() throws {
        let plugin = try Harness.hostile(self)
        XCTAssertEqual(plugin.expectDeath("attack/raise-sigxcpu")?.cause, .signaledItself(signal: SIGXCPU))
    }

    func testAForbiddenCallInEveryPhaseIsStoppedAndNamed() throws {
        // init
        var plugin = try Harness.hostile(self) { $0 + "config: {initAttack: socket-in-init}\n" }
        assertStopped(plugin.expectDeath("ping"), call: "socket(AF_INET, SOCK_STREAM, 0)")
        // release: right after the answer is written — the host sees it with that call or the next
        plugin = try Harness.hostile(self)
        switch plugin.callError("attack/in-release") ?? plugin.callError("ping") {
        case .died(let death)?: assertStopped(death, call: "socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP)")
        case let other: XCTFail("the call in release must be stopped, got \(String(describing: other))")
        }
        // a second thread
        plugin = try Harness.hostile(self)
        assertStopped(plugin.expectDeath("attack/socket-from-thread"), call: "socket(AF_INET, SOCK_DGRAM, 0)")
        plugin.assertServesAgain()
    }

    func testAForbiddenCallDuringShutdownIsReported() throws {
        let plugin = try Harness.hostile(self)
        let deaths = DeathLog()
        SandboxEvents.install { if case .death(let death, _) = $0 { deaths.append(death) } }
        defer { SandboxEvents.install { _ in } }
        XCTAssertEqual(try plugin.callJSON("attack/in-shutdown")["armed"], .bool(true))
        let pid = try XCTUnwrap(plugin.pid)
        plugin.stop()
        XCTAssertFalse(ProcessTable.isAlive(pid), "stopped")
        assertStopped(deaths.all.first, call: "socket(AF_PACKET, SOCK_RAW, htons(0x0))")
    }

    func testAForeignABISyscallInACallIsStoppedAndNamed() throws {
        #if arch(x86_64)
        try assertSandboxKillsAny(Harness.hostile(self), "attack/int80", call: "i386 syscall 5")
        #endif
    }

    /// After the listener hand-over every sandbox step is done: a FAILED frame naming one is the
    /// plugin's, and must not pass for "this host cannot sandbox it" (exit 4, opt-out advice).
    func testAForgedSandboxStepFailureIsThePluginsNotTheHosts() throws {
        let plugin = try Harness.hostile(self) { $0 + "config: {initAttack: failed-landlock}\n" }
        guard case .setupFailed(let failure)? = plugin.expectDeath("ping")?.cause else { return XCTFail("a death, not a host failure") }
        XCTAssertEqual(failure.step, .initialize)
        XCTAssertTrue(failure.message.contains("a step already done"), failure.message)
    }

    /// A filter of its own (the profile lets a plugin add one, for the serve phase) could answer
    /// its forbidden calls with EPERM before the host's listener sees them: the host counts filters.
    func testAPluginThatInstallsItsOwnFilterDoesNotStart() throws {
        let plugin = try Harness.hostile(self) { $0 + "config: {initAttack: own-filter}\n" }
        plugin.assertRefusedAtStart(step: .initialize, mentioning: "skipped the serve phase or installed its own", permanent: false)
    }

    func testAForgedFailedFrameFromAPluginThatKeepsRunningCannotHangTheHost() throws {
        let plugin = try Harness.hostile(self) { $0 + "config: {initAttack: failed-then-hang}\n" }
        let started = ContinuousClock.now
        guard case .setupFailed(let failure)? = plugin.expectDeath("ping")?.cause else { return XCTFail() }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
        XCTAssertEqual(failure.message, "forged", "a FAILED frame is believed only as far as it ends the instance")
    }
}

/// Plugin logs are capped by the host and every plugin string is sanitised before a terminal.
final class PluginTextTests: XCTestCase {
    private func hostileLogging(_ test: XCTestCase, edit: @escaping (String) -> String = { $0 }) throws -> (SupervisedPlugin, CollectedLines) {
        let lines = CollectedLines()
        let bundle = try PluginBundle.open(Harness.pluginDirectory(test, manifest: edit(Harness.hostileManifest)))
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: bundle), runner: try Harness.runner(), onLog: { _, line in lines.append(line.message) })
        test.addTeardownBlock { plugin.stop() }
        return (plugin, lines)
    }

    func testALogFloodIsCappedPerCallAndCounted() throws {
        let (plugin, lines) = try hostileLogging(self)
        XCTAssertEqual(try plugin.callJSON("attack/log-flood", input: #"{"lines":20000}"#)["logged"], .number(20000))
        // 1 KiB lines: the 256 KiB budget ends the call's log after 255 of them, then one note.
        XCTAssertEqual(lines.all.count, 255 + 1)
        XCTAssertTrue(lines.all.last!.hasPrefix("19745 log lines dropped"), lines.all.last!)
        XCTAssertEqual(try plugin.callJSON("attack/log-flood", input: #"{"lines":3}"#)["logged"], .number(3), "the budget is per call")
    }

    func testARawLogFrameIsCutToFourKiB() throws {
        let (plugin, lines) = try hostileLogging(self)
        XCTAssertEqual(try plugin.callJSON("attack/raw-giant-log")["sent"], .number(60000))
        let line = try XCTUnwrap(lines.all.first)
        XCTAssertLessThan(line.utf8.count, 4200, "a 60 KB line arrives as 4 KiB")
        XCTAssertTrue(line.hasSuffix("bytes cut]"), String(line.suffix(40)))
    }

    func testALogFloodDuringInitIsCappedToo() throws {
        let (plugin, lines) = try hostileLogging(self) { $0 + "config: {initAttack: log-flood-in-init}\n" }
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
        XCTAssertEqual(lines.all.count, 256 + 1, "5-byte lines: the 256-line budget, then one note")
        XCTAssertTrue(lines.all.last!.hasPrefix("99744 log lines dropped"), lines.all.last!)
    }

    func testTerminalEscapesNeverReachTheTerminalRaw() throws {
        let home = BraneHome(root: Harness.temporaryDirectory(self).path)
        for json in [false, true] {
            for method in ["attack/log-escapes", "attack/error-escapes"] {
                let run = try CLI.run(["plugin", "run", Harness.hostileDirectory, method] + (json ? ["--json"] : []), home: home)
                if json {
                    XCTAssertNoThrow(try JSONValue(parsing: Array(run.stdout.utf8)), "--json stays valid JSON: \(run.stdout)")
                }
                for output in [run.stdout, run.stderr] {
                    XCTAssertFalse(output.unicodeScalars.contains { [0x1b, 0x07, 0x0d, 0x9b].contains($0.value) }, "\(method): \(output.debugDescription)")
                    XCTAssertFalse(output.split(separator: "\n").contains { $0.hasPrefix("brane: all plugins verified") || $0.hasPrefix("[brane] forged") || $0.hasPrefix("forged") },
                                   "a plugin forged a line: \(output)")
                }
            }
        }
    }

    func testTheSanitiserEscapesEveryControlClass() {
        XCTAssertEqual(UntrustedText.sanitized("a\u{1B}[2Jb\u{07}c\rd\ne\u{9B}f\u{7F}g\u{202E}h"),
                       "a\\u001B[2Jb\\u0007c\\rd\\ne\\u009Bf\\u007Fg\\u202Eh")
        XCTAssertEqual(UntrustedText.sanitized("two\nlines\tok", singleLine: false), "two\nlines\tok")
        XCTAssertEqual(UntrustedText.sanitized("plain ünïcode ✓"), "plain ünïcode ✓")
        XCTAssertEqual(JSONValue.string("\u{9B}31m\u{2028}\u{7F}").serialized(), #""\u009b31m\u2028\u007f""#)
    }
}

/// The descriptor is the manifest: a library that says otherwise does not run.
final class DescriptorTests: XCTestCase {
    private func assertRefused(library: String, manifestEdit: @escaping (String) -> String = { $0 }, step: SetupStep = .identity,
                               mentioning: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let directory = try Harness.hostileCopy(self, library: library, edit: manifestEdit)
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: try PluginBundle.open(directory)), runner: try Harness.runner())
        plugin.assertRefusedAtStart(step: step, mentioning: mentioning, file: file, line: line)
    }

    func testALyingKindIsRefused() throws {
        try assertRefused(library: "libHostileSpecialist.so", mentioning: "kind specialist (the manifest says synapse)")
    }

    func testALyingVersionIsRefused() throws {
        try assertRefused(library: "libHostileLyingVersion.so", mentioning: "version 9.9.9 (the manifest says 0.0.1)")
    }

    func testANewerMinorThanTheHostIsRefused() throws {
        // The runner's own descriptor check refuses it before init, by the one ABI rule.
        try assertRefused(library: "libHostileFutureMinor.so", step: .abiCheck, mentioning: "newer minor version than this host")
    }

    func testAnOlderMinorThanTheManifestDeclaresIsRefused() throws {
        try assertRefused(library: "libHostileOldMinor.so", manifestEdit: { $0.replacingOccurrences(of: "abi: \"1.0\"", with: "abi: \"1.1\"") },
                          mentioning: "ABI 1.0, older than the 1.1 the manifest declares")
    }

    /// The Swift side's frame and step numbers are brane_wire.h's.
    func testTheSwiftWireEnumsAreTheHeaders() {
        XCTAssertEqual(FrameType.filtered.rawValue, UInt16(BRANE_FRAME_FILTERED.rawValue))
        XCTAssertEqual(FrameType.listening.rawValue, UInt16(BRANE_FRAME_LISTENING.rawValue))
        XCTAssertEqual(FrameType.consultError.rawValue, UInt16(BRANE_FRAME_CONSULT_ERROR.rawValue))
        XCTAssertEqual(SetupStep.servePhase.rawValue, UInt32(BRANE_STEP_SERVE_PHASE.rawValue))
        XCTAssertEqual(SetupStep.identitySwitch.rawValue, UInt32(BRANE_STEP_IDENTITY_SWITCH.rawValue))
        XCTAssertEqual(SetupStep.initialize.rawValue, UInt32(BRANE_STEP_INIT.rawValue))
    }
}

private func assertSandboxKillsAny(_ plugin: SupervisedPlugin, _ method: String, call: String,
                                   file: StaticString = #filePath, line: UInt = #line) {
    assertStopped(plugin.expectDeath(method, file: file, line: line), call: call, file: file, line: line)
    plugin.assertServesAgain(file: file, line: line)
}

/// A thread-safe collector of the deaths the host reports.
final class DeathLog: @unchecked Sendable {
    private let lock = NSLock()
    private var deaths: [PluginDeath] = []
    func append(_ death: PluginDeath) { lock.withLock { deaths.append(death) } }
    var all: [PluginDeath] { lock.withLock { deaths } }
}
