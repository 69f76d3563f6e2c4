import Foundation

/// Answers `tools/call` requests straight from the transport's reader, without the SDK: parsed
/// once into `JSONValue`, dispatched on a thread of their own (calls block on a sandboxed
/// plugin), answered with a JSON-RPC response written as one line. The SDK's request path
/// decodes every message several times and runs a regular expression on each string (its
/// `Value` decoder checks for data: URLs) — most of a call's time (docs/performance.md). Every
/// other message — initialize, tools/list, ping, notifications, batches — still goes to the SDK.
final class ToolCallAnswerer: Sendable {
    private let dispatcher: ToolDispatcher
    private let writer: LineWriter
    private let calls = DispatchQueue(label: "brane.mcp.calls", attributes: .concurrent)
    private static let marker = Array("\"tools/call\"".utf8)

    init(dispatcher: ToolDispatcher, writer: LineWriter) {
        self.dispatcher = dispatcher
        self.writer = writer
    }

    /// True when `line` is a tools/call request, which is then answered; false leaves it to the SDK.
    func answer(_ line: [UInt8]) -> Bool {
        // Most lines are not calls: look for the method name before parsing anything.
        guard line.firstRange(of: Self.marker) != nil, let request = try? JSONValue(parsing: line),
              request["method"] == "tools/call", let id = request["id"] else { return false }
        calls.async { [self] in
            try? writer.write(Array(response(id: id, params: request["params"]).serialized().utf8))
        }
        return true
    }

    /// Returns once every call already read has been answered (at end of input: answered, not dropped).
    func finish() {
        calls.sync(flags: .barrier) {}
    }

    private func response(id: JSONValue, params: JSONValue?) -> JSONValue {
        guard let name = params?["name"]?.stringValue else { return Self.invalidParams(id, "tools/call needs params.name, the tool's name") }
        guard dispatcher.tool(named: name) != nil else {
            let hint = closestMatch(to: name, in: dispatcher.tools.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
            return Self.invalidParams(id, "unknown tool '\(name)'\(hint)")
        }
        let result = dispatcher.call(name, arguments: params?["arguments"] ?? .object([:]))
        var answer: [String: JSONValue] = ["content": [["type": "text", "text": .string(result.text)]], "isError": .bool(result.isError)]
        if let structured = result.structured { answer["structuredContent"] = structured }
        return ["jsonrpc": "2.0", "id": id, "result": .object(answer)]
    }

    /// JSON-RPC -32602, worded as the SDK words it.
    private static func invalidParams(_ id: JSONValue, _ detail: String) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "error": ["code": -32602, "message": .string("Invalid params: \(detail)")]]
    }
}
