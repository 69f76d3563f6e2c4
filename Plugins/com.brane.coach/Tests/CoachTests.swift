import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class CoachTests: XCTestCase {
    static let dataset = BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl"

    func history(_ days: Range<Int>) throws -> [UInt8] {
        let lines = try String(contentsOfFile: Self.dataset, encoding: .utf8).split(separator: "\n")
        let readings = try lines[days].map { try JSONValue(parsing: Array($0.utf8)) }
        return Array(JSONValue.object(["readings": .array(readings)]).serialized().utf8)
    }

    func router(_ directories: [String]) throws -> SpecialistRouter {
        let router = SpecialistRouter(locator: PluginLocator(searchDirectories: directories), runner: try ResourceLocator.current.runner())
        addTeardownBlock { router.stopAll() }
        return router
    }

    func advice(_ router: SpecialistRouter, _ days: Range<Int>) throws -> PluginInstance.CallOutcome {
        try router.call("com.brane.coach", method: "specialist/consult", input: try history(days))
    }

    func testCoachConsultsTheNeuroscientistThroughTheHost() throws {
        let router = try router([BundledPlugins.directory])
        guard case .result(let calmBytes) = try advice(router, 0..<49) else { return XCTFail("consult failed") }
        let calm = try JSONValue(parsing: calmBytes)
        XCTAssertEqual(calm["recovery"]?["status"]?.stringValue, "normal")
        XCTAssertEqual(calm["recommendation"]?.stringValue, "hold")

        guard case .result(let bytes) = try advice(router, 0..<61) else { return XCTFail("consult failed") }
        let overreached = try JSONValue(parsing: bytes)
        XCTAssertEqual(overreached["recovery"]?["status"]?.stringValue, "fatigued", "the neuroscientist's view came back through the host")
        XCTAssertEqual(overreached["recommendation"]?.stringValue, "deload")
        XCTAssertGreaterThan(try XCTUnwrap(overreached["acwr"]?.numberValue), 1.3)
        XCTAssertNotNil(overreached["monotony"]?.numberValue)
        XCTAssertNotNil(overreached["strain"]?.numberValue)
        // Both ran as their own sandboxed processes.
        XCTAssertNotNil(try router.plugin("com.brane.neuroscientist").pid)
        XCTAssertNotEqual(try router.plugin("com.brane.neuroscientist").pid, try router.plugin("com.brane.coach").pid)
    }

    func testTheHostRefusesAConsultAcrossPrivacyTiers() throws {
        let base = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        try BundledPlugins.copy("com.brane.coach", into: base)
        try BundledPlugins.copy("com.brane.neuroscientist", into: base) { $0.replacingOccurrences(of: "tier: 0", with: "tier: 1") }
        guard case .pluginError(let error) = try advice(try router([base.path]), 0..<30) else { return XCTFail("must be refused") }
        XCTAssertEqual(try JSONValue(parsing: error)["message"]?.stringValue,
                       "consult refused: the consult input of com.brane.coach (tier 0) may not reach com.brane.neuroscientist (tier 1): \(DataFlow.rule)")
    }

    func testTheHostRefusesTheOtherDirectionToo() throws {
        let base = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        try BundledPlugins.copy("com.brane.coach", into: base) { $0.replacingOccurrences(of: "tier: 0", with: "tier: 1") }
        try BundledPlugins.copy("com.brane.neuroscientist", into: base)
        guard case .pluginError(let error) = try advice(try router([base.path]), 0..<30) else { return XCTFail("must be refused") }
        XCTAssertEqual(try JSONValue(parsing: error)["message"]?.stringValue,
                       "consult refused: the answer of com.brane.neuroscientist (tier 0) may not reach com.brane.coach (tier 1): \(DataFlow.rule)")
    }

    func testAnUndeclaredConsultIsRefused() throws {
        let base = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        try BundledPlugins.copy("com.brane.coach", into: base) { $0.replacingOccurrences(of: "  consults: [com.brane.neuroscientist]\n", with: "") }
        try BundledPlugins.copy("com.brane.neuroscientist", into: base)
        let router = try router([base.path])
        guard case .pluginError(let error) = try advice(router, 0..<30) else { return XCTFail("must be refused") }
        XCTAssertEqual(try JSONValue(parsing: error)["message"]?.stringValue,
                       "com.brane.coach may not consult com.brane.neuroscientist: it is not listed under specialist.consults in com.brane.coach's manifest")
        XCTAssertNil(try router.plugin("com.brane.neuroscientist").pid, "the target was never started")
    }
}
