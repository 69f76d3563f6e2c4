import Foundation

/// What happens during one answer, for a user interface to show as it happens.
public enum ChatEvent: Sendable {
    /// A piece of the answer's text.
    case text(String)
    case toolCall(name: String, arguments: String)
    case toolResult(name: String, ToolResult, milliseconds: Double)
    /// A failover or another thing worth a line on standard error.
    case notice(String)
}

/// The outcome of one user message.
public struct ChatReply: Sendable {
    public var text: String
    /// Model requests it took (each tool round trip is one more).
    public var turns: Int
    public var toolCalls: [(name: String, arguments: String, result: ToolResult)]
    public var usage: TokenUsage
    public var endpoint: ModelEndpoint
}

/// A conversation with a neuron: the model answers, asking for tools as it needs them; the host
/// runs each tool sandboxed through the `ToolDispatcher` and sends the result back, until the
/// model answers in text or `limits.maxTurns` is reached.
///
/// The conversation carries the tier of the most sensitive data in it: it starts at the
/// neuron's tier (what a user tells a tier-0 neuron is tier-0 data) and drops to the tier of
/// any tool result added. Every model request and tool call is checked against it.
public final class ChatSession {
    public let neuron: ResolvedNeuron
    private let broker: ModelBroker
    private let dispatcher: ToolDispatcher
    /// The conversation so far, without the system prompt.
    public private(set) var history: [ChatMessage] = []
    public private(set) var dataTier: PrivacyTier

    public init(neuron: ResolvedNeuron, broker: ModelBroker, dispatcher: ToolDispatcher) {
        self.neuron = neuron
        self.broker = broker
        self.dispatcher = dispatcher
        dataTier = neuron.config.privacyTier
    }

    /// Forgets the conversation (the data tier too).
    public func reset() {
        history = []
        dataTier = neuron.config.privacyTier
    }

    /// Answers `message`. On failure the conversation is left as it was before the message.
    public func send(_ message: String, onEvent: (ChatEvent) -> Void = { _ in }) throws -> ChatReply {
        let saved = (history, dataTier)
        do {
            return try answer(message, onEvent: onEvent)
        } catch {
            (history, dataTier) = saved
            throw error
        }
    }

    private func answer(_ message: String, onEvent: (ChatEvent) -> Void) throws -> ChatReply {
        history.append(ChatMessage(role: .user, content: message))
        let turnStart = history.count - 1
        var usage = TokenUsage.zero
        var calls: [(name: String, arguments: String, result: ToolResult)] = []
        let maxTurns = neuron.config.limits.maxTurns
        for turn in 1...maxTurns {
            let answer = try withoutActuallyEscaping(onEvent) { onEvent in
                try broker.complete(context(turnStart: turnStart), tools: dispatcher.tools, dataTier: dataTier,
                                    onText: { onEvent(.text($0)) }, onNotice: { onEvent(.notice($0)) })
            }
            usage = usage + answer.usage
            history.append(ChatMessage(role: .assistant, content: answer.text, toolCalls: answer.toolCalls))
            if answer.toolCalls.isEmpty {
                return ChatReply(text: answer.text, turns: turn, toolCalls: calls, usage: usage, endpoint: answer.endpoint)
            }
            for call in answer.toolCalls {
                let (arguments, result) = run(call, onEvent: onEvent)
                calls.append((call.name, arguments, result))
                dataTier = min(dataTier, result.tier)
                history.append(ChatMessage(role: .tool, content: result.isError ? "error: \(result.text)" : result.text,
                                           toolCallID: call.id, toolName: call.name))
            }
        }
        throw ModelError(.tooManyTurns, """
            the model was still asking for tools after \(maxTurns) turns (limits.maxTurns of neuron \(neuron.config.id)); \
            stopped without an answer. Tools called: \(calls.map(\.name).joined(separator: ", "))
            """)
    }

    private func run(_ call: ToolCall, onEvent: (ChatEvent) -> Void) -> (String, ToolResult) {
        let started = DispatchTime.now().uptimeNanoseconds
        let arguments: String, result: ToolResult
        switch call.arguments {
        case .json(let value):
            arguments = value.serialized()
            onEvent(.toolCall(name: call.name, arguments: arguments))
            result = dispatcher.call(call.name, arguments: value, dataTier: dataTier)
        case .unparsable(let text):
            arguments = text
            onEvent(.toolCall(name: call.name, arguments: text))
            result = ToolResult(isError: true, text: "the arguments for \(call.name) are not valid JSON: \(text.prefix(200))",
                                structured: nil, tier: dataTier)
        }
        onEvent(.toolResult(name: call.name, result, milliseconds: Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6))
        return (arguments, result)
    }

    /// The system prompt and the newest `memory.keepMessages` messages. The window starts at a
    /// user message, so a tool result is never sent without the call it answers; the current
    /// message's own exchange is always kept whole.
    func context(turnStart: Int) -> [ChatMessage] {
        var start = min(max(0, history.count - neuron.config.memory.keepMessages), turnStart)
        while start < turnStart && history[start].role != .user { start += 1 }
        let system = neuron.config.instructions.isEmpty ? [] : [ChatMessage(role: .system, content: neuron.config.instructions)]
        return system + history[start...]
    }
}
