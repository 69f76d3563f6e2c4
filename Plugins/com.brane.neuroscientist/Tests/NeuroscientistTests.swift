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

    /// A reading no person has is refused where it is read, with its path, and leaves the rule's
    /// state alone: absurd readings fed between real ones change no alert (red-team finding).
    func testAbsurdReadingsAreRefusedAndChangeNothing() throws {
        let router = try router()
        let day = try JSONValue(parsing: Array(try Self.lines()[0].utf8)).objectValue!
        func message(_ method: String, _ input: JSONValue) throws -> String? {
            guard case .pluginError(let error) = try router.call(Self.id, method: method, input: Array(input.serialized().utf8)) else { return nil }
            return PluginInstance.CallOutcome.errorMessage(error)
        }
        for (field, value, expected) in [("sleepHours", JSONValue.number(-1e20), "readings[0].sleepHours: -1e+20 is outside 0–24"),
                                         ("restingHR", 1e20, "readings[0].restingHR: 1e+20 is outside 20–250"),
                                         ("rmssd", 1e308, "readings[0].rmssd: 1e+308 is outside 1–1000"),
                                         ("rmssd", 0, "readings[0].rmssd: 0.0 is outside 1–1000"),
                                         ("date", "d\u{1b}[2J", "readings[0].date: expected a date as YYYY-MM-DD")] {
            var reading = day
            reading[field] = value
            XCTAssertEqual(try message("specialist/consult", ["readings": [.object(reading)]]), "invalid input: \(expected)")
            XCTAssertEqual(try message("specialist/event", .object(reading)), "invalid input: \(expected.replacingOccurrences(of: "readings[0].", with: ""))")
        }

        var fired: [String: String] = [:]
        for (number, line) in try Self.lines().enumerated() {
            if number == 32 {
                for rmssd in [1e308, -1e308] {
                    var absurd = try JSONValue(parsing: Array(line.utf8)).objectValue!
                    absurd["rmssd"] = .number(rmssd)
                    XCTAssertNotNil(try message("specialist/event", .object(absurd)))
                }
            }
            guard case .result(let bytes) = try router.call(Self.id, method: "specialist/event", input: Array(line.utf8)) else {
                return XCTFail("event refused: \(line)")
            }
            for alert in try JSONValue(parsing: bytes)["alerts"]?.arrayValue ?? [] { fired[alert["date"]!.stringValue!] = alert["trigger"]!.stringValue! }
        }
        XCTAssertEqual(fired, ["2026-03-03": "drop-with-poor-sleep-and-high-load", "2026-03-04": "sustained-drop"])
    }

    /// A setting the rule cannot run with stops the instance at its start, named, instead of
    /// crashing it at the first event (a negative window once did).
    func testSettingsTheRuleCannotRunWithAreRefusedAtStart() throws {
        for (setting, expected) in [("baselineDays: -5", "hrvDrop.baselineDays: -5 is below 1"),
                                    ("consecutiveDays: 0", "hrvDrop.consecutiveDays: 0 is below 1"),
                                    ("dropPercent: -10", "hrvDrop.dropPercent: -10.0 is outside 0.1–100.0"),
                                    ("minimumHistory: 40", "hrvDrop.minimumHistory: 40 is more than baselineDays (28), so no baseline would ever form")] {
            let base = BundledPlugins.temporaryDirectory()
            addTeardownBlock { try? FileManager.default.removeItem(at: base) }
            let key = String(setting.split(separator: ":")[0])
            try BundledPlugins.copy(Self.id, into: base) { manifest in
                manifest.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(key):") ? "    \(setting)" : String($0) }.joined(separator: "\n")
            }
            // init has no answer: its reason reaches the host as an error log line.
            let logged = CollectedLines()
            let router = SpecialistRouter(locator: PluginLocator(searchDirectories: [base.path]), runner: try ResourceLocator.current.runner(),
                                          onLog: { _, line in logged.append(line.message) })
            addTeardownBlock { router.stopAll() }
            XCTAssertThrowsError(try router.call(Self.id, method: "specialist/event", input: Array(try Self.lines()[0].utf8)), setting)
            XCTAssertEqual(logged.all, ["init failed: \(expected)"], setting)
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
