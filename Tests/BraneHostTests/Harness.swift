import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Paths and helpers shared by the host tests: fixtures live in the source tree, their
/// libraries next to the test binary (`swift build` puts every product in one directory).
enum Harness {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let hostileDirectory = repository.appendingPathComponent("Tests/Fixtures/Hostile").path
    static let hostileManifest = try! String(contentsOfFile: hostileDirectory + "/manifest.yaml", encoding: .utf8)

    static func runner() throws -> String { try ResourceLocator.current.runner() }

    /// A fresh temporary directory, removed when the test ends.
    static func temporaryDirectory(_ test: XCTestCase) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("brane-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A plugin directory holding `manifest` (the library is found on the search path).
    static func pluginDirectory(_ test: XCTestCase, manifest: String) -> String {
        let directory = temporaryDirectory(test)
        try! manifest.write(to: directory.appendingPathComponent("manifest.yaml"), atomically: true, encoding: .utf8)
        return directory.path
    }

    /// The hostile fixture, optionally with its manifest edited (library, id, limits, paths…).
    static func hostile(_ test: XCTestCase, policy: SupervisedPlugin.Policy = quickRestarts,
                        edit: (String) -> String = { $0 }) throws -> SupervisedPlugin {
        let bundle = try PluginBundle.open(pluginDirectory(test, manifest: edit(hostileManifest)))
        return SupervisedPlugin(plan: try SandboxPlan(bundle: bundle), runner: try runner(), policy: policy)
    }

    /// A plugin directory holding the hostile fixture's library copied as `library` (its
    /// descriptor reads its own file name: "Specialist", "LyingVersion", "FutureMinor", "OldMinor")
    /// and the hostile manifest, edited.
    static func hostileCopy(_ test: XCTestCase, library: String, edit: (String) -> String = { $0 }) throws -> String {
        let manifest = edit(hostileManifest.replacingOccurrences(of: "libHostileFixture.so", with: library))
        let directory = pluginDirectory(test, manifest: manifest)
        let built = BuildProducts.directory.appendingPathComponent("libHostileFixture.so")
        try FileManager.default.copyItem(atPath: built.path, toPath: directory + "/" + library)
        return directory
    }

    static let quickRestarts = {
        var policy = SupervisedPlugin.Policy()
        policy.initialBackoff = .milliseconds(1)
        return policy
    }()

    static func json(_ outcome: PluginInstance.CallOutcome) throws -> JSONValue {
        guard case .result(let bytes) = outcome else { throw Unexpected("expected a result, got \(outcome)") }
        return try JSONValue(parsing: bytes)
    }

    struct Unexpected: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

extension SupervisedPlugin {
    /// Calls and returns the death the call must end in; fails the test if it does not die.
    func expectDeath(_ method: String, input: String = "{}", file: StaticString = #filePath, line: UInt = #line) -> PluginDeath? {
        do {
            let outcome = try call(method: method, input: Array(input.utf8))
            XCTFail("\(method) should have ended the plugin, but it answered \(outcome)", file: file, line: line)
        } catch {
            if case .died(let death) = error { return death }
            XCTFail("\(method): expected a death, got \(error)", file: file, line: line)
        }
        return nil
    }

    /// The error a call ends in, or nil when it answers.
    func callError(_ method: String, input: String = "{}") -> CallError? {
        do {
            _ = try call(method: method, input: Array(input.utf8))
            return nil
        } catch {
            return error
        }
    }

    func callJSON(_ method: String, input: String = "{}") throws -> JSONValue {
        try Harness.json(call(method: method, input: Array(input.utf8)))
    }

    /// The plugin never starts: its first call ends in a setup failure at `step` naming `mentioning`,
    /// and — when a restart cannot heal it (`permanent`) — the circuit opens at once.
    func assertRefusedAtStart(step: SetupStep, mentioning: String, permanent: Bool = true,
                              file: StaticString = #filePath, line: UInt = #line) {
        guard case .setupFailed(let failure)? = expectDeath("ping", file: file, line: line)?.cause else {
            return XCTFail("expected a setup failure", file: file, line: line)
        }
        XCTAssertEqual(failure.step, step, file: file, line: line)
        XCTAssertTrue(failure.message.contains(mentioning), failure.message, file: file, line: line)
        guard permanent else { return }
        guard case .circuitOpen? = callError("ping") else { return XCTFail("the circuit should be open", file: file, line: line) }
    }

    /// The host still serves this plugin: a restarted instance answers ping.
    func assertServesAgain(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try? callJSON("ping"), .object(["pong": .bool(true)]), "the plugin was not served again", file: file, line: line)
    }
}
