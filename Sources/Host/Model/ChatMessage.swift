/// One message of a conversation, in the shape both wire formats share.
public struct ChatMessage: Sendable, Equatable {
    public enum Role: String, Sendable { case system, user, assistant, tool }

    public var role: Role
    public var content: String
    /// For an assistant message: the tools it asked for.
    public var toolCalls: [ToolCall] = []
    /// For a tool message: the call it answers.
    public var toolCallID: String?
    public var toolName: String?

    public init(role: Role, content: String, toolCalls: [ToolCall] = [], toolCallID: String? = nil, toolName: String? = nil) {
        self.role = role
        self.content = content
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.toolName = toolName
    }
}

/// A model's request to run a tool.
public struct ToolCall: Sendable, Equatable {
    public var id: String
    public var name: String
    /// The arguments as sent; a model may send text that is not a JSON object.
    public var arguments: Arguments

    public enum Arguments: Sendable, Equatable {
        case json(JSONValue)
        case unparsable(String)
    }
}

/// Tokens one model answer cost. Providers report them; when one does not, they are estimated
/// from the text (4 characters a token) and marked so.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var estimated: Bool

    public init(promptTokens: Int, completionTokens: Int, estimated: Bool) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.estimated = estimated
    }

    public static let zero = TokenUsage(promptTokens: 0, completionTokens: 0, estimated: false)

    public static func + (lhs: Self, rhs: Self) -> Self {
        TokenUsage(promptTokens: lhs.promptTokens + rhs.promptTokens, completionTokens: lhs.completionTokens + rhs.completionTokens,
                   estimated: lhs.estimated || rhs.estimated)
    }
}

/// Why a model answer could not be had, in words a user can act on.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable, Equatable {
        /// Connecting, timing out or a 5xx/429: the endpoint is unhealthy, so a fallback may help.
        case unavailable
        /// The endpoint answered with a client error (bad model name, bad key): a fallback would not help.
        case rejected
        /// The answer did not follow the wire format.
        case malformed
        case budgetExceeded
        case privacyRefused
        case tooManyTurns
        case configuration
    }

    public var reason: Reason
    public var description: String

    public init(_ reason: Reason, _ description: String) {
        self.reason = reason
        self.description = description
    }
}
