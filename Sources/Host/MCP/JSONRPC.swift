import Foundation

/// What one line from an MCP client is, decided once, before anything acts on it: every line is
/// parsed by the host's bounded parser (depth, finite numbers, paired surrogates, UTF-8, unique
/// keys), and whatever is not a well-formed JSON-RPC 2.0 message is answered here with the
/// specification's error — -32700 for text that is not JSON, -32600 for JSON that is not a
/// request — carrying the request's id whenever it can be read (the SDK answered these with a
/// random id). Only single initialize/ping/tools/list requests and notifications reach the SDK;
/// `tools/call` and batches are answered by the host (`ToolCallAnswerer`).
enum JSONRPCLine {
    /// One message: a line's, or one item of a batch.
    enum Message {
        /// A `tools/call` request.
        case toolCall(id: JSONValue, params: JSONValue?)
        /// `notifications/cancelled` for the request `id` (nil when it named none).
        case cancelled(id: JSONValue?)
        /// Any other request (initialize, ping, tools/list, resources/…, or a method the server lacks).
        case request(id: JSONValue, method: String, params: JSONValue?)
        /// Any other notification (notifications/initialized…).
        case notification
        /// Nothing to do and nothing to answer: a response (this server sends no requests), or a
        /// `tools/call` without an id.
        case ignored
        /// Not a valid message: this error response is its whole answer.
        case invalid(JSONValue)
    }

    case single(Message)
    /// A batch: its items, each checked on its own (JSON-RPC 2.0 §6: one bad item does not sink the others).
    case batch([Message])
    /// Not JSON, or an empty batch: this error response is the whole answer.
    case invalid(JSONValue)

    static let parseError = -32700, invalidRequest = -32600, methodNotFound = -32601, invalidParams = -32602, internalError = -32603
    /// The most messages a batch may hold.
    static let batchLimit = 1_000

    static func classify(_ line: [UInt8]) -> JSONRPCLine {
        let message: JSONValue
        do {
            message = try JSONValue(parsing: line)
        } catch {
            return .invalid(errorResponse(id: salvagedID(line), code: parseError, "Parse error: \(error)"))
        }
        switch message {
        case .array(let items):
            guard !items.isEmpty else { return .invalid(errorResponse(id: nil, code: invalidRequest, "Invalid Request: an empty batch")) }
            // Each item may earn an answer of its own: 4 MiB of `1,` would be two million errors.
            guard items.count <= batchLimit else {
                return .invalid(errorResponse(id: nil, code: invalidRequest, "Invalid Request: a batch of \(items.count) messages; at most \(batchLimit)"))
            }
            return .batch(items.map(classify))
        default:
            return .single(classify(message))
        }
    }

    private static func classify(_ message: JSONValue) -> Message {
        guard case .object(let members) = message else {
            return .invalid(errorResponse(id: nil, code: invalidRequest, "Invalid Request: a message is a JSON object, found \(message.typeName)"))
        }
        let id = members["id"]
        let readableID = id.flatMap { isValidID($0) ? $0 : nil }
        func invalid(_ why: String) -> Message { .invalid(errorResponse(id: readableID, code: invalidRequest, "Invalid Request: \(why)")) }
        guard members["jsonrpc"] == "2.0" else { return invalid("jsonrpc must be \"2.0\"") }
        if let id, readableID == nil {
            return invalid("id must be a string or an integer, found \(id.typeName == "null" ? "null" : UntrustedText.sanitized(id.serialized(), limit: 64))")
        }
        let isResponse = members["result"] != nil || members["error"] != nil
        guard let method = members["method"] else {
            // A response: this server sends no requests, so there is nothing to match it to — and a
            // response is never answered.
            return isResponse ? .ignored
                : invalid("a message needs a method (a request or notification) or, with an id, one of result and error (a response)")
        }
        guard !isResponse else { return invalid("a request or notification carries no result or error") }
        guard case .string(let name) = method else { return invalid("method must be a string") }
        if let params = members["params"] {
            switch params {
            case .object, .array: break
            default: return invalid("params must be an object or an array")
            }
        }
        switch (name, id) {
        case ("tools/call", let id?): return .toolCall(id: id, params: members["params"])
        case ("tools/call", nil): return .ignored
        case ("notifications/cancelled", _): return .cancelled(id: members["params"]?["requestId"].flatMap { isValidID($0) ? $0 : nil })
        case (_, let id?): return .request(id: id, method: name, params: members["params"])
        case (_, nil): return .notification
        }
    }

    /// An id as the bytes of its JSON text: the key of a call in flight. Not a Swift String, whose
    /// equality is Unicode canonical equivalence: "\u00e9" and "e\u0301" are two ids.
    static func key(_ id: JSONValue) -> [UInt8] { Array(id.serialized().utf8) }

    /// MCP ids are strings or integers (never null).
    static func isValidID(_ id: JSONValue) -> Bool {
        switch id {
        case .string: true
        case .number(let n): n == n.rounded() && abs(n) < 9e15
        default: false
        }
    }

    static func errorResponse(id: JSONValue?, code: Int, _ message: String, data: JSONValue? = nil) -> JSONValue {
        var error: [String: JSONValue] = ["code": .number(Double(code)), "message": .string(UntrustedText.sanitized(message, limit: 512))]
        if let data { error["data"] = data }
        return ["jsonrpc": "2.0", "id": id ?? .null, "error": .object(error)]
    }

    /// The top-level `"id"` of a line that is not valid JSON, when it is a plain string or
    /// integer: scanned without parsing the rest, so a NaN or a lone surrogate elsewhere still
    /// lets the error name its request. Linear, and nil at the first thing it cannot follow.
    static func salvagedID(_ line: [UInt8]) -> JSONValue? {
        var at = 0
        func skipSpace() { while at < line.count, [0x20, 0x09, 0x0a, 0x0d].contains(line[at]) { at += 1 } }
        /// Past a string starting at `at` (a quote); its bytes, escapes undecoded.
        func skipString() -> ArraySlice<UInt8>? {
            let start = at
            at += 1
            while at < line.count {
                switch line[at] {
                case UInt8(ascii: "\\"): at += 2
                case UInt8(ascii: "\""): at += 1; return line[start..<at]
                default: at += 1
                }
            }
            return nil
        }
        /// Past one value of any kind, counting brackets and skipping strings.
        func skipValue() -> Bool {
            var depth = 0
            while at < line.count {
                switch line[at] {
                case UInt8(ascii: "\""): guard skipString() != nil else { return false }; if depth == 0 { return true }; continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { return true }
                    depth -= 1
                    if depth == 0 { at += 1; return true }
                case UInt8(ascii: ","): if depth == 0 { return true }
                default: break
                }
                at += 1
            }
            return false
        }
        skipSpace()
        guard at < line.count, line[at] == UInt8(ascii: "{") else { return nil }
        at += 1
        while true {
            skipSpace()
            guard at < line.count, line[at] == UInt8(ascii: "\""), let key = skipString() else { return nil }
            skipSpace()
            guard at < line.count, line[at] == UInt8(ascii: ":") else { return nil }
            at += 1
            skipSpace()
            let start = at
            guard skipValue() else { return nil }
            if key.elementsEqual("\"id\"".utf8) {
                guard let id = try? JSONValue(parsing: line[start..<at]), isValidID(id) else { return nil }
                return id
            }
            skipSpace()
            guard at < line.count, line[at] == UInt8(ascii: ",") else { return nil }
            at += 1
        }
    }
}
