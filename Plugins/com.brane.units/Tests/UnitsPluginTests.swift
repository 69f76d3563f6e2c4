import BraneHost
import Foundation
import XCTest

final class UnitsPluginTests: XCTestCase {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path

    private func convert(_ plugin: SupervisedPlugin, _ value: Double, _ from: String, _ to: String) throws -> PluginInstance.CallOutcome {
        let request = JSONValue.object(["name": .string("convert_units"),
                                        "arguments": .object(["value": .number(value), "from": .string(from), "to": .string(to)])])
        return try plugin.call(method: "tools/call", input: Array(request.serialized().utf8))
    }

    func testConversionsInTheSandbox() throws {
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: try PluginBundle.open(Self.directory)),
                                      runner: try ResourceLocator.current.runner())
        let cases: [(Double, String, String, Double)] = [(5, "mg", "g", 0.005), (98.6, "degF", "degC", 37), (5.5, "mmol/L", "mg/dL", 99.088),
                                                         (1, "lb", "kg", 0.453592), (2, "tbsp", "mL", 29.57353), (300, "K", "degC", 26.85)]
        for (value, from, to, expected) in cases {
            guard case .result(let bytes) = try convert(plugin, value, from, to) else { return XCTFail("\(from)→\(to)") }
            let answer = try XCTUnwrap(try JSONValue(parsing: bytes)["value"]?.numberValue)
            XCTAssertEqual(answer, expected, accuracy: 1e-3, "\(value) \(from) → \(to)")
        }
        guard case .pluginError(let error) = try convert(plugin, 1, "kg", "mL") else { return XCTFail("mass to volume must fail") }
        XCTAssertEqual(try JSONValue(parsing: error)["message"], .string("cannot convert mass (kg) to volume (mL)"))
        // A finite value whose conversion is not: an error that says so, not an answer JSON cannot carry.
        guard case .pluginError(let overflow) = try convert(plugin, 1e308, "kg", "mcg") else { return XCTFail("an infinite result must fail") }
        XCTAssertEqual(try JSONValue(parsing: overflow)["message"], .string("1e+308 kg in mcg is beyond the range of a number"))
    }

    func testTheManifestSchemaRefusesBadArgumentsBeforeThePluginRuns() throws {
        let schema = JSONSchema(try XCTUnwrap(PluginBundle.open(Self.directory).manifest.tool(named: "convert_units")).inputSchema)
        let bad = try JSONValue(parsing: #"{"value": "5", "from": "mgs", "to": "g"}"#)
        XCTAssertEqual(schema.violations(of: bad).map(\.path), ["arguments.from", "arguments.value"])
    }
}
