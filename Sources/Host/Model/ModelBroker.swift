import Foundation

/// The answer to one model request.
public struct ModelAnswer: Sendable {
    public var text: String
    public var toolCalls: [ToolCall]
    public var usage: TokenUsage
    /// The endpoint that answered (the fallback after a failover).
    public var endpoint: ModelEndpoint
}

/// Sends a neuron's conversation to its model: over libcurl, in the provider's wire format,
/// streaming the answer. Before every request it checks the daily token budget and that the
/// conversation's data may reach the endpoint (`DataFlow`); after it, it records the tokens
/// spent. An endpoint that fails (unreachable, timeout, 5xx, 429) is replaced by the fallback
/// for that request, and one that keeps failing is skipped for a while (`CircuitBreaker`).
public final class ModelBroker: @unchecked Sendable {
    public let neuronID: String
    public let settings: ModelSettings
    public let dailyTokenBudget: Int?
    /// A longer answer is cut off: no model answer is this large, an endless stream is an attack.
    public var maximumAnswerBytes = 32 << 20
    private let ledger: TokenLedger
    private let environment: [String: String]
    private let breakers: [String: CircuitBreaker]
    private let wire: any ModelWire

    public init(neuron: NeuronConfig, ledger: TokenLedger, environment: [String: String] = ProcessInfo.processInfo.environment) {
        neuronID = neuron.id
        settings = neuron.model
        dailyTokenBudget = neuron.limits.dailyTokenBudget
        self.ledger = ledger
        self.environment = environment
        wire = neuron.model.provider.wire
        breakers = Dictionary(([neuron.model.endpoint] + [neuron.model.fallbackEndpoint].compactMap { $0 }).map { ($0.url, CircuitBreaker()) },
                              uniquingKeysWith: { first, _ in first })
    }

    /// Tokens left today under the budget (nil: no budget).
    public func tokensLeft(now: Date = Date()) throws -> Int? {
        guard let dailyTokenBudget else { return nil }
        return dailyTokenBudget - (try ledger.spent(neuron: neuronID, on: now))
    }

    /// Asks the model for the next message. `dataTier` is the most sensitive tier of the data in
    /// `messages`; `onText` gets the answer's text as it streams; `onNotice` hears of failovers.
    public func complete(_ messages: [ChatMessage], tools: [ExposedTool], dataTier: PrivacyTier,
                         onText: @escaping (String) -> Void = { _ in }, onNotice: (String) -> Void = { _ in }) throws -> ModelAnswer {
        if let left = try tokensLeft(), left <= 0 {
            throw ModelError(.budgetExceeded, """
                neuron \(neuronID) has spent its daily token budget (\(dailyTokenBudget!) tokens, limits.dailyTokenBudget) for \
                \(TokenLedger.day(Date())) UTC; it resets at 00:00 UTC. Raise the budget in the neuron file to continue today.
                """)
        }
        let endpoints = [settings.endpoint] + [settings.fallbackEndpoint].compactMap { $0 }
        var failures: [String] = []
        var lastReason = ModelError.Reason.unavailable
        for (index, endpoint) in endpoints.enumerated() {
            let role = index == 0 ? "endpoint" : "fallback endpoint"
            if let refusal = DataFlow.enforce("the conversation", from: .init(id: "neuron \(neuronID)", tier: dataTier),
                                              to: .init(id: "model \(role) \(endpoint)", tier: endpoint.tier), neuron: neuronID) {
                failures.append("refused: \(refusal)")
                lastReason = .privacyRefused
                continue
            }
            let breaker = breakers[endpoint.url]!
            if let skip = breaker.skipReason() {
                failures.append("\(endpoint) skipped: \(skip)")
                continue
            }
            var streamed = false
            do {
                let answer = try request(endpoint, isPrimary: index == 0, messages: messages, tools: tools) { text in
                    streamed = true
                    onText(text)
                }
                breaker.succeeded()
                try ledger.record(neuron: neuronID, endpoint: endpoint.url, usage: answer.usage)
                return answer
            } catch let error as ModelError where error.reason == .unavailable || error.reason == .configuration {
                if error.reason == .unavailable { breaker.failed() }
                failures.append("\(endpoint): \(error)")
                lastReason = error.reason
                // Text already shown cannot be taken back, so a half-streamed answer is not retried elsewhere.
                if streamed { break }
                if index + 1 < endpoints.count { onNotice("model endpoint \(endpoint) failed (\(error)); trying the fallback \(endpoints[index + 1])") }
            }
        }
        throw ModelError(lastReason, "model \(settings.model) could not answer: " + failures.joined(separator: "; "))
    }

    private func request(_ endpoint: ModelEndpoint, isPrimary: Bool, messages: [ChatMessage], tools: [ExposedTool],
                         onText: @escaping (String) -> Void) throws -> ModelAnswer {
        var headers: [String] = []
        if isPrimary, let variable = settings.apiKeyEnv {
            guard let key = environment[variable], !key.isEmpty else {
                throw ModelError(.configuration, "model.apiKeyEnv names \(variable), which is not set in the environment")
            }
            headers.append("Authorization: Bearer \(key)")
        }
        let promptMode = settings.toolCalling == .prompt && !tools.isEmpty
        var sent = messages
        if promptMode {
            sent = PromptToolProtocol.plain(messages)
            let protocolText = PromptToolProtocol.instructions(for: tools)
            if sent.first?.role == .system { sent[0].content += "\n\n" + protocolText } else { sent.insert(ChatMessage(role: .system, content: protocolText), at: 0) }
        }
        let body = Array(wire.requestBody(model: settings.model, messages: sent, tools: promptMode ? [] : tools).serialized().utf8)
        let base = endpoint.unixSocketPath == nil ? endpoint.url.trimmingSuffix("/") : (settings.provider == .ollama ? "http://localhost" : "http://localhost/v1")
        let http = HTTPStream(url: base + wire.chatPath, unixSocketPath: endpoint.unixSocketPath, headers: headers,
                              timeoutMilliseconds: settings.timeoutMilliseconds, maximumBytes: maximumAnswerBytes)

        // In prompt mode the answer may be a tool call, which is not for the user: hold text back until it cannot be one.
        var held = "", holding = promptMode
        let show: (String) -> Void = { text in
            guard holding else { return onText(text) }
            held += text
            if !PromptToolProtocol.mayBeToolCall(held) {
                holding = false
                onText(held)
            }
        }
        var decoder = wire.makeDecoder()
        var decodeError: Error?
        do {
            try http.post(body) { chunk in
                do { try decoder.feed(chunk, onText: show) } catch { decodeError = error }
                return decodeError == nil
            }
        } catch let failure as HTTPStream.StatusFailure {
            let message = "HTTP \(failure.status): \(wire.errorMessage(failure.body))"
            throw ModelError(failure.status >= 500 || failure.status == 429 ? .unavailable : .rejected, message)
        } catch {
            throw decodeError ?? error   // the decoder stopped the transfer: its reason, not libcurl's
        }
        var decoded = try decoder.finish()
        if promptMode {
            if let call = PromptToolProtocol.toolCall(in: decoded.text, number: messages.count) {
                decoded.toolCalls = [call]
                decoded.text = ""
            } else if holding {
                onText(held)
            }
        }
        let usage = decoded.usage ?? TokenUsage(promptTokens: body.count / 4, completionTokens: max(1, decoded.text.utf8.count / 4), estimated: true)
        return ModelAnswer(text: decoded.text, toolCalls: decoded.toolCalls, usage: usage, endpoint: endpoint)
    }
}

private extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
