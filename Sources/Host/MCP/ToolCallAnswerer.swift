import Foundation

/// Answers `tools/call` requests straight from the transport's reader, without the SDK: parsed
/// once into `JSONValue` (`JSONRPCLine`), queued behind the other calls to the same plugin
/// (`ToolDispatcher.submit`), answered with a JSON-RPC response written as one line. The SDK's
/// request path decodes every message several times and runs a regular expression on each
/// string (its `Value` decoder checks for data: URLs) — most of a call's time
/// (docs/performance.md). It also writes the errors `JSONRPCLine` decided on, and stops a call
/// a client cancels: no answer is written for it.
final class ToolCallAnswerer: @unchecked Sendable {
    private let dispatcher: ToolDispatcher
    private let writer: LineWriter
    private let lock = NSLock()
    /// Calls read and not yet answered, by their id as JSON text (`1` and `"1"` are two ids).
    private var inFlight: [String: CallCancellation] = [:]
    private let unanswered = DispatchGroup()

    init(dispatcher: ToolDispatcher, writer: LineWriter) {
        self.dispatcher = dispatcher
        self.writer = writer
    }

    /// Writes a response made elsewhere (an error `JSONRPCLine` decided on).
    func reply(_ response: JSONValue) {
        try? writer.write(Array(response.serialized().utf8))
    }

    func answer(id: JSONValue, params: JSONValue?) {
        let key = id.serialized()
        guard let name = params?["name"]?.stringValue else {
            return reply(Self.invalidParams(id, "tools/call needs params.name, the tool's name"))
        }
        guard dispatcher.tool(named: name) != nil else {
            let hint = closestMatch(to: name, in: dispatcher.tools.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
            return reply(Self.invalidParams(id, "unknown tool '\(UntrustedText.sanitized(name, limit: 128))'\(hint)"))
        }
        let arguments = params?["arguments"] ?? .object([:])
        guard case .object = arguments else { return reply(Self.invalidParams(id, "params.arguments must be an object")) }
        let cancellation = CallCancellation()
        let known = lock.withLock { () -> Bool in
            guard inFlight[key] == nil else { return true }
            inFlight[key] = cancellation
            return false
        }
        // Ids name calls for cancellation and answers: two in flight under one id would be ambiguous.
        guard !known else {
            return reply(JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.invalidRequest,
                                                   "Invalid Request: id \(UntrustedText.sanitized(key, limit: 64)) is already used by a call in progress"))
        }
        unanswered.enter()
        dispatcher.submit(name, arguments: arguments, cancellation: cancellation) { [self] result in
            lock.withLock { _ = inFlight.removeValue(forKey: key) }
            // notifications/cancelled: "the receiver SHOULD NOT send a response for the cancelled request".
            if !cancellation.isCancelled { reply(Self.response(id: id, result)) }
            unanswered.leave()
        }
    }

    /// Stops the call `id` if it is still waiting or running; a finished or unknown id is ignored.
    func cancel(_ id: JSONValue) {
        lock.withLock { inFlight[id.serialized()] }?.cancel()
    }

    /// Returns once every call already read has been answered (at end of input: answered, not dropped).
    func finish() {
        unanswered.wait()
    }

    static func response(id: JSONValue, _ result: ToolResult) -> JSONValue {
        var answer: [String: JSONValue] = ["content": [["type": "text", "text": .string(result.text)]], "isError": .bool(result.isError)]
        if let structured = result.structured { answer["structuredContent"] = structured }
        return ["jsonrpc": "2.0", "id": id, "result": .object(answer)]
    }

    /// JSON-RPC -32602, worded as the SDK words it.
    private static func invalidParams(_ id: JSONValue, _ detail: String) -> JSONValue {
        JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.invalidParams, "Invalid params: \(detail)")
    }
}
