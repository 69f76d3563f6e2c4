import BranePluginCodable
import Foundation
import XCTest

/// BranePluginCodable's coder is hand-written (its header says why), so it is checked against
/// Foundation's JSONEncoder and JSONDecoder: the same values out, the same documents refused.
final class CodableJSONTests: XCTestCase {
    enum Mood: String, Codable, Equatable { case calm, alert }
    enum Level: Int, Codable, Equatable { case low = 1, high = 3 }
    enum Event: Codable, Equatable { case sample(metric: String, value: Double), restart, moved(Int, to: String) }

    class Base: Codable {
        var id: Int
        init(id: Int) { self.id = id }
    }

    /// A subclass that codes its superclass through `superEncoder`/`superDecoder`.
    final class Derived: Base, Equatable {
        var name: String
        init(id: Int, name: String) { self.name = name; super.init(id: id) }
        enum CodingKeys: String, CodingKey { case name }
        required init(from decoder: Decoder) throws {
            name = try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .name)
            try super.init(from: try decoder.container(keyedBy: CodingKeys.self).superDecoder())
        }
        override func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try super.encode(to: container.superEncoder())
        }
        static func == (a: Derived, b: Derived) -> Bool { a.id == b.id && a.name == b.name }
    }

    struct Empty: Codable, Equatable {}

    /// Writes nothing at all, not even an empty container.
    struct Silent: Codable, Equatable {
        init() {}
        init(from decoder: Decoder) throws {}
        func encode(to encoder: Encoder) throws {}
    }

    struct Everything: Codable, Equatable {
        var text = "q\"\\/ \n\t é 😀 \u{1b}[31m \u{9b}"
        var flag = true
        var double = -2.5e-7
        var whole = 3.0
        var float: Float = 0.1
        var int = -42
        var small: Int8 = -128
        var unsigned: UInt64 = 9_007_199_254_740_991
        var optionalSet: String? = "here"
        var optionalUnset: Int?
        var list = [1, 2, 3]
        var holes: [Int?] = [1, nil, 3]
        var grid: [[Double]] = [[0.5, 1], [], [2]]
        var byName = ["b": 2, "a": 1]
        var byNumber = [7: "seven", -1: "minus one"]
        var mood = Mood.alert
        var level = Level.high
        var events: [Event] = [.sample(metric: "rmssd", value: 41.5), .restart, .moved(2, to: "x")]
        var derived = Derived(id: 9, name: "nine")
        var empty = Empty()
        var silent = Silent()
        var silents = [Silent()]
        var nested: [String: [String: [Int]]] = ["outer": ["inner": [1]], "none": [:]]
    }

    func testEncodesWhatFoundationEncodesAndDecodesItBack() throws {
        let value = Everything()
        let ours = try encodeJSON(value)
        let foundation = try JSONEncoder().encode(value)
        XCTAssertEqual(try JSONValue(parsing: ours), try JSONValue(parsing: Array(foundation)))
        XCTAssertEqual(try decodeJSON(Everything.self, from: ours), value)
        XCTAssertEqual(try decodeJSON(Everything.self, from: Array(foundation)), value)
        XCTAssertEqual(try JSONDecoder().decode(Everything.self, from: Data(ours)), value)
    }

    func testWritesCompactSortedBytes() throws {
        struct Answer: Encodable { var value = 250.0, unit = "mg", text = "0.25 g = 250 mg", note: String? = nil }
        XCTAssertEqual(String(decoding: try encodeJSON(Answer()), as: UTF8.self), #"{"text":"0.25 g = 250 mg","unit":"mg","value":250}"#)
        XCTAssertEqual(String(decoding: try encodeJSON(["a": [Float(0.1)]]), as: UTF8.self), #"{"a":[0.1]}"#)
        XCTAssertEqual(String(decoding: try encodeJSON("x"), as: UTF8.self), #""x""#)
        XCTAssertEqual(try decodeJSON(Int?.self, from: Array("null".utf8)), nil)
        XCTAssertThrowsError(try encodeJSON(Silent()), "a document must hold a value")
        XCTAssertThrowsError(try JSONEncoder().encode(Silent()))
    }

    /// A document Foundation refuses for a type, this coder refuses too, and the other way round.
    func testRefusesWhatFoundationRefuses() throws {
        struct Numbers: Codable, Equatable { var i: Int; var b: Int8?; var d: Double?; var f: Float?; var u: UInt? }
        struct Flags: Codable, Equatable { var on: Bool }
        struct Names: Codable, Equatable { var name: String; var mood: Mood? }
        let cases: [(document: String, decode: ([UInt8]) throws -> Any, foundation: (Data) throws -> Any)] = [
            #"{"i": 1}"#, #"{"i": -0}"#, #"{"i": 1.5}"#, #"{"i": "1"}"#, #"{"i": null}"#, #"{}"#, #"{"i": true}"#,
            #"{"i": 1, "b": 127}"#, #"{"i": 1, "b": 128}"#, #"{"i": 1, "b": -129}"#, #"{"i": 1, "u": -1}"#,
            #"{"i": 1, "d": 1e308}"#, #"{"i": 1, "f": 1e39}"#, #"{"i": 1, "f": 3.4e38}"#, #"{"i": 1, "b": null}"#,
            #"{"i": 1e3}"#, #"[1]"#, #""{}""#, #"{"i": 1, "extra": [1, {"x": 2}]}"#,
        ].map { doc in (doc, { try decodeJSON(Numbers.self, from: $0) }, { try JSONDecoder().decode(Numbers.self, from: $0) }) } + [
            #"{"on": true}"#, #"{"on": 1}"#, #"{"on": "true"}"#, #"{"on": null}"#,
        ].map { doc in (doc, { try decodeJSON(Flags.self, from: $0) }, { try JSONDecoder().decode(Flags.self, from: $0) }) } + [
            #"{"name": "x"}"#, #"{"name": 1}"#, #"{"name": "x", "mood": "calm"}"#, #"{"name": "x", "mood": "sad"}"#,
            #"{"name": "x", "mood": null}"#, #"{"name": ["x"]}"#,
        ].map { doc in (doc, { try decodeJSON(Names.self, from: $0) }, { try JSONDecoder().decode(Names.self, from: $0) }) }
        for test in cases {
            let ours = Result { try test.decode(Array(test.document.utf8)) }
            let theirs = Result { try test.foundation(Data(test.document.utf8)) }
            switch (ours, theirs) {
            case (.success(let a), .success(let b)): XCTAssertEqual("\(a)", "\(b)", test.document)
            case (.failure, .failure): break
            default: XCTFail("\(test.document): ours \(ours), Foundation's \(theirs)")
            }
        }
    }

    /// Where the two differ, on purpose: an integer a double cannot hold is refused, not rounded;
    /// NaN is refused like Foundation refuses it.
    func testRefusesIntegersBeyondWhatADoubleHoldsExactly() throws {
        struct Big: Codable { var n: Int64 }
        XCTAssertEqual(try decodeJSON(Big.self, from: Array(#"{"n": 9007199254740991}"#.utf8)).n, 9_007_199_254_740_991)
        XCTAssertThrowsError(try decodeJSON(Big.self, from: Array(#"{"n": 9007199254740993}"#.utf8))) { error in
            XCTAssertEqual((error as? PluginError)?.message,
                           "invalid input: n: 9007199254740992 is beyond ±2^53, past which a JSON number does not carry an integer exactly")
        }
        for (document, problem) in [(#"{"n": 1.5}"#, "n: 1.5 is not a whole number"), (#"{"n": -1e19}"#, "n: -1e+19 is beyond ±2^53, past which a JSON number does not carry an integer exactly")] {
            XCTAssertThrowsError(try decodeJSON(Big.self, from: Array(document.utf8))) { XCTAssertEqual(($0 as? PluginError)?.message, "invalid input: \(problem)") }
        }
        XCTAssertThrowsError(try decodeJSON([UInt8].self, from: Array("[1, 300]".utf8))) {
            XCTAssertEqual(($0 as? PluginError)?.message, "invalid input: [1]: 300 does not fit UInt8")
        }
        XCTAssertThrowsError(try encodeJSON(Big(n: .max))) {
            XCTAssertEqual(($0 as? PluginError)?.message, "cannot write the answer: n: 9223372036854775807 is beyond ±2^53, past which a JSON number does not carry an integer exactly")
        }
        XCTAssertThrowsError(try encodeJSON(["x": Double.nan])) { XCTAssertEqual(($0 as? PluginError)?.message, "cannot write the answer: x: nan is not a JSON number") }
        // A JSONValue inside an Encodable is held to the same rule, however deep the NaN.
        XCTAssertThrowsError(try encodeJSON(["x": JSONValue.array([1, .object(["y": .number(.infinity)])])]))
        XCTAssertThrowsError(try JSONEncoder().encode(["x": Double.nan]))
        XCTAssertThrowsError(try encodeJSON([Float.infinity]))
    }

    /// An error names where, then what, and never echoes the caller's text.
    func testErrorsNameThePathAndTheProblem() throws {
        struct Reading: Decodable { var date: String; var rmssd: Double }
        struct History: Decodable { var readings: [Reading] }
        func message(_ document: String) -> String? {
            guard case .failure(let error) = Result(catching: { try decodeJSON(History.self, from: Array(document.utf8)) }) else { return nil }
            return (error as? PluginError)?.message
        }
        XCTAssertEqual(message(#"{"readings": [{"date": "d", "rmssd": 1}, {"date": "d", "rmssd": "\u001b[2Jforty"}]}"#),
                       "invalid input: readings[1].rmssd: expected a number, found a string")
        XCTAssertEqual(message(#"{"readings": [{"date": "d"}]}"#), #"invalid input: readings[0]: missing "rmssd""#)
        XCTAssertEqual(message(#"{"readings": [{"date": null, "rmssd": 1}]}"#), "invalid input: readings[0].date: expected a string, found null")
        XCTAssertEqual(message(#"{"readings": {}}"#), "invalid input: readings: expected an array, found an object")
        XCTAssertEqual(message(#"[]"#), "invalid input: expected an object, found an array")
        for (document, kind) in [("1", "an integer"), ("1.5", "a number"), ("null", "null"), ("false", "a boolean")] {
            XCTAssertThrowsError(try decodeJSON(String.self, from: Array(document.utf8))) {
                XCTAssertEqual(($0 as? PluginError)?.message, "invalid input: expected a string, found \(kind)")
            }
        }
        XCTAssertEqual(message(#"{"readings": [1,]}"#), "invalid input: invalid JSON at byte 16: expected a value")
    }

    /// A value nested as deep as the parser allows is decoded without running out of stack.
    func testDecodesTheDeepestDocumentTheParserAccepts() throws {
        let deep = String(repeating: "[", count: 256) + String(repeating: "]", count: 256)
        XCTAssertEqual(try encodeJSON(try decodeJSON(JSONValue.self, from: Array(deep.utf8))), Array(deep.utf8))
        XCTAssertThrowsError(try decodeJSON(JSONValue.self, from: Array(("[" + deep + "]").utf8)))
    }
}
