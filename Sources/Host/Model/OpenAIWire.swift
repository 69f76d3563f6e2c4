/// The OpenAI chat-completions API (`POST …/chat/completions`), which vLLM, llama.cpp's server,
/// LM Studio and most hosted providers also speak. Answers stream as server-sent events.
struct OpenAIWire: ModelWire {
    var chatPath: String { "/chat/completions" }

    func requestBody(model: String, messages: [ChatMessage], tools: [ExposedTool]) -> JSONValue {
        var body: [String: JSONValue] = [
            "model": .string(model),
            "messages": .array(messages.map(Self.encode)),
            "stream": true,
            "stream_options": ["include_usage": true],
        ]
        if !tools.isEmpty { body["tools"] = .array(tools.map(\.functionDeclaration)) }
        return .object(body)
    }

    static func encode(_ message: ChatMessage) -> JSONValue {
        var object: [String: JSONValue] = ["role": .string(message.role.rawValue), "content": .string(message.content)]
        if !message.toolCalls.isEmpty {
            if message.content.isEmpty { object["content"] = .null }
            object["tool_calls"] = .array(message.toolCalls.map { call in
                let arguments = switch call.arguments {
                case .json(let value): value.serialized()
                case .unparsable(let text): text
                }
                return ["id": .string(call.id), "type": "function",
                        "function": ["name": .string(call.name), "arguments": .string(arguments)]]
            })
        }
        if let id = message.toolCallID { object["tool_call_id"] = .string(id) }
        return .object(object)
    }

    func makeDecoder() -> any AnswerDecoder { Decoder() }

    struct Decoder: AnswerDecoder {
        private var lines = LineSplitter.forModelStream()
        private var answer = DecodedAnswer()
        /// Tool calls arrive in fragments keyed by index: id and name first, then pieces of the arguments.
        private var calls: [Int: (id: String, name: String, arguments: String)] = [:]
        private var sawEvent = false
        private var unframed: [UInt8] = []
        private var done = false

        mutating func feed(_ bytes: [UInt8], onText: (String) -> Void) throws {
            if !sawEvent { unframed += bytes }
            for line in try lines.lines(bytes) { try event(line, onText: onText) }
        }

        private mutating func event(_ line: String, onText: (String) -> Void) throws {
            guard line.hasPrefix("data:"), !done else { return }   // comments, event names, keep-alives
            sawEvent = true
            unframed = []
            let data = line.dropFirst(5).drop { $0 == " " }
            if data == "[DONE]" { done = true; return }
            guard let chunk = try? JSONValue(parsing: Array(data.utf8)) else {
                throw ModelError(.malformed, "the model's stream sent an event that is not JSON: \(data.prefix(200))")
            }
            if let message = chunk["error"]?["message"]?.stringValue ?? chunk["error"]?.stringValue {
                throw ModelError(.unavailable, "the model stopped with an error: \(message)")
            }
            if let usage = chunk["usage"], let prompt = usage["prompt_tokens"]?.numberValue {
                answer.usage = TokenUsage(promptTokens: Int(prompt), completionTokens: Int(usage["completion_tokens"]?.numberValue ?? 0), estimated: false)
            }
            guard let delta = chunk["choices"]?.arrayValue?.first?["delta"] else { return }
            if let text = delta["content"]?.stringValue, !text.isEmpty {
                answer.text += text
                onText(text)
            }
            for fragment in delta["tool_calls"]?.arrayValue ?? [] {
                let index = Int(fragment["index"]?.numberValue ?? Double(calls.count))
                var call = calls[index] ?? (id: "", name: "", arguments: "")
                if let id = fragment["id"]?.stringValue { call.id = id }
                if let name = fragment["function"]?["name"]?.stringValue { call.name += name }
                if let piece = fragment["function"]?["arguments"]?.stringValue { call.arguments += piece }
                calls[index] = call
            }
        }

        mutating func finish() throws -> DecodedAnswer {
            let rest = try lines.restText()
            if !rest.isEmpty { try event(rest, onText: { _ in }) }
            if !sawEvent { try decodeWhole() }
            answer.toolCalls += calls.sorted { $0.key < $1.key }.map { index, call in
                let arguments = call.arguments.isEmpty ? "{}" : call.arguments
                let parsed = try? JSONValue(parsing: Array(arguments.utf8))
                return ToolCall(id: call.id.isEmpty ? "call_\(index)" : call.id, name: call.name,
                                arguments: parsed.map { .json($0) } ?? .unparsable(arguments))
            }
            return answer
        }

        /// A server that ignored `stream: true` sends one chat.completion object.
        private mutating func decodeWhole() throws {
            guard let whole = try? JSONValue(parsing: unframed), let message = whole["choices"]?.arrayValue?.first?["message"] else {
                throw ModelError(.malformed, "the model's answer is neither an event stream nor a chat completion: \(String(decoding: unframed.prefix(200), as: UTF8.self))")
            }
            answer.text = message["content"]?.stringValue ?? ""
            for (index, call) in (message["tool_calls"]?.arrayValue ?? []).enumerated() {
                calls[index] = (call["id"]?.stringValue ?? "", call["function"]?["name"]?.stringValue ?? "",
                                call["function"]?["arguments"]?.stringValue ?? "{}")
            }
            if let usage = whole["usage"], let prompt = usage["prompt_tokens"]?.numberValue {
                answer.usage = TokenUsage(promptTokens: Int(prompt), completionTokens: Int(usage["completion_tokens"]?.numberValue ?? 0), estimated: false)
            }
        }
    }
}
