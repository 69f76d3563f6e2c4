/// Ollama's native chat API (`POST /api/chat`). Answers stream as JSON lines; tool calls come
/// whole, with their arguments as an object, and the last line reports the token counts.
struct OllamaWire: ModelWire {
    var chatPath: String { "/api/chat" }

    func requestBody(model: String, messages: [ChatMessage], tools: [ExposedTool]) -> JSONValue {
        var body: [String: JSONValue] = ["model": .string(model), "messages": .array(messages.map(Self.encode)), "stream": true]
        if !tools.isEmpty { body["tools"] = .array(tools.map(\.functionDeclaration)) }
        return .object(body)
    }

    static func encode(_ message: ChatMessage) -> JSONValue {
        var object: [String: JSONValue] = ["role": .string(message.role.rawValue), "content": .string(message.content)]
        if !message.toolCalls.isEmpty {
            object["tool_calls"] = .array(message.toolCalls.map { call in
                let arguments: JSONValue = switch call.arguments {
                case .json(let value): value
                case .unparsable(let text): .string(text)
                }
                return ["function": ["name": .string(call.name), "arguments": arguments]]
            })
        }
        if let name = message.toolName { object["tool_name"] = .string(name) }
        return .object(object)
    }

    func makeDecoder() -> any AnswerDecoder { Decoder() }

    struct Decoder: AnswerDecoder {
        private var lines = LineSplitter.forModelStream()
        private var answer = DecodedAnswer()

        mutating func feed(_ bytes: [UInt8], onText: (String) -> Void) throws {
            for line in try lines.lines(bytes) { try object(line, onText: onText) }
        }

        private mutating func object(_ line: String, onText: (String) -> Void) throws {
            guard !line.allSatisfy(\.isWhitespace) else { return }
            guard let chunk = try? JSONValue(parsing: Array(line.utf8)) else {
                throw ModelError(.malformed, "the model's stream sent a line that is not JSON: \(line.prefix(200))")
            }
            if let message = chunk["error"]?.stringValue { throw ModelError(.unavailable, "the model stopped with an error: \(message)") }
            if let text = chunk["message"]?["content"]?.stringValue, !text.isEmpty {
                answer.text += text
                onText(text)
            }
            for call in chunk["message"]?["tool_calls"]?.arrayValue ?? [] {
                let arguments: ToolCall.Arguments = switch call["function"]?["arguments"] {
                case .string(let text)?: (try? JSONValue(parsing: Array(text.utf8))).map { .json($0) } ?? .unparsable(text)
                case let value?: .json(value)
                case nil: .json(.object([:]))
                }
                answer.toolCalls.append(ToolCall(id: "call_\(answer.toolCalls.count)", name: call["function"]?["name"]?.stringValue ?? "",
                                                 arguments: arguments))
            }
            if chunk["done"] == .bool(true), let prompt = chunk["prompt_eval_count"]?.numberValue {
                answer.usage = TokenUsage(promptTokens: Int(prompt), completionTokens: Int(chunk["eval_count"]?.numberValue ?? 0), estimated: false)
            }
        }

        mutating func finish() throws -> DecodedAnswer {
            let rest = try lines.restText()
            if !rest.isEmpty { try object(rest, onText: { _ in }) }
            return answer
        }
    }
}
