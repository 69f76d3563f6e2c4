import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class ProcessesScannerTests: XCTestCase {
    func testListsProcessesWithParentAndUserAndRedactsSecrets() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        // A shell blocked in `read` on a pipe: no grandchild, and SIGTERM ends it at once.
        child.arguments = ["-c", "read -r line", "brane-test", "--token", "hunter2", "--password=swordfish", "API_KEY=abc123",
                           "https://alice:s3cret@db.example/clinic", "--verbose"]
        let stdin = Pipe()
        child.standardInput = stdin
        try child.run()
        addTeardownBlock {  // reaped here, so no other test sees a stray child
            child.terminate()
            child.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.1)

        let scan = try sandboxed(BundledPlugins.path("com.brane.scanner.processes"), for: self)
        guard case .result(let bytes) = try scan.call(method: "scanner/scan", input: Array("{}".utf8)) else { return XCTFail("scan failed") }
        let assets = try XCTUnwrap(try JSONValue(parsing: bytes)["assets"]?.arrayValue)
        let shell = try XCTUnwrap(assets.first { $0["properties"]?["pid"]?.stringValue == String(child.processIdentifier) })
        XCTAssertEqual(shell["properties"]?["ppid"]?.stringValue, String(getpid()))
        XCTAssertEqual(shell["properties"]?["user"]?.stringValue, NSUserName())
        XCTAssertEqual(shell["properties"]?["command"]?.stringValue,
                       "/bin/sh -c read -r line brane-test --token [redacted] --password=[redacted] API_KEY=[redacted] https://alice:[redacted]@db.example/clinic --verbose")
        XCTAssertFalse(String(decoding: bytes, as: UTF8.self).contains("hunter2"))
        XCTAssertGreaterThan(assets.count, 3)
    }

    /// The red-team's ways past the redaction, each in one process's argv, and arguments long
    /// enough that five such processes once made the scan outgrow its frame and fail for everyone.
    func testSecretsInEveryFormAreRedactedAndLongCommandsAreCut() throws {
        let forms: [(argv: [String], shown: String)] = [
            (["--url=https://admin:LEAK1@api.example/oauth/token", "--verbose"], "--url=https://admin:[redacted]@api.example/oauth/token --verbose"),
            (["https://u:p@h,https://v:LEAK2@h2"], "https://u:[redacted]@h2"),
            (["https://u:\u{301}LEAK3@h"], "https://u:[redacted]@h"),
            (["--password=\u{301}LEAK4"], "--password=[redacted]"),
            (["PASSWORD=\u{301}LEAK5"], "PASSWORD=[redacted]"),
            (["\u{301}--token", "LEAK6"], "\u{301}--token [redacted]"),
            (["--db-pass", "LEAK7"], "--db-pass [redacted]"),
            (["--passphrase=LEAK8"], "--passphrase=[redacted]"),
            (["Authorization: Bearer LEAK9"], "Authorization:[redacted]"),
            (["https://u:pa/ss@LEAK10@h/x"], "https://u:[redacted]@h/x"),
            // The second pass's: a hidden flag still hides the next, names behind a prefix, lists,
            // words inside one argument, a token as the user, a comma in the password, JSON, -u.
            (["--no-auth", "--token", "LEAK11"], "--no-auth [redacted] [redacted]"),
            (["--password", "--token", "LEAK12"], "--password [redacted] [redacted]"),
            (["--env=POSTGRES_PASSWORD=LEAK13"], "--env=POSTGRES_PASSWORD=[redacted]"),
            (["--set=db.password=LEAK14", "x:PASSWORD=LEAK15"], "--set=db.password=[redacted] x:PASSWORD=[redacted]"),
            (["-o", "username=bob,password=LEAK16,ro"], "-o username=bob,password=[redacted],ro"),
            (["--header=Authorization: Bearer LEAK17"], "--header=Authorization:[redacted]"),
            (["-H", "Authorization:", "LEAK18"], "-H Authorization:[redacted] [redacted]"),
            (["app --token LEAK19 --verbose"], "app --token [redacted] --verbose"),
            (["--password\tLEAK20"], "--password\t[redacted]"),
            (["https://LEAK21@github.com/o/r"], "https://[redacted]@github.com/o/r"),
            (["mongodb://u:LEAK22,w@h1,h2/db"], "mongodb://u:[redacted]@h1,h2/db"),
            (["-u", "alice:LEAK23", "--user=bob:LEAK24"], "-u alice:[redacted] --user=bob:[redacted]"),
            (["{\"user\":\"u\",\"password\":\"LEAK25\"}"], "{\"user\":\"u\",\"password\":[redacted]"),
            (["--password="], "--password="),
        ]
        var children: [Process] = []
        addTeardownBlock { for child in children { child.terminate(); child.waitUntilExit() } }
        for (number, form) in forms.enumerated() {
            children.append(try blockedShell(["brane-form-\(number)"] + form.argv))
        }
        let long = String(repeating: "x", count: 120_000)
        for _ in 0..<5 { children.append(try blockedShell(["brane-long"] + Array(repeating: long, count: 15))) }
        // Once quadratic in the redaction: a URL scheme mark at every third byte.
        children.append(try blockedShell(["brane-marks"] + Array(repeating: String(repeating: "://", count: 43_690), count: 3)))
        Thread.sleep(forTimeInterval: 0.1)

        let scan = try sandboxed(BundledPlugins.path("com.brane.scanner.processes"), for: self)
        guard case .result(let bytes) = try scan.call(method: "scanner/scan", input: Array("{}".utf8)) else { return XCTFail("scan failed") }
        XCTAssertFalse(String(decoding: bytes, as: UTF8.self).contains("LEAK"))
        let commands = try XCTUnwrap(try JSONValue(parsing: bytes)["assets"]?.arrayValue).compactMap { $0["properties"]?["command"]?.stringValue }
        for (number, form) in forms.enumerated() {
            XCTAssertTrue(commands.contains("/bin/sh -c read -r line brane-form-\(number) \(form.shown)"), "\(form.argv): \(commands.filter { $0.contains("brane-form-\(number) ") })")
        }
        let cut = commands.filter { $0.contains("brane-long") }
        XCTAssertEqual(cut.count, 5)
        XCTAssertEqual(commands.filter { $0.contains("brane-marks") }.count, 1)
        for command in cut {
            XCTAssertLessThanOrEqual(command.utf8.count, 4096 + "…[cut]".utf8.count)
            XCTAssertTrue(command.hasSuffix("…[cut]"), String(command.suffix(40)))
        }
    }

    /// Command lines whose JSON is six times their size (control characters) reach the scan's 3 MiB
    /// budget: the rest are shown as [not shown] with a note, and the answer still fits its frame.
    func testCommandLinesPastTheBudgetAreNotShown() throws {
        var children: [Process] = []
        addTeardownBlock {  // all signalled first, then reaped: one at a time is a wait each
            children.forEach { $0.terminate() }
            children.forEach { $0.waitUntilExit() }
        }
        let controls = String(repeating: "\u{1}", count: 1024)
        for _ in 0..<160 { children.append(try blockedShell(["brane-budget"] + Array(repeating: controls, count: 4))) }
        Thread.sleep(forTimeInterval: 0.2)
        let scan = try sandboxed(BundledPlugins.path("com.brane.scanner.processes"), for: self)
        guard case .result(let bytes) = try scan.call(method: "scanner/scan", input: Array("{}".utf8)) else { return XCTFail("scan failed") }
        let answer = try JSONValue(parsing: bytes)
        let commands = try XCTUnwrap(answer["assets"]?.arrayValue).compactMap { $0["properties"]?["command"]?.stringValue }
        XCTAssertGreaterThan(commands.filter { $0 == "[not shown]" }.count, 0)
        XCTAssertGreaterThanOrEqual(commands.filter { $0.contains("brane-budget") || $0 == "[not shown]" }.count, 160, "every process is still listed")
        XCTAssertTrue(answer["notes"]?.arrayValue?.contains(.string("command lines past 3 MiB in all are shown as [not shown]")) == true, "\(answer["notes"] ?? .null)")
        XCTAssertLessThan(bytes.count, 4 << 20)
    }

    /// A process names itself (its comm, in /proc/PID/stat): a name that starts with a combining
    /// mark once crashed the scanner, one ending in a prepending mark hid the process, and one
    /// holding `) Z 1` faked its state and parent. Each is listed as it is.
    func testAProcessNamedToConfuseTheParserIsListedTruly() throws {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        var children: [(Process, String)] = []
        addTeardownBlock { for (child, _) in children { child.terminate(); child.waitUntilExit() } }
        for name in ["\u{301}sh", "sh\u{600}", "a) Z 1 \u{600}"] {
            let link = directory.appendingPathComponent(name)
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: "/bin/sh")
            let child = Process()
            child.executableURL = link
            child.arguments = ["-c", "read -r line"]
            child.standardInput = Pipe()
            try child.run()
            children.append((child, name))
        }
        Thread.sleep(forTimeInterval: 0.1)
        let scan = try sandboxed(BundledPlugins.path("com.brane.scanner.processes"), for: self)
        guard case .result(let bytes) = try scan.call(method: "scanner/scan", input: Array("{}".utf8)) else { return XCTFail("scan failed") }
        let assets = try XCTUnwrap(try JSONValue(parsing: bytes)["assets"]?.arrayValue)
        for (child, name) in children {
            let listed = try XCTUnwrap(assets.first { $0["properties"]?["pid"]?.stringValue == String(child.processIdentifier) }, "\(name) is hidden")
            XCTAssertEqual(listed["name"]?.stringValue, name)
            XCTAssertEqual(listed["properties"]?["ppid"]?.stringValue, String(getpid()), name)
            XCTAssertEqual(listed["properties"]?["state"]?.stringValue, "S", name)
        }
    }

    /// A shell blocked in `read` on a pipe, with this argv after `-c read -r line`.
    private func blockedShell(_ arguments: [String]) throws -> Process {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        child.arguments = ["-c", "read -r line"] + arguments
        child.standardInput = Pipe()
        try child.run()
        return child
    }
}
