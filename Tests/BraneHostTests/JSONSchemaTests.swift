@testable import BraneHost
import XCTest

final class JSONSchemaTests: XCTestCase {
    let schema = JSONSchema(try! JSONValue(parsing: """
        {"type": "object", "additionalProperties": false, "required": ["patient", "doses"],
         "properties": {
           "patient": {"type": "object", "required": ["ageYears"],
                       "properties": {"ageYears": {"type": "integer", "minimum": 0, "maximum": 130},
                                      "sex": {"enum": ["female", "male", "unknown"]}}},
           "doses": {"type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "number", "exclusiveMinimum": 0}},
           "note": {"type": "string", "maxLength": 10, "pattern": "^[a-z ]*$"}}}
        """))

    private func messages(_ json: String) throws -> [String] {
        schema.violations(of: try JSONValue(parsing: json)).map(\.description)
    }

    func testConformingArgumentsPass() throws {
        XCTAssertEqual(try messages(#"{"patient": {"ageYears": 40, "sex": "female"}, "doses": [1.5, 2], "note": "ok"}"#), [])
    }

    func testTypesRequiredAndAdditionalProperties() throws {
        XCTAssertEqual(try messages(#"{"patient": {"ageYears": "40"}, "dose": [1]}"#), [
            "arguments: missing required property 'doses'",
            "arguments.dose: unexpected property 'dose'; did you mean 'doses'?",
            "arguments.patient.ageYears: expected integer, found string \"40\"",
        ])
    }

    func testRangesEnumsAndNestedArrays() throws {
        XCTAssertEqual(try messages(#"{"patient": {"ageYears": 131, "sex": "femal"}, "doses": [0, 2, 3, 4]}"#), [
            "arguments.doses: has 4 items, more than 3",
            "arguments.doses[0]: 0 must be greater than 0",
            "arguments.patient.ageYears: 131 is greater than the maximum 130",
            "arguments.patient.sex: \"femal\" is not one of \"female\", \"male\", \"unknown\"; did you mean \"female\"?",
        ])
    }

    func testIntegerVersusNumberAndStringBounds() throws {
        XCTAssertEqual(try messages(#"{"patient": {"ageYears": 40.5}, "doses": [1], "note": "Far Too Long"}"#), [
            "arguments.note: is 12 characters long, longer than 10",
            "arguments.note: \"Far Too Long\" does not match the pattern ^[a-z ]*$",
            "arguments.patient.ageYears: expected integer, found number 40.5",
        ])
    }

    func testCombinators() throws {
        let either = JSONSchema(try JSONValue(parsing: #"{"oneOf": [{"type": "string"}, {"type": "integer"}], "not": {"const": 7}}"#))
        XCTAssertEqual(either.violations(of: .string("x")), [])
        XCTAssertEqual(either.violations(of: .number(7)).map(\.message), ["matches a schema it must not match"])
        XCTAssertEqual(either.violations(of: .bool(true)).map(\.message), ["matches 0 of the oneOf alternatives, expected exactly 1"])
    }
}

/// Issue 14, point 7 (first part): a huge value costs little and is not echoed in full.
final class BoundedSchemaMessageTests: XCTestCase {
    func testAHugeStringFailingAnEnumIsCheapAndCut() throws {
        let schema = JSONSchema(try JSONValue(parsing: #"{"type": "object", "properties": {"unit": {"enum": ["mg", "g", "kg"]}}}"#))
        let huge = String(repeating: "x", count: 5 << 20)
        let started = ContinuousClock.now
        let violations = schema.violations(of: .object(["unit": .string(huge)]))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(1))
        XCTAssertEqual(violations.count, 1)
        let message = try XCTUnwrap(violations.first?.description)
        XCTAssertLessThan(message.utf8.count, 400, "echoed, not copied: \(message.prefix(200))")
        XCTAssertTrue(message.contains("bytes cut"), message)
        XCTAssertNil(closestMatch(to: huge, in: ["mg", "g"]))
    }
}
