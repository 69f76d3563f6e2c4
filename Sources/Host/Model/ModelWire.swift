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

extension LineSplitter {
    /// A model's stream: JSON lines or server-sent events, no line longer than 8 MiB.
    static func forModelStream() -> LineSplitter { LineSplitter(limit: 8 << 20) }

    /// The lines `bytes` completes, as text; a line past the limit is the model's error.
    mutating func lines(_ bytes: [UInt8]) throws -> [String] {
        try feed(bytes).map(Self.text)
    }

    /// What followed the last newline, as text ("" when nothing did).
    mutating func restText() throws -> String {
        try rest().map(Self.text) ?? ""
    }

    private static func text(_ line: Line) throws -> String {
        guard let text = line.text else { throw ModelError(.malformed, "the model's stream sent a line longer than 8 MiB") }
        return text
    }
}

extension ModelWire {
    /// OpenAI sends `{"error": {"message": …}}`, Ollama `{"error": "…"}`; anything else is shown as sent.
    func errorMessage(_ body: [UInt8]) -> String {
        let json = try? JSONValue(parsing: body)
        return json?["error"]?["message"]?.stringValue ?? json?["error"]?.stringValue ?? String(decoding: body.prefix(500), as: UTF8.self)
    }
}
