import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class MemorySensorTests: XCTestCase {
    func testSamplesMemoryAndSwapWithASteadyTrend() throws {
        let plugin = try sandboxed(BundledPlugins.path("com.brane.sensor.memory"), config: .object(["trendSamples": .number(3)]), for: self)
        var reading = try plugin.sample()
        for _ in 0..<3 { reading = try plugin.sample() }
        let metrics = try XCTUnwrap(reading["metrics"])
        let used = try XCTUnwrap(metrics["memory.usedPercent"]?.numberValue)
        XCTAssert((0...100).contains(used))
        let total = try XCTUnwrap(metrics["memory.totalMiB"]?.numberValue)
        XCTAssertEqual(total, Double(ProcessInfo.processInfo.physicalMemory) / 1_048_576, accuracy: total * 0.05)
        XCTAssertNotNil(metrics["swap.usedPercent"]?.numberValue)
        XCTAssertNotNil(metrics["memory.trendMiBPerMinute"]?.numberValue)
        XCTAssertEqual(reading["states"]?["memory.leakTrend"]?.stringValue, "steady", "an idle test machine is not leaking a MiB a minute")
    }
}
