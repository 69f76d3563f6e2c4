import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class MedtermsTests: XCTestCase {
    static let directory = BundledPlugins.path("com.brane.medterms")

    func plugin() throws -> SupervisedPlugin {
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: try PluginBundle.open(Self.directory)),
                                      runner: try ResourceLocator.current.runner())
        addTeardownBlock { plugin.stop() }
        return plugin
    }

    func call(_ plugin: SupervisedPlugin, _ tool: String, _ arguments: String) throws -> (ok: Bool, reply: JSONValue) {
        let request = JSONValue.object(["name": .string(tool), "arguments": try JSONValue(parsing: Array(arguments.utf8))])
        switch try plugin.call(method: "tools/call", input: Array(request.serialized().utf8)) {
        case .result(let bytes): return (true, try JSONValue(parsing: bytes))
        case .pluginError(let bytes): return (false, try JSONValue(parsing: bytes))
        }
    }

    func testLookupIsCaseInsensitiveAndKnowsAbbreviationsAndSynonyms() throws {
        let plugin = try plugin()
        for (spelling, term, kind) in [("HRV", "Heart rate variability", "abbreviation"), ("rmssd", "Root mean square of successive differences", "abbreviation"),
                                       ("deep sleep", "Slow-wave sleep", "synonym"), ("acute:chronic WORKLOAD ratio", "Acute:chronic workload ratio", "term")] {
            let (ok, reply) = try call(plugin, "lookup_medical_term", #"{"term": "\#(spelling)"}"#)
            XCTAssertTrue(ok, "\(spelling): \(reply)")
            XCTAssertEqual(reply["term"]?.stringValue, term, spelling)
            XCTAssertEqual(reply["matchedAs"]?.stringValue, kind, spelling)
            XCTAssertFalse(reply["definition"]?.stringValue?.isEmpty ?? true)
        }
    }

    func testAnUnknownTermSuggestsCloseOnes() throws {
        let (ok, reply) = try call(try plugin(), "lookup_medical_term", #"{"term": "variability"}"#)
        XCTAssertFalse(ok)
        let message = try XCTUnwrap(reply["message"]?.stringValue)
        XCTAssertTrue(message.hasPrefix("no term, abbreviation or synonym 'variability'; did you mean: Heart rate variability"), message)
    }

    func testSearchRanksAnExactAbbreviationFirstAndFiltersByCategory() throws {
        let plugin = try plugin()
        let (ok, reply) = try call(plugin, "search_medical_terms", #"{"query": "hrv", "limit": 5}"#)
        XCTAssertTrue(ok, "\(reply)")
        let results = try XCTUnwrap(reply["results"]?.arrayValue)
        XCTAssertEqual(results.first?["term"]?.stringValue, "Heart rate variability")
        XCTAssertLessThanOrEqual(results.count, 5)

        let sleep = try call(plugin, "search_medical_terms", #"{"query": "deep restoration hormone", "category": "sleep"}"#).reply
        let terms = try XCTUnwrap(sleep["results"]?.arrayValue).compactMap { $0["term"]?.stringValue }
        XCTAssertEqual(terms.first, "Slow-wave sleep")
        XCTAssert(try XCTUnwrap(sleep["results"]?.arrayValue).allSatisfy { $0["category"]?.stringValue == "sleep" })

        let quoted = try call(plugin, "search_medical_terms", #"{"query": "\"; DROP TABLE terms; --"}"#)
        XCTAssertTrue(quoted.ok, "FTS syntax in a query is only words to search for")
        XCTAssertTrue(try call(plugin, "lookup_medical_term", #"{"term": "SWS"}"#).ok, "the database is intact")
    }

    /// The shipped database is built from the glossary by glossary/make-terms-db; they must agree.
    func testTheDatabaseMatchesTheGlossaryAndHoldsAtLeast200Terms() throws {
        let glossary = try String(contentsOfFile: "\(Self.directory)/glossary/glossary.psv", encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.map { String($0.split(separator: "|", omittingEmptySubsequences: false)[0]) }
        XCTAssertGreaterThanOrEqual(glossary.count, 200)
        let plugin = try plugin()
        for term in glossary {
            let (ok, reply) = try call(plugin, "lookup_medical_term", "{\"term\": \(JSONValue.string(term).serialized())}")
            XCTAssertTrue(ok && reply["term"]?.stringValue == term, "\(term) is in glossary.psv but not in terms.db: run glossary/make-terms-db")
        }
    }

    /// The database is read-only to the plugin: no Landlock rule grants write access anywhere.
    func testTheSandboxGrantsTheDatabaseReadOnly() throws {
        let plan = try SandboxPlan(bundle: try PluginBundle.open(Self.directory))
        XCTAssert(plan.landlock.paths.contains { $0.path.hasSuffix("/data/terms.db") && !$0.writable })
        XCTAssertEqual(plan.landlock.paths.filter(\.writable).map(\.path), [])
        XCTAssertTrue(plan.isolateNetwork, "tier 0 gets an empty network namespace")
    }
}
