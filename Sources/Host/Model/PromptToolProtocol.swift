import Foundation

/// Tool calling for models without native support: the tools are described in the system
/// prompt, the model asks for one by answering with a single JSON object
/// `{"tool": "<name>", "arguments": {…}}`, and the result comes back as a user message.
enum PromptToolProtocol {
    static func instructions(for tools: [ExposedTool]) -> String {
        let list = tools.map { "- \($0.name): \($0.description)\n  arguments (JSON Schema): \($0.inputSchema.serialized())" }
        return """
            You can use tools. To use one, answer with only this JSON object and nothing else:
            {"tool": "<tool name>", "arguments": {<arguments>}}
            The result comes back in a message starting with "Tool result". Use one tool at a time. \
            When you can answer, answer in plain text.
            Tools:
            \(list.joined(separator: "\n"))
            """
    }

    /// The tool call an answer asks for, or nil when it is a plain answer.
    static func toolCall(in answer: String, number: Int) -> ToolCall? {
        var text = answer.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("```") {   // models like to fence JSON: ```json … ```
            text = String(text.drop { $0 != "\n" }.dropFirst())
            if text.hasSuffix("```") { text = String(text.dropLast(3)) }
        }
        guard text.first == "{", let json = try? JSONValue(parsing: text), let name = json["tool"]?.stringValue else { return nil }
        return ToolCall(id: "prompt_call_\(number)", name: name, arguments: .json(json["arguments"] ?? .object([:])))
    }

    /// Whether streamed text so far might still turn out to be a tool call (so it is held back, not shown).
    static func mayBeToolCall(_ text: String) -> Bool {
        guard let first = text.first(where: { !$0.isWhitespace }) else { return true }
        return first == "{" || first == "`"
    }

    /// The conversation as plain messages: a tool call is the JSON the model wrote, a result a user message.
    static func plain(_ messages: [ChatMessage]) -> [ChatMessage] {
        messages.map { message in
            switch message.role {
            case .assistant where !message.toolCalls.isEmpty:
                let call = message.toolCalls[0]
                let arguments: JSONValue = switch call.arguments {
                case .json(let value): value
                case .unparsable(let text): .string(text)
                }
                return ChatMessage(role: .assistant, content: JSONValue.object(["tool": .string(call.name), "arguments": arguments]).serialized())
            case .tool:
                return ChatMessage(role: .user, content: "Tool result for \(message.toolName ?? "the tool"):\n\(message.content)")
            default:
                return message
            }
        }
    }
}
