import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// The model broker and the chat loop, driven by a loopback server that replays recorded
/// OpenAI and Ollama streams; every tool the model asks for runs sandboxed for real.
final class ModelBrokerTests: XCTestCase {
    let plugins = PluginLocator(searchDirectories: [BundledPlugins.directory])
    var directory: URL!

    override func setUp() { directory = BundledPlugins.temporaryDirectory() }
    override func tearDown() { try? FileManager.default.removeItem(at: directory) }

    func neuronYAML(tier: Int = 0, provider: String = "openai-compatible", endpoint: String, fallback: String? = nil,
                    toolCalling: String = "native", tools: [String] = ["com.brane.units", "com.brane.medterms"],
                    maxTurns: Int = 4, budget: Int? = nil, apiKeyEnv: String? = nil) -> String {
        """
        apiVersion: brane.dev/v1
        kind: Neuron
        id: chat-test
        name: Chat test
        privacyTier: \(tier)
        model:
          provider: \(provider)
          model: \(provider == "ollama" ? "llama3.1:8b" : "test-model")
          endpoint: \(endpoint)
        \(fallback.map { "  fallbackEndpoint: \($0)\n" } ?? "")\(apiKeyEnv.map { "  apiKeyEnv: \($0)\n" } ?? "")  toolCalling: \(toolCalling)
        instructions: You help athletes with units and terms.
        tools:
        \(tools.map { "  - plugin: \($0)\n" }.joined())limits:
          maxTurns: \(maxTurns)
        \(budget.map { "  dailyTokenBudget: \($0)\n" } ?? "")
        """
    }

    /// A chat over `yaml`'s neuron, with its own token ledger; the caller stops the dispatcher.
    func session(_ yaml: String, ledger: TokenLedger? = nil, maximumAnswerBytes: Int = 32 << 20, environment: [String: String] = [:],
                 edit: (inout ResolvedNeuron) -> Void = { _ in }) throws -> (ChatSession, ToolDispatcher, TokenLedger) {
        var neuron = try NeuronLoader.parse(yaml, file: "chat-test.yaml", plugins: plugins).neuron
        edit(&neuron)
        let ledger = try ledger ?? TokenLedger(path: directory.appendingPathComponent("usage.sqlite").path)
        let dispatcher = try ToolDispatcher(neuron: neuron, runner: try ResourceLocator.current.runner())
        let broker = ModelBroker(neuron: neuron.config, ledger: ledger, environment: environment)
        broker.maximumAnswerBytes = maximumAnswerBytes
        return (ChatSession(neuron: neuron, broker: broker, dispatcher: dispatcher), dispatcher, ledger)
    }

    func testOpenAIToolCallingRunsTheSandboxedToolAndStreamsTheAnswer() throws {
        let model = try FakeModelServer(path: "/v1")
        model.enqueue(.recorded("openai-tool-call.sse"), .recorded("openai-answer.sse"))
        let (chat, dispatcher, ledger) = try session(neuronYAML(endpoint: model.url))
        defer { dispatcher.stop() }
        var pieces: [String] = []
        let reply = try chat.send("What is 5.5 mmol/L of glucose in mg/dL?") { if case .text(let text) = $0 { pieces.append(text) } }

        XCTAssertEqual(reply.text, "5.5 mmol/L of glucose is about 99 mg/dL.")
        XCTAssertEqual(pieces, ["5.5 mmol/L", " of glucose is", " about 99 mg/dL."], "the answer streams piece by piece")
        XCTAssertEqual(reply.turns, 2)
        XCTAssertEqual(reply.toolCalls.map(\.name), ["convert_units"])
        let result = reply.toolCalls[0].result
        XCTAssertFalse(result.isError, result.text)
        XCTAssertEqual(result.structured?["unit"]?.stringValue, "mg/dL", "the sandboxed units plugin answered: \(result.text)")
        XCTAssertEqual(reply.usage, TokenUsage(promptTokens: 412 + 489, completionTokens: 28 + 14, estimated: false))
        XCTAssertEqual(try ledger.spent(neuron: "chat-test"), 412 + 489 + 28 + 14)

        let requests = model.requests
        XCTAssertEqual(requests.map(\.path), ["/v1/chat/completions", "/v1/chat/completions"])
        let first = requests[0].body
        XCTAssertEqual(first["model"], "test-model")
        XCTAssertEqual(first["stream"], true)
        XCTAssertEqual(first["tools"]?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue },
                       ["convert_units", "lookup_medical_term", "search_medical_terms"])
        XCTAssertEqual(first["messages"]?.arrayValue?.compactMap { $0["role"]?.stringValue }, ["system", "user"])
        // The result goes back tied to the call that asked for it.
        let sent = requests[1].body["messages"]?.arrayValue ?? []
        XCTAssertEqual(sent.compactMap { $0["role"]?.stringValue }, ["system", "user", "assistant", "tool"])
        XCTAssertEqual(sent[2]["tool_calls"]?.arrayValue?.first?["id"], "call_7Yk2pQ")
        let arguments = try XCTUnwrap(sent[2]["tool_calls"]?.arrayValue?.first?["function"]?["arguments"]?.stringValue, "OpenAI takes arguments as a string")
        XCTAssertEqual(try JSONValue(parsing: arguments), try JSONValue(parsing: #"{"value":5.5,"from":"mmol/L","to":"mg/dL"}"#))
        XCTAssertEqual(sent[3]["tool_call_id"], "call_7Yk2pQ")
        XCTAssertEqual(sent[3]["content"]?.stringValue, result.text)
    }

    func testOllamaToolCallingUsesItsOwnWireFormat() throws {
        let model = try FakeModelServer()
        model.enqueue(.recorded("ollama-tool-call.ndjson"), .recorded("ollama-answer.ndjson"))
        let (chat, dispatcher, _) = try session(neuronYAML(provider: "ollama", endpoint: model.url))
        defer { dispatcher.stop() }
        let reply = try chat.send("What is HRV?")

        XCTAssertEqual(reply.text, "Heart rate variability is the beat-to-beat variation of the heart rhythm.")
        XCTAssertEqual(reply.toolCalls.map(\.name), ["search_medical_terms"])
        XCTAssertFalse(reply.toolCalls[0].result.isError, reply.toolCalls[0].result.text)
        XCTAssertTrue(reply.toolCalls[0].result.text.lowercased().contains("heart rate variability"), reply.toolCalls[0].result.text)
        XCTAssertEqual(reply.usage, TokenUsage(promptTokens: 356 + 478, completionTokens: 25 + 19, estimated: false))
        let requests = model.requests
        XCTAssertEqual(requests.map(\.path), ["/api/chat", "/api/chat"])
        let sent = requests[1].body["messages"]?.arrayValue ?? []
        XCTAssertEqual(sent.compactMap { $0["role"]?.stringValue }, ["system", "user", "assistant", "tool"])
        XCTAssertEqual(sent[2]["tool_calls"]?.arrayValue?.first?["function"]?["arguments"],
                       try JSONValue(parsing: #"{"limit":1,"query":"heart rate variability"}"#), "Ollama takes arguments as an object")
        XCTAssertEqual(sent[3]["tool_name"], "search_medical_terms")
    }

    func testThePromptProtocolServesModelsWithoutNativeToolCalling() throws {
        let model = try FakeModelServer(path: "/v1")
        model.enqueue(.recorded("prompt-tool-call.sse"), .recorded("prompt-answer.sse"))
        let (chat, dispatcher, _) = try session(neuronYAML(tier: 1, endpoint: model.url, toolCalling: "prompt", tools: ["com.brane.units"]))
        defer { dispatcher.stop() }
        var shown = ""
        let reply = try chat.send("Convert 5.5 mmol/L to mg/dL") { if case .text(let text) = $0 { shown += text } }

        XCTAssertEqual(reply.text, "That is about 99 mg/dL.")
        XCTAssertEqual(shown, "That is about 99 mg/dL.", "the tool request is not shown to the user as text")
        XCTAssertEqual(reply.toolCalls.map(\.name), ["convert_units"])
        XCTAssertFalse(reply.toolCalls[0].result.isError, reply.toolCalls[0].result.text)
        XCTAssertTrue(reply.usage.estimated, "this server reports no usage, so tokens are estimated")
        let first = model.requests[0].body
        XCTAssertNil(first["tools"], "no native tools field")
        let system = first["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""
        XCTAssertTrue(system.hasPrefix("You help athletes"), system)
        XCTAssertTrue(system.contains(#"{"tool": "<tool name>", "arguments": {<arguments>}}"#) && system.contains("- convert_units:"), system)
        let second = model.requests[1].body["messages"]?.arrayValue ?? []
        XCTAssertEqual(second.compactMap { $0["role"]?.stringValue }, ["system", "user", "assistant", "user"])
        XCTAssertTrue(second[3]["content"]?.stringValue?.hasPrefix("Tool result for convert_units:\n") == true)
    }

    func testTheDailyTokenBudgetRefusesBeforeAskingTheModel() throws {
        let model = try FakeModelServer(path: "/v1")
        model.enqueue(.recorded("openai-answer.sse"))
        let (chat, dispatcher, ledger) = try session(neuronYAML(endpoint: model.url, budget: 1000))
        defer { dispatcher.stop() }
        try ledger.record(neuron: "chat-test", endpoint: model.url, usage: TokenUsage(promptTokens: 990, completionTokens: 9, estimated: false))
        XCTAssertEqual(try chat.send("hello").text, "5.5 mmol/L of glucose is about 99 mg/dL.", "one token left: the request is sent")

        XCTAssertThrowsError(try chat.send("and again?")) { error in
            let error = error as! ModelError
            XCTAssertEqual(error.reason, .budgetExceeded)
            XCTAssertTrue(error.description.contains("neuron chat-test has spent its daily token budget (1000 tokens, limits.dailyTokenBudget)"), error.description)
        }
        XCTAssertEqual(model.requests.count, 1, "past the budget the model is not asked")
        XCTAssertEqual(chat.history.count, 2, "the refused message is not kept: the conversation is as before it")
    }

    func testMaxTurnsBoundsTheToolLoop() throws {
        let model = try FakeModelServer(path: "/v1")
        model.enqueue(.recorded("openai-tool-call.sse"), .recorded("openai-tool-call.sse"), .recorded("openai-answer.sse"))
        let (chat, dispatcher, _) = try session(neuronYAML(endpoint: model.url, maxTurns: 2))
        defer { dispatcher.stop() }
        XCTAssertThrowsError(try chat.send("loop")) { error in
            XCTAssertEqual((error as! ModelError).reason, .tooManyTurns)
            XCTAssertTrue("\(error)".contains("after 2 turns (limits.maxTurns of neuron chat-test)"), "\(error)")
        }
        XCTAssertEqual(model.requests.count, 2)
        XCTAssertEqual(chat.history, [], "nothing half-done is left in the conversation")
    }

    func testAFailingEndpointFailsOverAndTheBreakerSkipsItAfterThreeFailures() throws {
        let primary = try FakeModelServer(path: "/v1"), fallback = try FakeModelServer(path: "/v1")
        for _ in 0..<3 { primary.enqueue(.recorded("openai-error-503.json", status: 503)) }
        for _ in 0..<4 { fallback.enqueue(.recorded("openai-answer.sse")) }
        let (chat, dispatcher, _) = try session(neuronYAML(endpoint: primary.url, fallback: fallback.url))
        defer { dispatcher.stop() }
        var notices: [String] = []
        for attempt in 1...3 {
            let reply = try chat.send("question \(attempt)") { if case .notice(let text) = $0 { notices.append(text) } }
            XCTAssertEqual(reply.endpoint.url, fallback.url)
            XCTAssertEqual(primary.requests.count, attempt, "each request tries the primary first")
        }
        XCTAssertEqual(notices.count, 3)
        XCTAssertTrue(notices[0].contains("HTTP 503: The server is overloaded or not ready yet.") && notices[0].contains("trying the fallback \(fallback.url)"), notices[0])
        let reply = try chat.send("question 4") { if case .notice(let text) = $0 { notices.append(text) } }
        XCTAssertEqual(reply.endpoint.url, fallback.url)
        XCTAssertEqual(primary.requests.count, 3, "after three failures in a row the breaker skips the primary")
        XCTAssertEqual(fallback.requests.count, 4)
    }

    func testTheAPIKeyComesFromTheEnvironmentAndGoesOnlyToThePrimary() throws {
        let primary = try FakeModelServer(path: "/v1"), fallback = try FakeModelServer(path: "/v1")
        primary.enqueue(.recorded("openai-answer.sse"), .recorded("openai-error-503.json", status: 503))
        fallback.enqueue(.recorded("openai-answer.sse"), .recorded("openai-answer.sse"))
        let yaml = neuronYAML(endpoint: primary.url, fallback: fallback.url, apiKeyEnv: "TEST_MODEL_KEY")
        let (chat, dispatcher, _) = try session(yaml, environment: ["TEST_MODEL_KEY": "sk-test-123"])
        defer { dispatcher.stop() }
        _ = try chat.send("one")
        _ = try chat.send("two")   // the primary answers 503: the fallback gets the request, without the key
        XCTAssertEqual(primary.requests.map { $0.headers["authorization"] }, ["Bearer sk-test-123", "Bearer sk-test-123"])
        XCTAssertEqual(fallback.requests.map { $0.headers["authorization"] }, [nil])

        // The variable unset: the primary is not asked without its key; the fallback answers, with a notice.
        let (unkeyed, unkeyedDispatcher, _) = try session(yaml, environment: [:])
        defer { unkeyedDispatcher.stop() }
        var notices: [String] = []
        XCTAssertEqual(try unkeyed.send("three") { if case .notice(let text) = $0 { notices.append(text) } }.endpoint.url, fallback.url)
        XCTAssertEqual(primary.requests.count, 2)
        XCTAssertTrue(notices.first?.contains("model.apiKeyEnv names TEST_MODEL_KEY, which is not set in the environment") == true, "\(notices)")
    }

    func testAClientErrorIsReportedNotFailedOver() throws {
        let primary = try FakeModelServer(), fallback = try FakeModelServer()
        primary.enqueue(.recorded("ollama-error-404.json", status: 404))
        let (chat, dispatcher, _) = try session(neuronYAML(provider: "ollama", endpoint: primary.url, fallback: fallback.url))
        defer { dispatcher.stop() }
        XCTAssertThrowsError(try chat.send("hi")) { error in
            XCTAssertEqual((error as! ModelError).reason, .rejected)
            XCTAssertEqual("\(error)", #"HTTP 404: model "llama3.1:8b" not found, try pulling it first"#)
        }
        XCTAssertEqual(fallback.requests.count, 0, "a fallback cannot fix a bad request")
    }

    func testAStreamThatBreaksTheWireFormatIsStoppedAndReported() throws {
        let model = try FakeModelServer(path: "/v1")
        let garbage = "data: {\"choices\": [{\"delta\": {\"content\": \"Hel\"}}]}\n\ndata: <html>502 Bad Gateway</html>\n\n"
        model.enqueue(FakeModelServer.Response(status: 200, contentType: "text/event-stream", body: garbage + String(repeating: "data: [DONE]\n\n", count: 50)))
        let (chat, dispatcher, _) = try session(neuronYAML(endpoint: model.url))
        defer { dispatcher.stop() }
        XCTAssertThrowsError(try chat.send("hi")) { error in
            XCTAssertEqual((error as! ModelError).reason, .malformed)
            XCTAssertEqual("\(error)", "the model's stream sent an event that is not JSON: <html>502 Bad Gateway</html>")
        }
        XCTAssertEqual(chat.history, [])
    }

    func testAnEndlessAnswerIsCutOff() throws {
        let model = try FakeModelServer(path: "/v1")
        model.enqueue(FakeModelServer.Response(status: 200, contentType: "text/event-stream", body: "data: " + String(repeating: "x", count: 3 << 20)))
        let (chat, dispatcher, _) = try session(neuronYAML(endpoint: model.url), maximumAnswerBytes: 2 << 20)
        defer { dispatcher.stop() }
        XCTAssertThrowsError(try chat.send("hi")) { error in
            XCTAssertEqual((error as! ModelError).reason, .malformed)
            XCTAssertEqual("\(error)", "the answer passed 2 MiB; stopped")
        }
    }

    /// The conversation carries the tier of its most sensitive data: after a tier-0 tool result
    /// it may not fail over to a remote endpoint, though before that result it may. (Validation
    /// forbids this neuron; the fallback is added afterwards to prove the run-time check.)
    func testTierZeroDataNeverReachesARemoteEndpointAtRunTime() throws {
        guard let address = nonLoopbackAddress() else { throw XCTSkip("this machine has no non-loopback IPv4 address") }
        let local = try FakeModelServer(path: "/v1")
        let remote = try FakeModelServer(address: "0.0.0.0", urlHost: address, path: "/v1")
        let yaml = neuronYAML(tier: 2, endpoint: local.url, tools: ["com.brane.units"])
        let (chat, dispatcher, _) = try session(yaml) { neuron in
            neuron.config.model.fallbackEndpoint = ModelEndpoint(remote.url)!
        }
        defer { dispatcher.stop() }
        XCTAssertFalse(ModelEndpoint(remote.url)!.isLocal)

        // Tier-2 conversation: the local endpoint fails, the remote one may answer.
        local.enqueue(.recorded("openai-error-503.json", status: 503))
        remote.enqueue(.recorded("openai-answer.sse"))
        XCTAssertEqual(try chat.send("hello").endpoint.url, remote.url)

        // A tier-0 tool result joins the conversation; then the local endpoint fails.
        local.enqueue(.recorded("openai-tool-call.sse"), .recorded("openai-error-503.json", status: 503))
        XCTAssertThrowsError(try chat.send("convert 5.5 mmol/L")) { error in
            XCTAssertEqual((error as! ModelError).reason, .privacyRefused)
            XCTAssertTrue("\(error)".contains("refused: the conversation of neuron chat-test (tier 0) may not reach model fallback endpoint \(remote.url) (tier 2): \(DataFlow.rule)"), "\(error)")
        }
        XCTAssertEqual(remote.requests.count, 1, "the remote endpoint never saw the tier-0 conversation")
    }

    func testChatCommandAnswersOnceAsJSONAndRefusesPastTheBudget() throws {
        let model = try FakeModelServer(path: "/v1")
        model.enqueue(.recorded("openai-tool-call.sse"), .recorded("openai-answer.sse"), .recorded("openai-answer.sse"))
        let file = directory.appendingPathComponent("chat-test.yaml")
        try neuronYAML(endpoint: model.url, budget: 1000).write(to: file, atomically: true, encoding: .utf8)
        let home = BraneHome(root: directory.appendingPathComponent("home").path)
        let arguments = ["neuron", "chat", file.path, "--plugins", BundledPlugins.directory, "--message", "5.5 mmol/L in mg/dL?", "--json"]

        let answered = try CLI.run(arguments, home: home)
        XCTAssertEqual(answered.status, 0, answered.stderr)
        let json = try JSONValue(parsing: answered.stdout)
        XCTAssertEqual(json["answer"], "5.5 mmol/L of glucose is about 99 mg/dL.")
        XCTAssertEqual(json["toolCalls"]?.arrayValue?.first?["name"], "convert_units")
        XCTAssertEqual(json["usage"]?["promptTokens"], 901)
        XCTAssertEqual(json["dataTier"], 0)

        // 943 of 1000 tokens spent: the next message is still sent (the check comes before asking)…
        let second = try CLI.run(arguments, home: home)
        XCTAssertEqual(second.status, 0, second.stderr)
        // …and takes the neuron past its budget, so the third is refused without asking the model.
        let spent = try CLI.run(arguments, home: home)
        XCTAssertEqual(spent.status, 5, spent.stdout + spent.stderr)
        XCTAssertEqual(model.requests.count, 3)
        XCTAssertTrue(spent.stderr.contains("has spent its daily token budget"), spent.stderr)
    }
}

/// An IPv4 address of this machine that is not loopback, if it has one.
private func nonLoopbackAddress() -> String? {
    var list: UnsafeMutablePointer<ifaddrs>?
    guard getifaddrs(&list) == 0 else { return nil }
    defer { freeifaddrs(list) }
    var entry = list
    while let current = entry {
        defer { entry = current.pointee.ifa_next }
        guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard getnameinfo(address, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 else { continue }
        let text = String(decoding: host.prefix { $0 != 0 }.map(UInt8.init), as: UTF8.self)
        if !text.hasPrefix("127.") { return text }
    }
    return nil
}
