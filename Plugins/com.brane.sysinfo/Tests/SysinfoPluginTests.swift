import BraneHost
import Foundation
import XCTest

final class SysinfoPluginTests: XCTestCase {
    func testSampleReportsPlausibleSystemFactsFromInsideTheSandbox() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: try PluginBundle.open(directory)),
                                      runner: try ResourceLocator.current.runner())
        guard case .result(let bytes) = try plugin.call(method: "sensor/sample", input: []) else { return XCTFail() }
        let sample = try JSONValue(parsing: bytes)
        let total = try XCTUnwrap(sample["memory"]?["totalKiB"]?.numberValue)
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        XCTAssertTrue(meminfo.contains("MemTotal:") && meminfo.contains("\(Int(total)) kB"), "MemTotal differs from /proc/meminfo")
        let used = try XCTUnwrap(sample["memory"]?["usedPercent"]?.numberValue)
        XCTAssertTrue((0...100).contains(used))
        XCTAssertGreaterThan(try XCTUnwrap(sample["uptimeSeconds"]?.numberValue), 0)
        XCTAssertGreaterThan(try XCTUnwrap(sample["tasks"]?["total"]?.numberValue), 0)
        guard case .pluginError(let error) = try plugin.call(method: "scanner/scan", input: []) else { return XCTFail() }
        XCTAssertTrue(String(decoding: error, as: UTF8.self).contains("answers sensor/sample"))
    }
}
