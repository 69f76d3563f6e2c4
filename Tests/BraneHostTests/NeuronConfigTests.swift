import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Neuron files: the shipped examples, precise diagnostics, and every privacy rule from both sides.
final class NeuronConfigTests: XCTestCase {
    let plugins = PluginLocator(searchDirectories: [BundledPlugins.directory])

    func neuron(tier: Int, endpoint: String = "http://127.0.0.1:11434", fallback: String? = nil,
                tools: [String] = [], specialists: [String] = [], sensors: [String] = []) -> String {
        func list(_ key: String, _ ids: [String]) -> String {
            ids.isEmpty ? "" : "\(key):\n" + ids.map { "  - plugin: \($0)\n" }.joined()
        }
        return """
            apiVersion: brane.dev/v1
            kind: Neuron
            id: test-neuron
            name: Test
            privacyTier: \(tier)
            model:
              provider: ollama
              model: m
              endpoint: \(endpoint)
            \(fallback.map { "  fallbackEndpoint: \($0)\n" } ?? "")\(list("tools", tools))\(list("specialists", specialists))\(list("sensors", sensors))
            """
    }

    func errors(_ yaml: String) -> [Diagnostic] {
        do {
            _ = try NeuronLoader.parse(yaml, file: "n.yaml", plugins: plugins)
            return []
        } catch let failure as ValidationFailure {
            return failure.errors
        } catch {
            XCTFail("\(error)")
            return []
        }
    }

    func testTheExampleNeuronsAreValid() throws {
        let directory = BundledPlugins.repository.appendingPathComponent("examples/neurons").path
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }
        XCTAssertEqual(Set(files), ["sports-medicine.yaml", "legal-researcher.yaml", "finance-analyst.yaml"])
        for file in files {
            let (neuron, warnings) = try NeuronLoader.load(path: "\(directory)/\(file)", plugins: plugins)
            XCTAssertEqual(warnings, [], file)
            XCTAssertFalse(neuron.config.allPlugins.isEmpty, file)
        }
        let sports = try NeuronLoader.load(path: "\(directory)/sports-medicine.yaml", plugins: plugins).neuron
        XCTAssertEqual(sports.config.privacyTier, .sensitive)
        XCTAssertEqual(sports.exposedTools.map(\.name), ["lookup_medical_term", "search_medical_terms", "convert_units",
                                                         "consult_com_brane_neuroscientist", "consult_com_brane_coach",
                                                         "alerts", "latest_reading", "health_summary"])
    }

    func testThePublishedSchemasAcceptTheShippedFilesAndRejectABadOne() throws {
        let repository = BundledPlugins.repository.path
        let examples = try FileManager.default.contentsOfDirectory(atPath: "\(repository)/examples/neurons").map { "\(repository)/examples/neurons/\($0)" }
        let neurons = try PythonTools.run("check_schemas.py", ["\(repository)/docs/schemas/neuron.schema.json"] + examples)
        XCTAssertEqual(neurons.status, 0, neurons.stdout + neurons.stderr)
        let manifests = try FileManager.default.contentsOfDirectory(atPath: BundledPlugins.directory).filter { $0.hasPrefix("com.") }
            .map { "\(BundledPlugins.directory)/\($0)/manifest.yaml" }
        let plugins = try PythonTools.run("check_schemas.py", ["\(repository)/docs/schemas/manifest.schema.json"] + manifests)
        XCTAssertEqual(plugins.status, 0, plugins.stdout + plugins.stderr)
        let bad = BundledPlugins.temporaryDirectory().appendingPathComponent("bad.yaml")
        try neuron(tier: 3).replacingOccurrences(of: "endpoint:", with: "apiKey: sk-1\n  endpoint:").write(to: bad, atomically: true, encoding: .utf8)
        let refused = try PythonTools.run("check_schemas.py", ["\(repository)/docs/schemas/neuron.schema.json", bad.path])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stdout.contains("privacyTier") && refused.stdout.contains("apiKey"), refused.stdout)
    }

    func testEveryProblemIsReportedWithPositionPathAndSuggestion() {
        let yaml = """
            apiVersion: brane.dev/v1
            kind: Neuron
            id: typo
            name: Typos
            privacyTier: 0
            modle: {}
            model:
              provider: olama
              model: m
              endpoint: http://127.0.0.1:11434
              apiKey: sk-live-123
            tools:
              - plugin: com.brane.medterm
              - plugin: com.brane.units
                tools: [convert_unit]
              - plugin: com.brane.sensor.compute
            limits: {maxTurns: 0}
            """
        var diagnostics: [Diagnostic] = []
        do { _ = try NeuronLoader.parse(yaml, file: "n.yaml", plugins: plugins) } catch let failure as ValidationFailure {
            diagnostics = failure.diagnostics
        } catch { XCTFail("\(error)") }
        let text = diagnostics.map(\.description)
        XCTAssertTrue(text.contains("n.yaml:6:1: warning: modle: unknown key 'modle' is ignored; did you mean 'model'?"), "\(text)")
        XCTAssertTrue(text.contains("n.yaml:8:13: error: model.provider: expected openai-compatible or ollama, found \"olama\"; did you mean 'ollama'?"), "\(text)")
        XCTAssertTrue(text.contains { $0.hasPrefix("n.yaml:11:11: error: model.apiKey: secrets are never written in a neuron file") && !$0.contains("sk-live") }, "\(text)")
        XCTAssertTrue(text.contains { $0.hasPrefix("n.yaml:13:13: error: tools[0].plugin: no plugin 'com.brane.medterm' is installed") && $0.contains("did you mean 'com.brane.medterms'?") }, "\(text)")
        XCTAssertTrue(text.contains { $0.hasPrefix("n.yaml:15:13: error: tools[1].tools[0]: com.brane.units has no tool 'convert_unit'; did you mean 'convert_units'?") }, "\(text)")
        XCTAssertTrue(text.contains("n.yaml:16:13: error: tools[2].plugin: com.brane.sensor.compute is a sensor, not a synapse; list it under sensors"), "\(text)")
        XCTAssertTrue(text.contains("n.yaml:17:20: error: limits.maxTurns: 0 is out of range; expected 1…100"), "\(text)")
    }

    func testValidateExitsNonZeroOnAnyErrorAndZeroWhenAllAreValid() throws {
        let home = BraneHome(root: BundledPlugins.temporaryDirectory().path)
        let directory = BundledPlugins.temporaryDirectory()
        let good = directory.appendingPathComponent("good.yaml"), bad = directory.appendingPathComponent("bad.yaml")
        try neuron(tier: 0, tools: ["com.brane.units"]).write(to: good, atomically: true, encoding: .utf8)
        try neuron(tier: 0, tools: ["com.brane.fetch"]).write(to: bad, atomically: true, encoding: .utf8)
        let ok = try CLI.run(["neuron", "validate", good.path, "--plugins", BundledPlugins.directory], home: home)
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
        let failed = try CLI.run(["neuron", "validate", good.path, bad.path, "--plugins", BundledPlugins.directory, "--json"], home: home)
        XCTAssertEqual(failed.status, 2, failed.stdout + failed.stderr)
        let report = try JSONValue(parsing: failed.stdout)
        XCTAssertEqual(report.arrayValue?.map { $0["valid"] }, [.bool(true), .bool(false)])
    }

    // MARK: Privacy rules, each from both directions.

    func testANeuronEnablesOnlyPluginsOfItsTierOrLower() {
        let refused = errors(neuron(tier: 0, tools: ["com.brane.fetch"]))
        XCTAssertEqual(refused.map(\.message), ["com.brane.fetch (tier 2) may not be enabled in neuron test-neuron (tier 0): \(NeuronLoader.tierRule)"])
        XCTAssertEqual(errors(neuron(tier: 1, sensors: ["com.brane.sensor.services"])), [])
        XCTAssertEqual(errors(neuron(tier: 0, sensors: ["com.brane.sensor.services"])).count, 1)
        XCTAssertEqual(errors(neuron(tier: 2, endpoint: "https://models.example.com", tools: ["com.brane.fetch"])), [], "a higher-tier neuron may enable it")
    }

    func testTierZeroAndOneNeuronsUseOnlyALocalModel() {
        for endpoint in ["https://api.openai.com/v1", "http://10.0.0.5:11434"] {
            let refused = errors(neuron(tier: 0, endpoint: endpoint))
            XCTAssertEqual(refused.map(\.path), ["model.endpoint"], endpoint)
            XCTAssertTrue(refused.first?.message.contains("\(endpoint) is not on this machine and may not serve neuron test-neuron (tier 0): \(NeuronLoader.endpointRule)") == true, "\(refused)")
        }
        XCTAssertEqual(errors(neuron(tier: 1, endpoint: "http://127.0.0.1:8080/v1", fallback: "https://api.example.com")).map(\.path), ["model.fallbackEndpoint"])
        for endpoint in ["http://127.0.0.1:11434", "http://localhost:8080/v1", "http://[::1]:11434", "unix:///run/ollama.sock"] {
            XCTAssertEqual(errors(neuron(tier: 0, endpoint: endpoint)), [], endpoint)
        }
        XCTAssertEqual(errors(neuron(tier: 2, endpoint: "https://api.openai.com/v1")), [])
    }

    func testLowerTierOutputNeverReachesARemoteModel() {
        let refused = errors(neuron(tier: 2, endpoint: "https://api.openai.com/v1", tools: ["com.brane.medterms"]))
        XCTAssertEqual(refused.map(\.message), ["output of com.brane.medterms (tier 0) may not reach model endpoint https://api.openai.com/v1 (tier 2): \(DataFlow.rule) (every tool result goes to the model, here at model.endpoint)"])
        let viaFallback = errors(neuron(tier: 2, fallback: "https://api.openai.com/v1", specialists: ["com.brane.neuroscientist"]))
        XCTAssertEqual(viaFallback.count, 1)
        XCTAssertTrue(viaFallback[0].message.hasPrefix("output of com.brane.neuroscientist (tier 0) may not reach model endpoint https://api.openai.com/v1"), viaFallback[0].message)
        XCTAssertEqual(errors(neuron(tier: 2, endpoint: "https://api.openai.com/v1", tools: ["com.brane.fetch"])), [], "tier-2 output may")
        XCTAssertEqual(errors(neuron(tier: 2, endpoint: "http://127.0.0.1:11434", tools: ["com.brane.medterms"])), [], "a local model may see tier 0")
    }

    func testLowerTierOutputNeverReachesAHigherTierToolThroughTheModel() {
        let refused = errors(neuron(tier: 2, tools: ["com.brane.medterms", "com.brane.fetch"]))
        XCTAssertEqual(refused.map(\.message), ["output of com.brane.medterms (tier 0) may not reach com.brane.fetch (tier 2): \(DataFlow.rule) (the model passes what one tool returns to the tools it calls next)"])
        XCTAssertEqual(refused.first?.path, "tools[1].plugin")
        XCTAssertEqual(errors(neuron(tier: 2, tools: ["com.brane.fetch"], sensors: ["com.brane.sensor.compute"])), [],
                       "sensor readings go to storage, not to the model, so a tier-0 sensor may sit beside a tier-2 tool")
    }

    func testANeuronsConfigReachesItsSpecialists() throws {
        let yaml = neuron(tier: 0) + """
            specialists:
              - plugin: com.brane.coach
              - plugin: com.brane.neuroscientist
                config: {hrvDrop: {consecutiveDays: 2}}
            """
        let dispatcher = try ToolDispatcher(neuron: try NeuronLoader.parse(yaml, file: "n.yaml", plugins: plugins).neuron,
                                            runner: try ResourceLocator.current.runner())
        defer { dispatcher.stop() }
        let lines = try String(contentsOfFile: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl", encoding: .utf8)
        // Up to the overreaching episode (2026-03-03/04 in the dataset), so its alerts are recent.
        let readings = try lines.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
            .filter { ($0["date"]?.stringValue ?? "") <= "2026-03-04" }
        let history = JSONValue.object(["readings": .array(readings)])
        let answer = dispatcher.call("consult_com_brane_neuroscientist", arguments: history)
        XCTAssertFalse(answer.isError, answer.text)
        XCTAssertTrue(answer.text.contains("for 2 days in a row"), "the neuron's hrvDrop overlay must reach the sandboxed specialist: \(answer.text)")
        XCTAssertFalse(answer.text.contains("for 3 days in a row"), answer.text)
    }

    func testTheNeuronsCallTimeoutCapsEveryPluginCall() throws {
        let hostile = BundledPlugins.repository.appendingPathComponent("Tests/Fixtures/Hostile").path
        let locator = PluginLocator(explicit: ["test.brane.hostile": hostile], searchDirectories: [BundledPlugins.directory])
        let yaml = neuron(tier: 0, tools: ["test.brane.hostile"]) + "limits: {callTimeout: 100ms}\n"
        let resolved = try NeuronLoader.parse(yaml, file: "n.yaml", plugins: locator).neuron
        XCTAssertEqual(try resolved.plan(for: resolved.config.tools[0]).callTimeoutMilliseconds, 100, "the manifest says 3s; the neuron caps it")
        let dispatcher = try ToolDispatcher(neuron: resolved, runner: try ResourceLocator.current.runner())
        defer { dispatcher.stop() }
        let slow = dispatcher.call("slow", arguments: .object([:]))  // sleeps 300 ms
        XCTAssertTrue(slow.isError)
        XCTAssertTrue(slow.text.contains("call timed out after 100 ms; killed by the host"), slow.text)
        XCTAssertFalse(dispatcher.call("noop", arguments: .object([:])).isError, "a fresh instance serves the next call")
    }

    func testAtRunTimeConversationDataNeverReachesAHigherTierTool() throws {
        let yaml = neuron(tier: 2, endpoint: "https://models.example.com", tools: ["com.brane.fetch"])
        let dispatcher = try ToolDispatcher(neuron: try NeuronLoader.parse(yaml, file: "n.yaml", plugins: plugins).neuron,
                                            runner: try ResourceLocator.current.runner())
        defer { dispatcher.stop() }
        let arguments = try JSONValue(parsing: #"{"url": "https://medlineplus.gov/hrv"}"#)
        let refused = dispatcher.call("fetch_url", arguments: arguments, dataTier: .sensitive)
        XCTAssertTrue(refused.isError)
        XCTAssertEqual(refused.text, "fetch_url refused: data of the conversation of neuron test-neuron (tier 0) may not reach com.brane.fetch (tier 2): \(DataFlow.rule)")
        // Same-tier data is dispatched: the sandboxed plugin runs (and, offline here, reports its own failure).
        let dispatched = dispatcher.call("fetch_url", arguments: arguments, dataTier: .external)
        XCTAssertFalse(dispatched.text.contains("refused: data of the conversation"), dispatched.text)
    }
}

/// Issue 14, points 4 and 8 (first part): no number or duration traps; a plugin's kind is checked wherever it is listed.
final class NumbersAndKindsTests: XCTestCase {
    let plugins = PluginLocator(searchDirectories: [BundledPlugins.directory])

    private func errors(_ yaml: String) -> [String] {
        do {
            _ = try NeuronLoader.parse(yaml, file: "n.yaml", plugins: plugins)
            return []
        } catch let failure as ValidationFailure {
            return failure.errors.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    private func neuron(_ body: String) -> String {
        "apiVersion: brane.dev/v1\nkind: Neuron\nid: n\nname: N\nprivacyTier: 0\n" + body
    }

    func testDurationsPastAnyUseAreClearErrors() {
        for text in ["1e400s", "infs", "1e20ms", "nans", "-5s", "9223372036854775807"] {
            XCTAssertNil(DurationText.milliseconds(text), text)
            let found = errors(neuron("sensors:\n  - plugin: com.brane.sensor.memory\n    interval: \(text)\n"))
            XCTAssertTrue(found.contains { $0.contains("sensors[0].interval") && $0.contains("expected a duration") }, "\(text): \(found)")
        }
        XCTAssertEqual(DurationText.milliseconds("2h"), 7_200_000)
    }

    func testThresholdsAreFiniteNotNegativeAndDeclared() {
        for (value, mentioning) in [(".inf", "finite"), (".nan", "finite"), ("1e400", "finite"), ("-1", "not negative")] {
            let found = errors(neuron("sensors:\n  - plugin: com.brane.sensor.memory\n    thresholds: {memory.usedPercent: \(value)}\n"))
            XCTAssertTrue(found.contains { $0.contains(mentioning) }, "\(value): \(found)")
        }
        let misspelt = errors(neuron("sensors:\n  - plugin: com.brane.sensor.memory\n    thresholds: {memory.usedPercnt: 5}\n"))
        XCTAssertTrue(misspelt.contains { $0.contains("did you mean 'memory.usedPercent'") }, "\(misspelt)")
    }

    func testAPluginListedUnderTheWrongSectionIsRefusedThereToo() {
        let found = errors(neuron("tools:\n  - plugin: com.brane.units\nscanners:\n  - plugin: com.brane.units\n"))
        XCTAssertTrue(found.contains { $0.contains("scanners[0].plugin") && $0.contains("is a synapse, not a scanner") }, "\(found)")
    }

    /// Issue 14, point 7: a duplicate key is reported at the second key, a value reached through an
    /// alias at the alias, and a byte that is not UTF-8 at its line and column — nothing echoed whole.
    func testDiagnosticsPointAtTheDuplicateKeyTheAliasUseAndTheBadByte() throws {
        let model = "model: {provider: ollama, model: m, endpoint: \"http://127.0.0.1:11434\"}\n"
        let duplicate = errors(neuron("description: first\nlimits:\n  maxTurns: 3\n  # a comment\n  maxTurns: 4\n" + model))
        XCTAssertEqual(duplicate, ["n.yaml:10:3: error: duplicate key 'maxTurns' (first at line 8); a key may appear once in a mapping"])

        // The anchor is on line 6; both uses are wrong, and each is reported where it is written.
        let aliased = errors("apiVersion: brane.dev/v1\nkind: Neuron\nid: n\nname: N\nprivacyTier: 0\ndescription: &word \"zero # not a comment\"\n"
            + model + "limits: {maxTurns: *word}\ninstructions: 'x *y'\nspecialists:\n  - plugin: *word\n")
        XCTAssertTrue(aliased.contains { $0.hasPrefix("n.yaml:8:20: error: limits.maxTurns") }, "\(aliased)")
        XCTAssertTrue(aliased.contains { $0.hasPrefix("n.yaml:11:13: error: specialists[0].plugin") }, "\(aliased)")
        XCTAssertFalse(aliased.contains { $0.contains("n.yaml:6:") }, "nothing at the anchor: \(aliased)")

        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("bad.yaml")
        try (Data(neuron("description: caf").utf8) + Data([0xC3, 0x28]) + Data(("\n" + model).utf8)).write(to: file)
        XCTAssertThrowsError(try NeuronLoader.load(path: file.path, plugins: plugins)) { error in
            XCTAssertEqual("\(error)".split(separator: "\n").first.map(String.init),
                           "\(file.path):6:17: error: not UTF-8: byte 0xC3 at offset 83", "\(error)")
        }
    }

    /// Positions come from libyaml's own events, so text that only looks like a key or an alias —
    /// inside quotes, block scalars, plain scalars, flow mappings — never misleads them.
    func testPositionsAreTheParsersNotTheTexts() {
        let model = "model: {provider: ollama, model: m, endpoint: \"http://127.0.0.1:11434\"}\n"
        let cases: [(String, String)] = [
            ("description: \"a\nname: fake\"\n" + model + "name: again\n", "n.yaml:9:1: error: duplicate key 'name'"),
            (model + "x-flow: {a: 1,\nname: zz}\nname: again\n", "n.yaml:9:1: error: duplicate key 'name'"),
            (model + "? name\n: again\n", "n.yaml:7:3: error: duplicate key 'name'"),
            (model + "\"n\\u0061me\": again\n", "n.yaml:7:1: error: duplicate key 'name'"),
            ("x-note: uses *ptr semantics\nx-list: &bad [1, 2]\n" + model + "description: *bad\n", "n.yaml:9:14: error: description: expected a string"),
            ("instructions: |\n  Be careful:\n  *never* diagnose.\nx-list: &bad [1, 2]\n" + model + "description: *bad\n", "n.yaml:11:14: error: description"),
        ]
        for (body, expected) in cases {
            let found = errors(neuron(body))
            XCTAssertTrue(found.contains { $0.hasPrefix(expected) }, "\(body)\n→ \(found)")
        }
    }

    /// What Yams would spend without bound is refused on the text first: an alias as a mapping key
    /// (hashed whole: a stack overflow or an exponential bomb) and more than 1,000 alias uses.
    func testAliasesAsKeysAndAliasFloodsAreRefusedBeforeComposing() {
        let bomb = (1...11).map { "a\($0): &a\($0) [" + Array(repeating: "*a\($0 - 1)", count: 10).joined(separator: ",") + "]\n" }.joined()
        let started = ContinuousClock.now
        let asKey = errors(neuron("a0: &a0 [x, x]\n" + bomb + "keys:\n  ? *a11\n  : 1\n"))
        XCTAssertEqual(asKey, ["n.yaml:19:5: error: an alias is used as a mapping key; aliases may stand for values only"])
        XCTAssertEqual(errors(neuron("a: &a 1\nb: {*a : 2}\n")).first?.hasPrefix("n.yaml:7:5: error: an alias is used as a mapping key"), true)
        let flood = errors(neuron("a: &a 1\nb: [" + Array(repeating: "*a", count: 1001).joined(separator: ",") + "]\n"))
        XCTAssertEqual(flood, ["n.yaml:1:1: error: the document uses 1001 aliases; at most 1000 are read"])
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
    }
}
