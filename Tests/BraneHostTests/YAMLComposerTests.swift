@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest
import Yams

/// YAMLComposer replaces Yams.compose for speed (docs/performance.md): it must build the very
/// tree Yams builds — kinds, strings, implicit tags, positions — and refuse what must be refused.
final class YAMLComposerTests: XCTestCase {
    /// The hand-written YAML 1.1 implicit rules against Yams's own resolver (its NSRegularExpressions),
    /// on tricky cases and 60,000 strings drawn from the characters those rules look at.
    func testImplicitTagsAreYamsResolversOnEveryString() {
        var corpus = ["", "~", "null", "Null", "NULL", "nULL", "yes", "Yes", "YES", "yEs", "on", "OFF", "true", "True", "tRUE", "y", "n",
                      "0", "00", "-0", "+0", "0o", "0o7", "0o8", "08", "09", "0_", "0b", "0b1_0", "0b2", "0x", "0x1F", "0xG", "-0x_", "1_000",
                      "190:20:30", "190:60", "1:5", "1:05:07", "0:30", "1:", "1::2", "12:345", ".5", "._", ".", "-.5", "1.", "1.5e3", "1e", "1e+",
                      "1E-2", ".5e3", ".5e+3", "+.inf", ".Inf", "-.INF", ".nan", "-.nan", ".NaN", "190:20:30.15", "1:2.", "<<", "=", "==",
                      "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15 2:59:43.10", "2001-1-1",
                      "2001-12-14 21:59:43 Z", "2001-12-14T21:59:43Z", "2001-12-14T21:59:43+05:3", "2001-12-14  21:59:43", "2001-12-14\t1:00:00",
                      "12345-12-14", "2001-12-14T21:59", "hello", "0.1.0", "1.2.3", "64MiB", "10s", "tier-0", "--", "+", "-"]
        let alphabet = Array("0123456789+-._:eExXoObBTtZ ~<=\tyesnoYNtrufalsinfaINFNl")
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<60_000 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let length = Int(state >> 60) + Int((state >> 20) & 3)
            corpus.append(String((0..<length).map { i in alphabet[Int((state >> UInt64(i * 4 % 56)) & 0xFFFF) % alphabet.count] }))
        }
        var mismatches: [String] = []
        for text in corpus where YAMLComposer.implicitTag(text) != Node(text).tagName {
            mismatches.append("\(text.debugDescription): ours \(YAMLComposer.implicitTag(text).rawValue), Yams \(Node(text).tagName.rawValue)")
        }
        XCTAssertEqual(mismatches, [], "\(mismatches.count) of \(corpus.count)")
    }

    /// Every YAML file of this repository, and documents with every construct, compose to the
    /// tree Yams composes, position for position.
    func testTheTreeIsYamsTreeForEveryFileHere() throws {
        let root = BundledPlugins.repository
        var files = try FileManager.default.subpathsOfDirectory(atPath: root.path)
            .filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".build") && !$0.contains("/.build") }
            .map { try String(contentsOf: root.appendingPathComponent($0), encoding: .utf8) }
        XCTAssertGreaterThan(files.count, 20)
        files += ["a: 1\nb: [x, 'y', \"z\", 2.5, ~, true, 2001-12-14]\nc: {d: e, f: [g]}\n? complex\n: key\n",
                  "block: |\n  literal\n  text\nfolded: >\n  folded\n  text\nplain: multi\n  line\n",
                  "tagged: !!str 123\nint: !!int \"7\"\ncustom: !thing {a: 1}\nempty:\nnon: ! 12\n",
                  "- a\n- - b\n  - c\n- {}\n- []\n", "just a scalar", "---\nafter: marker\n...\n"]
        for text in files {
            let ours = try YAMLComposer(nodeLimit: 1_000_000, depthLimit: 64, aliasLimit: 1_000).compose(text)
            let yams = try Yams.compose(yaml: text)
            XCTAssertEqual(ours.map { describe($0) }, yams.map { describe($0) }, String(text.prefix(120)))
        }
        // The one intended difference: Yams marks a value reached through an alias at its anchor,
        // this composer at the alias, so a diagnostic about it points at the use.
        let aliased = "anchor: &a {x: 1, y: [2, 3]}\nuse: *a\nagain: [*a, *a]\ns: &s str\nt: *s\n"
        let ours = try XCTUnwrap(try YAMLComposer(nodeLimit: 1_000, depthLimit: 64, aliasLimit: 10).compose(aliased))
        let yams = try XCTUnwrap(try Yams.compose(yaml: aliased))
        XCTAssertEqual(describe(ours, marks: false), describe(yams, marks: false))
        let uses = [ours["use"], ours["again"]?[0], ours["again"]?[1], ours["t"]].map { $0?.mark.map { "\($0.line):\($0.column)" } }
        XCTAssertEqual(uses, ["2:6", "3:9", "3:13", "5:4"])
        XCTAssertEqual(ours["anchor"]?.mark.map { "\($0.line):\($0.column)" }, "1:9")
    }

    /// Kind, tag, string and position of every node, aliases counted out.
    private func describe(_ node: Node, marks: Bool = true) -> String {
        let at = marks ? node.mark.map { "@\($0.line):\($0.column)" } ?? "@?" : ""
        switch node {
        case .scalar(let scalar): return "\(node.tagName.rawValue)\(at)\(scalar.string.debugDescription)"
        case .sequence(let items): return "\(node.tagName.rawValue)\(at)[" + items.map { describe($0, marks: marks) }.joined(separator: ",") + "]"
        case .mapping(let pairs):
            return "\(node.tagName.rawValue)\(at){" + pairs.map { describe($0.key, marks: marks) + ":" + describe($0.value, marks: marks) }.joined(separator: ",") + "}"
        case .alias: return "alias"
        }
    }

    func testWhatMustBeRefusedIsRefusedWhereItIs() {
        func problem(_ text: String, nodes: Int = 100_000) -> String {
            do {
                _ = try YAMLComposer(nodeLimit: nodes, depthLimit: 64, aliasLimit: 1_000).compose(text)
                return "composed"
            } catch {
                return "\(error.line):\(error.column) \(error.message)"
            }
        }
        XCTAssertEqual(problem("a: 1\nb: 2\na: 3\n"), "3:1 duplicate key 'a' (first at line 1); a key may appear once in a mapping")
        XCTAssertEqual(problem("x: {k: 1, \"k\": 2}\n"), "1:11 duplicate key 'k' (first at line 1); a key may appear once in a mapping")
        // Keys are looked up by their text, so a tag cannot make a second one (Yams would let `!x tier` pass).
        XCTAssertEqual(problem("1: a\n\"1\": b\n"), "2:1 duplicate key '1' (first at line 1); a key may appear once in a mapping")
        XCTAssertEqual(problem("privacyTier: 0\n!override privacyTier: 2\n"), "2:1 duplicate key 'privacyTier' (first at line 1); a key may appear once in a mapping")
        XCTAssertEqual(problem("id: a\n!!str id: b\n"), "2:1 duplicate key 'id' (first at line 1); a key may appear once in a mapping")
        XCTAssertEqual(problem("a: *nowhere\n"), "1:4 invalid YAML: found undefined alias")
        XCTAssertTrue(problem("a: [1, 2\n").hasPrefix("2:1 invalid YAML: "), problem("a: [1, 2\n"))
        XCTAssertEqual(problem("a: 1\n---\nb: 2\n"), "2:1 invalid YAML: a second document begins here; the file may hold one")
        XCTAssertEqual(problem("a: &x 1\n? *x\n: 2\n"), "2:3 an alias is used as a mapping key; aliases may stand for values only")
        // Nesting past the bound stops reading at once: libyaml's scanner is quadratic in open flow
        // levels, but its events come lazily, so the cost is that of the first 65 levels.
        let deep = String(repeating: "[", count: 90) + String(repeating: "]", count: 90)
        XCTAssertTrue(problem(deep).hasSuffix("nests deeper than 64 levels (an alias bomb?); refused before reading it"), problem(deep))
        let blockDeep = (0..<200).map { String(repeating: " ", count: $0) + "- \n" }.joined()
        XCTAssertTrue(problem(blockDeep).hasSuffix("nests deeper than 64 levels (an alias bomb?); refused before reading it"), problem(blockDeep))
        let started = ContinuousClock.now
        let flood = String(repeating: "[", count: 500_000)
        // (Unclosed, libyaml's scanner runs ahead to its own cap of 1,000 levels and refuses first.)
        XCTAssertTrue(problem(flood).contains("nest"), problem(flood))
        // Brackets in text never count: half-open intervals in descriptions, a comment of them.
        let intervals = (0..<200).map { "d\($0): \"[\($0), \($0 + 1))\"\n" }.joined() + "# " + String(repeating: "[", count: 5_000) + "\n"
        XCTAssertEqual(problem(intervals), "composed")
        XCTAssertEqual(problem("a: \"" + String(repeating: "[]", count: 100_000) + "\"\n"), "composed")
        // 520 runs of 999 open brackets: 2.6 s before reading stopped at the bound (a red-team file).
        let runs = String(repeating: "k: " + String(repeating: "[", count: 999) + String(repeating: "]", count: 999) + "\n", count: 520)
        _ = problem(runs)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))

        // A billion-node bomb is refused after counting, never built; an alias key after it still wins.
        let bomb = "a0: &a0 [x, x]\n" + (1...30).map { "a\($0): &a\($0) [*a\($0 - 1), *a\($0 - 1)]\n" }.joined()
        XCTAssertTrue(problem(bomb).contains("expands to more than 100000 nodes"), problem(bomb))
        XCTAssertTrue(problem(bomb + "k:\n  ? *a3\n  : 1\n").contains("an alias is used as a mapping key"))
        XCTAssertEqual(problem("a: &a 1\nb: [" + Array(repeating: "*a", count: 1001).joined(separator: ",") + "]\n"),
                       "0:0 the document uses 1001 aliases; at most 1000 are read")
        XCTAssertEqual(problem("a: 1\nb: \u{1}x\n"), "2:4 invalid YAML: control characters are not allowed", "a reader error is placed at its byte")
        XCTAssertEqual(problem("\u{FEFF}a: 1\n"), "composed", "a BOM is skipped")
        XCTAssertEqual(problem("a: 1\n", nodes: 2), "0:0 the document expands to more than 2 nodes or \(Int.max) bytes, or nests deeper than 64 levels (an alias bomb?); refused before reading it")
        // Aliases multiply bytes as well as nodes: 999 uses of a 900 KiB string is 900 MB.
        let big = "big: &x \"" + String(repeating: "x", count: 900 << 10) + "\"\n" + (0..<999).map { "c\($0): *x\n" }.joined()
        do {
            _ = try YAMLComposer(nodeLimit: 100_000, depthLimit: 64, aliasLimit: 1_000, byteLimit: 1 << 20).compose(big)
            XCTFail("composed 900 MB of aliases")
        } catch {
            XCTAssertTrue(error.message.contains("1048576 bytes"), error.message)
        }
    }
}
