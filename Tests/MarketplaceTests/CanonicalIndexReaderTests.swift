@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// The event reader (CanonicalIndexReader) may only ever take an index the tree reader takes
/// too, and read it the same; anything else it must leave to the tree reader, so `parse` answers
/// exactly as the tree reader alone — the same index, or the same diagnostics.
final class CanonicalIndexReaderTests: XCTestCase {
    /// Checks one text: the event reader agrees with the tree reader or declines, and `parse`
    /// gives what the tree reader gives. Returns whether the event reader read it.
    @discardableResult
    private func assertAgrees(_ text: String, _ label: @autoclosure () -> String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let fast = CanonicalIndexReader.read(text, nodeLimit: MarketplaceIndex.nodeLimit)
        let tree = Result { try MarketplaceIndex.parseTree(text, file: "index.yaml") }
        let parsed = Result { try MarketplaceIndex.parse(text, file: "index.yaml") }
        if let fast {
            XCTAssertEqual(fast, try? tree.get(), "the event reader took what the tree reader reads otherwise: \(label())", file: file, line: line)
        }
        switch (parsed, tree) {
        case (.success(let a), .success(let b)): XCTAssertEqual(a, b, label(), file: file, line: line)
        case (.failure(let a), .failure(let b)): XCTAssertEqual("\(a)", "\(b)", label(), file: file, line: line)
        default: XCTFail("parse and the tree reader disagree on \(label()): \(parsed) vs \(tree)", file: file, line: line)
        }
        return fast != nil
    }

    private func sample(seed: UInt64) -> MarketplaceIndex {
        var random = SplitMix(seed)
        let words = ["heart", "sleep", "legal: deadline", "ledger # not a comment", "naïve café", "quote \" and \\ backslash", "emoji 🫀", "'single'", "- dash", "{brace}", "tab\tinside"]
        let plugins = (0..<12).map { i -> MarketplaceIndex.Plugin in
            let releases = (0..<random.below(3) + 1).map { r -> MarketplaceIndex.Release in
                let versions = ["1.\(r).0", "0.\(i).\(r)-beta.\(r)", "2.0.\(r)+build.\(i)", "10.20.30-rc-1"]
                var release = MarketplaceIndex.Release(
                    version: SemanticVersion(versions[random.below(versions.count)])!, kind: [.specialist, .synapse, .sensor, .scanner][random.below(4)],
                    abi: ABIVersion(major: 1, minor: random.below(3)), tier: PrivacyTier(rawValue: random.below(3))!,
                    description: (0..<random.below(4) + 1).map { _ in words[random.below(words.count)].replacingOccurrences(of: "\t", with: " ") }.joined(separator: " "),
                    tools: (0..<random.below(3)).map { "tool_\(i)_\($0)" }, archive: "archives/p\(i)-\(r).tar",
                    sha256: String(repeating: "0123456789abcdef", count: 4), size: UInt64(random.below(1 << 20) + 1), yanked: random.below(2) == 0)
                release.network = (0..<random.below(3)).map { "host\($0).example:44\($0)" }
                release.read = random.below(2) == 0 ? ["/etc/ssl/certs/ca-certificates.crt"] : []
                release.write = random.below(2) == 0 ? ["data"] : []
                return release
            }
            return MarketplaceIndex.Plugin(id: "org.example.p\(i)", releases: releases)
        }
        return MarketplaceIndex(name: "sample-\(seed)", version: Int(seed) + 1, expires: Date(timeIntervalSince1970: 1_900_000_000), plugins: plugins)
    }

    func testIndexesInTheFormPublishersWriteAreReadByEventsAndTheSame() throws {
        for seed in 0..<20 as Range<UInt64> {
            let index = sample(seed: seed)
            let text = try index.yaml()
            XCTAssertTrue(assertAgrees(text, "sample \(seed)"), "the event reader declined a published index (seed \(seed))")
            XCTAssertEqual(try MarketplaceIndex.parse(text, file: "index.yaml").plugins.map(\.id), index.plugins.map(\.id).sorted())
        }
        // The bundled plugins published as `scripts/demo` publishes them, into this test's own
        // index: the suite must not depend on what the demo left in marketplace-index/.
        let market = try MarketFixture(self)
        let directories = try FileManager.default.contentsOfDirectory(atPath: BundledPlugins.directory).sorted()
            .map { "\(BundledPlugins.directory)/\($0)" }.filter { FileManager.default.fileExists(atPath: "\($0)/manifest.yaml") }
        try Publisher(indexDirectory: market.indexDirectory, key: market.key).publish(directories, name: "bundled")
        XCTAssertTrue(assertAgrees(try market.indexText, "the bundled index"), "the event reader declined the bundled index")
    }

    /// YAML that means the same in other spellings, and small edits that break it: the event
    /// reader takes only what it reads exactly as the tree reader does.
    func testOtherSpellingsAndBrokenIndexesGetTheTreeReadersAnswer() throws {
        let text = try sample(seed: 7).yaml()
        let release = try XCTUnwrap(text.range(of: "  - version: "))
        func replacing(_ old: String, _ new: String) -> String? {
            text.range(of: old).map { text.replacingCharacters(in: $0, with: new) }
        }
        func inRelease(_ line: String) -> String { text.replacingCharacters(in: release, with: "  - \(line)\n    version: ") }
        let tier = try XCTUnwrap(text.firstMatch(of: /tier: [0-2]/).map { String($0.output) })
        let size = try XCTUnwrap(text.firstMatch(of: /size: [0-9]+/).map { String($0.output) })
        let yanked = try XCTUnwrap(text.firstMatch(of: /yanked: (?:true|false)/).map { String($0.output) })
        let variants: [(String, String?)] = [
            ("tier in hex", replacing(tier, "tier: 0x0")), ("tier signed", replacing(tier, "tier: +1")), ("tier octal", replacing(tier, "tier: 01")),
            ("tier quoted", replacing(tier, "tier: \"1\"")), ("tier tagged", replacing(tier, "tier: !!int 1")), ("tier null", replacing(tier, "tier: ~")),
            ("tier out of range", replacing(tier, "tier: 3")), ("tier huge", replacing(tier, "tier: 99999999999999999999")),
            ("size underscored", replacing(size, "size: 1_000")), ("size zero", replacing(size, "size: 0")), ("size float", replacing(size, "size: 1e3")),
            ("size over the limit", replacing(size, "size: 536870913")), ("size at the limit", replacing(size, "size: 536870912")),
            ("yanked yes", replacing(yanked, "yanked: yes")), ("yanked quoted", replacing(yanked, "yanked: \"true\"")), ("yanked False", replacing(yanked, "yanked: False")),
            ("yanked null", replacing(yanked, "yanked: ~")),
            ("version plain", text.replacing(/version: "([^"]+)"/, maxReplacements: 1) { "version: \($0.output.1)" }),
            ("version single-quoted", replacing("name: \"sample-7\"", "name: 'sample-7'")),
            ("version tagged", replacing("name: \"sample-7\"", "name: !!str sample-7")),
            ("name empty", replacing("name: \"sample-7\"", "name: \"\"")), ("name blank", replacing("name: \"sample-7\"", "name: \"  \"")),
            ("name null", replacing("name: \"sample-7\"", "name: null")), ("name number", replacing("name: \"sample-7\"", "name: 12")),
            ("api version", replacing("apiVersion: brane.dev/v1", "apiVersion: brane.dev/v2")), ("kind", replacing("kind: MarketplaceIndex", "kind: Index")),
            ("expires bad", replacing("expires: \"", "expires: \"x")), ("comment line", replacing("plugins:\n", "plugins: # all of them\n# and a comment\n")),
            ("duplicate key", inRelease("kind: synapse\n    kind: sensor\n    tier: 0")), ("unknown key", inRelease("kinds: synapse")),
            ("anchor and alias", replacing("tools: []", "tools: &none []").flatMap { t in t.range(of: "network: []").map { t.replacingCharacters(in: $0, with: "network: *none") } }),
            ("merge key", inRelease("<<: {yanked: true}")), ("complex key", inRelease("? kind\n    : synapse")),
            ("flow filesystem", replacing("filesystem:\n      read: []\n      write: []", "filesystem: {read: [], write: []}")),
            ("block tools", replacing("tools: []", "tools:\n    - tool_x")), ("tool name bad", replacing("tools: []", "tools: [\"bad name\"]")),
            ("archive escapes", replacing("archive: \"archives/", "archive: \"../")), ("archive absolute", replacing("archive: \"archives/", "archive: \"/")),
            ("archive blank", text.replacingOccurrences(of: #"archive: "archives/p0-0.tar""#, with: #"archive: " ""#)),
            ("digest upper", replacing("0123456789abcdef", "0123456789ABCDEF")), ("description bell", replacing("description: \"", "description: \"\\a")),
            ("description multi-line", replacing("description: \"", "description: \"one\\ntwo ")), ("id bad", replacing("id: \"org.example.p0\"", "id: \"Org.Example\"")),
            ("id dot dot", replacing("id: \"org.example.p0\"", "id: \"org..p0\"")), ("second document", text + "---\nname: x\n"),
            ("explicit end", text + "...\n"), ("explicit start", "---\n" + text), ("syntax error", replacing("plugins:\n", "plugins: [\n")),
            ("missing key", text.replacingOccurrences(of: #"\n    abi: "1\.[0-2]""#, with: "", options: .regularExpression)),
            ("empty", ""), ("only a comment", "# nothing\n"), ("a list", "- 1\n- 2\n"), ("tagged root", "!!map\n" + text),
            ("tabs", replacing("apiVersion: brane.dev/v1", "apiVersion:\tbrane.dev/v1")), ("BOM", "\u{FEFF}" + text),
            ("CRLF", text.replacingOccurrences(of: "\n", with: "\r\n")),
        ]
        for (label, variant) in variants {
            let variant = try XCTUnwrap(variant, "the variant \(label) did not apply")
            XCTAssertNotEqual(variant, text, label)
            assertAgrees(variant, label)
        }
    }

    /// Random byte edits of a published index, a fixed seed per round: the two readers never
    /// disagree, whatever the edit broke or kept.
    func testRandomEditsNeverMakeTheReadersDisagree() throws {
        let text = Array(try sample(seed: 3).yaml().utf8)
        let alphabet = Array(" \n\t:-[]{}\"'#&*!|>?,.0123456789abcdefxyz~\\".utf8)
        var random = SplitMix(42)
        var taken = 0
        for round in 0..<400 {
            var bytes = text
            for _ in 0..<(random.below(3) + 1) {
                let at = random.below(bytes.count)
                switch random.below(3) {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(alphabet[random.below(alphabet.count)], at: at)
                default: bytes[at] = alphabet[random.below(alphabet.count)]
                }
            }
            guard let variant = String(validating: bytes, as: UTF8.self) else { continue }
            if assertAgrees(variant, "round \(round)") { taken += 1 }
        }
        XCTAssertGreaterThan(taken, 0, "some edits (inside a description, say) keep the published form")
    }
}

/// A small deterministic generator, so a failure names a seed that reproduces it.
private struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}
