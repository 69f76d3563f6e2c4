import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class NeuroscientistTests: XCTestCase {
    static let dataset = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("hrv-90-days.jsonl")
    static let id = "com.brane.neuroscientist"

    func router(_ directories: [String] = [BundledPlugins.directory]) throws -> SpecialistRouter {
        let router = SpecialistRouter(locator: PluginLocator(searchDirectories: directories), runner: try ResourceLocator.current.runner())
        addTeardownBlock { router.stopAll() }
        return router
    }

    static func lines() throws -> [String] {
        try String(contentsOf: dataset, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// The dataset's documented overreaching episode raises exactly two alerts, on the documented days.
    func testHRVDropFiresOnTheOverreachingDaysAndNoOthers() throws {
        let router = try router()
        var fired: [String: String] = [:]
        for line in try Self.lines() {
            guard case .result(let bytes) = try router.call(Self.id, method: "specialist/event", input: Array(line.utf8)) else {
                return XCTFail("event refused: \(line)")
            }
            for alert in try JSONValue(parsing: bytes)["alerts"]?.arrayValue ?? [] {
                fired[alert["date"]!.stringValue!] = alert["trigger"]!.stringValue!
            }
        }
        XCTAssertEqual(fired, ["2026-03-03": "drop-with-poor-sleep-and-high-load", "2026-03-04": "sustained-drop"])
    }

    func testTheRuleFollowsItsConfiguredThreshold() throws {
        let base = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        // Five days at >20 % never happens in the episode, so the sustained rule must stay silent.
        try BundledPlugins.copy(Self.id, into: base) {
            $0.replacingOccurrences(of: "dropPercent: 10", with: "dropPercent: 20")
                .replacingOccurrences(of: "consecutiveDays: 3", with: "consecutiveDays: 5")
        }
        let router = try router([base.path])
        var triggers: [String] = []
        for line in try Self.lines() {
            let outcome = try router.call(Self.id, method: "specialist/event", input: Array(line.utf8))
            guard case .result(let bytes) = outcome else { return XCTFail("\(outcome)") }
            triggers += try JSONValue(parsing: bytes)["alerts"]?.arrayValue?.compactMap { $0["trigger"]?.stringValue } ?? []
        }
        XCTAssertEqual(triggers, ["drop-with-poor-sleep-and-high-load"])
    }

    func testConsultAssessesRecoveryWithReasons() throws {
        let router = try router()
        func assess(days: Range<Int>) throws -> JSONValue {
            let readings = try Self.lines()[days].map { try JSONValue(parsing: Array($0.utf8)) }
            let outcome = try router.call(Self.id, method: "specialist/consult",
                                          input: Array(JSONValue.object(["readings": .array(readings)]).serialized().utf8))
            guard case .result(let bytes) = outcome else { throw Failure("consult failed: \(outcome)") }
            return try JSONValue(parsing: bytes)
        }
        let calm = try assess(days: 0..<50)
        XCTAssertEqual(calm["status"]?.stringValue, "normal")
        XCTAssertEqual(calm["cnsFatigue"]?.stringValue, "low")
        XCTAssertEqual(calm["alerts"]?.arrayValue?.count, 0)

        let overreached = try assess(days: 0..<61)
        XCTAssertEqual(overreached["status"]?.stringValue, "fatigued")
        XCTAssertEqual(overreached["cnsFatigue"]?.stringValue, "high")
        XCTAssertLessThan(try XCTUnwrap(overreached["deviation"]?.numberValue), -1.5)
        let recommendations = try XCTUnwrap(overreached["recommendations"]?.arrayValue)
        XCTAssertGreaterThanOrEqual(recommendations.count, 3)
        XCTAssert(recommendations.allSatisfy { $0["reason"]?.stringValue?.isEmpty == false })
        XCTAssertEqual(overreached["alerts"]?.arrayValue?.compactMap { $0["date"]?.stringValue }, ["2026-03-03", "2026-03-04"])
        // General wellness only.
        let text = overreached.serialized().lowercased()
        for word in ["diagnos", "disease", "syndrome", "disorder"] where text.contains(word) && !text.contains("not a medical") {
            XCTFail("wording must stay general wellness, found \(word)")
        }
    }

    func testBadInputIsAnErrorAndTheInstanceKeepsServing() throws {
        let router = try router()
        guard case .pluginError(let error) = try router.call(Self.id, method: "specialist/consult", input: Array(#"{"readings":[]}"#.utf8)) else {
            return XCTFail("empty history must be refused")
        }
        XCTAssertEqual(try JSONValue(parsing: error)["message"]?.stringValue, "readings is empty; send at least one day")
        guard case .result = try router.call(Self.id, method: "specialist/event", input: Array(try Self.lines()[0].utf8)) else {
            return XCTFail("the same instance must still serve")
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
