import BraneJSON
import Foundation
import XCTest

/// JSONValue is hand-written (see its header for why), so it is checked against Foundation's
/// JSONSerialization and JSONEncoder on the same documents.
final class JSONValueTests: XCTestCase {
    func testParsesWhatFoundationParses() throws {
        let document = #"{"a": [1, -2.5, 3e2, true, false, null], "s": "q\"b\\s\/n\n t\t \u00e9 \ud83d\ude00 ü", "o": {}, "e": []}"#
        let value = try JSONValue(parsing: Array(document.utf8))
        let reference = try JSONSerialization.jsonObject(with: Data(document.utf8)) as! [String: Any]
        XCTAssertEqual(value["s"]?.stringValue, reference["s"] as? String)
        XCTAssertEqual(value["a"], [1, -2.5, 300, true, false, .null])
        XCTAssertEqual(value["o"], .object([:]))
        XCTAssertEqual(value["e"], .array([]))
    }

    func testSerializesSortedCompactAndRoundTrips() throws {
        let value: JSONValue = ["z": 1, "a": ["x\n\u{1}\"", 2.25, 1e20, .null], "m": .number(.nan)]
        let text = String(decoding: value.bytes, as: UTF8.self)
        XCTAssertEqual(text, #"{"a":["x\n\u0001\"",2.25,1e+20,null],"m":null,"z":1}"#)
        let back = try JSONSerialization.jsonObject(with: Data(value.bytes)) as! [String: Any]
        XCTAssertEqual((back["a"] as! [Any])[0] as? String, "x\n\u{1}\"")
        XCTAssertEqual(try JSONValue(parsing: value.bytes)["a"], value["a"])
    }

    func testRejectsMalformedDocumentsWithTheOffset() {
        for (document, offset) in [("{\"a\" 1}", 5), ("[1,]", 3), ("\"open", 5), ("{} x", 3), ("[01x]", 1), ("\"\\ud800\\u0041\"", 13), ("", 0)] {
            XCTAssertThrowsError(try JSONValue(parsing: Array(document.utf8)), document) { error in
                XCTAssertTrue((error as! JSONValue.ParseError).description.hasPrefix("invalid JSON at byte \(offset):"), "\(document): \(error)")
            }
        }
    }

    func testPrettyTextIsTheSameValueIndented() throws {
        let value: JSONValue = ["b": [1, ["c": .null]], "a": "x", "e": .object([:])]
        XCTAssertEqual(value.serialized(pretty: true), """
            {
              "a": "x",
              "b": [
                1,
                {
                  "c": null
                }
              ],
              "e": {}
            }
            """)
        XCTAssertEqual(try JSONValue(parsing: value.serialized(pretty: true)), value)
    }

    func testCodableAgreesWithTheHandWrittenCoder() throws {
        let value: JSONValue = ["n": 3, "f": 2.5, "s": "é\n", "l": [true, .null]]
        XCTAssertEqual(try JSONDecoder().decode(JSONValue.self, from: Data(value.bytes)), value)
        XCTAssertEqual(try JSONValue(parsing: Array(JSONEncoder().encode(value))), value)
    }

    func testMergePatchFollowsRFC7386() throws {
        let base = try JSONValue(parsing: #"{"a": {"b": 1, "c": 2}, "d": [1, 2], "e": 5}"#)
        let patch = try JSONValue(parsing: #"{"a": {"c": 3, "x": {"y": true}}, "d": [9], "e": null}"#)
        XCTAssertEqual(base.merging(patch), try JSONValue(parsing: #"{"a": {"b": 1, "c": 3, "x": {"y": true}}, "d": [9]}"#))
        XCTAssertEqual(base.merging("replaced"), "replaced")
    }

    func testBoundsNestingSoHostileInputCannotExhaustTheStack() {
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000)
        XCTAssertThrowsError(try JSONValue(parsing: deep)) { error in
            XCTAssertTrue((error as! JSONValue.ParseError).description.contains("nested deeper than 256"), "\(error)")
        }
    }

    /// What two readers of one message could disagree on, or a reader could not represent, is refused.
    func testRefusesWhatReadersCouldDisagreeOn() {
        let cases: [([UInt8], String)] = [
            (Array(#"{"method":"a","method":"b"}"#.utf8), "at byte 14: duplicate key"),
            (Array(#"{"s":""#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8), "string is not UTF-8"),
            (Array(#"{"s":"\ud800"}"#.utf8), "unpaired surrogate"),
            (Array(#"{"s":"\ud800\u0041"}"#.utf8), "unpaired surrogate"),
            (Array(#"{"s":"\udc00"}"#.utf8), "unpaired surrogate"),
            (Array("[1e400]".utf8), "at byte 1: number out of range"),
            (Array("[-1e309]".utf8), "number out of range"),
            (Array("[NaN]".utf8), "expected a value"),
        ]
        for (bytes, message) in cases {
            XCTAssertThrowsError(try JSONValue(parsing: bytes), String(decoding: bytes, as: UTF8.self)) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        XCTAssertEqual(try JSONValue(parsing: #"{"s":"\ud83d\ude00"}"#)["s"], "😀", "a pair is one scalar")
    }
}
