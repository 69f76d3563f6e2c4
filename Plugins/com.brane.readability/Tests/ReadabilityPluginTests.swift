import BraneHost
import Foundation
import XCTest

/// The Rust plugin in its real sandbox, through the same supervisor as every other plugin.
/// Its library is built by scripts/build-rust-plugins (scripts/test runs it before the suite).
final class ReadabilityPluginTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path

    private func score(_ plugin: SupervisedPlugin, _ text: String) throws -> PluginInstance.CallOutcome {
        let request = JSONValue.object(["name": "readability", "arguments": .object(["text": .string(text)])])
        return try plugin.call(method: "tools/call", input: request.bytes)
    }

    func testScoresInTheSandbox() throws {
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: try PluginBundle.open(Self.directory)),
                                      runner: try ResourceLocator.current.runner())
        defer { plugin.stop() }
        guard case .result(let plain) = try score(plugin, "Rest today. Then run. You will feel good!") else { return XCTFail("plain") }
        let answer = try JSONValue(parsing: plain)
        XCTAssertEqual(answer["words"], .number(8))
        XCTAssertEqual(answer["sentences"], .number(3))
        XCTAssertEqual(answer["syllables"], .number(9))
        XCTAssertEqual(answer["level"], "plain")
        XCTAssertEqual(try XCTUnwrap(answer["fleschReadingEase"]?.numberValue), 109.0, accuracy: 0.05)  // 206.835 − 1.015 × 8/3 − 84.6 × 9/8

        guard case .result(let dense) = try score(plugin, "Heart rate variability demonstrates considerable interindividual physiological heterogeneity.")
        else { return XCTFail("dense") }
        XCTAssertEqual(try JSONValue(parsing: dense)["level"], "difficult")

        // Text the Rust side must decode exactly: escapes, a surrogate pair, a forged line.
        guard case .result(let escaped) = try score(plugin, "caf\u{e9} \u{1F600} \"quoted\"\nnext\u{1B}[31m line.") else { return XCTFail("escaped") }
        XCTAssertEqual(try JSONValue(parsing: escaped)["words"], .number(5))  // café, quoted, next, 31m, line

        // An error answer carries {"message"}, and the instance goes on serving.
        guard case .pluginError(let error) = try score(plugin, "… — …") else { return XCTFail("no words must be an error") }
        XCTAssertEqual(try JSONValue(parsing: error)["message"], "the text has no words")
        guard case .pluginError(let unknown) = try plugin.call(method: "sensor/sample", input: Array("{}".utf8)) else { return XCTFail("method") }
        XCTAssertTrue(try XCTUnwrap(JSONValue(parsing: unknown)["message"]?.stringValue).contains("answers tools/call"))
        guard case .result = try score(plugin, "Still here.") else { return XCTFail("the instance must keep serving") }
    }

    func testTheDescriptorIsTheManifest() throws {
        let bundle = try PluginBundle.open(Self.directory)
        XCTAssertEqual(bundle.manifest.id, "com.brane.readability")
        let cargo = try String(contentsOfFile: "\(Self.directory)/Cargo.toml", encoding: .utf8)
        XCTAssertTrue(cargo.contains("version = \"\(bundle.manifest.version)\""), "Cargo.toml's version is the descriptor's; it must equal the manifest's")
        XCTAssertFalse(cargo.contains("[dependencies]"), "no crates: the standard library and the C header only")
    }
}
