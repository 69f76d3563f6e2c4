/// How one provider's HTTP API spells a chat request and streams its answer.
protocol ModelWire: Sendable {
    /// The path below the endpoint's URL that takes chat requests.
    var chatPath: String { get }
    func requestBody(model: String, messages: [ChatMessage], tools: [ExposedTool]) -> JSONValue
    func makeDecoder() -> any AnswerDecoder
    /// The message in an error response's body.
    func errorMessage(_ body: [UInt8]) -> String
}

/// Reads a streamed answer as its bytes arrive.
protocol AnswerDecoder {
    /// Takes the next bytes of the body; text the model generated is passed to `onText` at once.
    mutating func feed(_ bytes: [UInt8], onText: (String) -> Void) throws
    /// The whole answer, once the body has ended.
    mutating func finish() throws -> DecodedAnswer
}

struct DecodedAnswer {
    var text = ""
    var toolCalls: [ToolCall] = []
    /// Nil when the provider did not report it.
    var usage: TokenUsage?
}

extension ModelSettings.Provider {
    var wire: any ModelWire {
        switch self {
        case .openAICompatible: OpenAIWire()
        case .ollama: OllamaWire()
        }
    }
}

extension ExposedTool {
    /// The `tools` entry both APIs accept (Ollama adopted OpenAI's function shape).
    var functionDeclaration: JSONValue {
        .object(["type": "function",
                 "function": .object(["name": .string(name), "description": .string(description), "parameters": inputSchema])])
    }
}

/// Splits a byte stream into lines (server-sent events and JSON lines are both line-based).
struct LineSplitter {
    private var pending: [UInt8] = []

    /// The lines `bytes` completes. Only the new bytes are searched, so a long line arriving in
    /// many pieces costs linear time.
    mutating func lines(_ bytes: [UInt8]) -> [String] {
        var searchFrom = pending.count, lineStart = 0
        pending += bytes
        var lines: [String] = []
        while let newline = pending[searchFrom...].firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[lineStart..<newline]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            lines.append(String(decoding: line, as: UTF8.self))
            lineStart = newline + 1
            searchFrom = lineStart
        }
        pending.removeFirst(lineStart)
        return lines
    }

    /// What followed the last newline.
    mutating func rest() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }
}

extension ModelWire {
    /// OpenAI sends `{"error": {"message": …}}`, Ollama `{"error": "…"}`; anything else is shown as sent.
    func errorMessage(_ body: [UInt8]) -> String {
        let json = try? JSONValue(parsing: body)
        return json?["error"]?["message"]?.stringValue ?? json?["error"]?.stringValue ?? String(decoding: body.prefix(500), as: UTF8.self)
    }
}
