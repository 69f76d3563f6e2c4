import Foundation

/// Answers `tools/call` requests and batches straight from the transport's reader, without the
/// SDK: parsed once into `JSONValue` (`JSONRPCLine`), each call queued behind the other calls to
/// its plugin (`ToolDispatcher.submit`), answered with a JSON-RPC response written as one line.
/// The SDK's request path decodes every message several times and runs a regular expression on
/// each string (its `Value` decoder checks for data: URLs, and rewrites them) — most of a call's
/// time (docs/performance.md) — and it runs a batch's items one after another in its receive
/// loop, where nothing can cancel them. It also writes the errors `JSONRPCLine` decided on, and
/// stops a call a client cancels: no answer is written for it.
final class ToolCallAnswerer: @unchecked Sendable {
    private let dispatcher: ToolDispatcher
    private let writer: any MessageSink
    /// What `tools/list` answers inside a batch (alone, the SDK answers it, from the same tools).
    private let toolList: JSONValue
    private let lock = NSLock()
    /// Calls read and not yet answered, by their id's JSON text (`JSONRPCLine.key`).
    private var inFlight: [[UInt8]: CallCancellation] = [:]
    private let unanswered = DispatchGroup()
    /// The most bytes of answers one batch holds.
    static let batchAnswerLimit = 32 << 20
    /// The session's resources, when the neuron offers them.
    let resources: ResourceAnswerer?

    init(dispatcher: ToolDispatcher, writer: any MessageSink, resources: ResourceAnswerer? = nil) {
        self.dispatcher = dispatcher
        self.writer = writer
        self.resources = resources
        toolList = ["tools": .array(dispatcher.tools.map { ["name": .string($0.name), "description": .string($0.description), "inputSchema": $0.inputSchema] })]
        writer.whenBroken { [weak self] in self?.cancelAll() }
    }

    /// Writes a response made elsewhere (an error `JSONRPCLine` decided on).
    func reply(_ response: JSONValue) {
        try? writer.write(Array(response.serialized().utf8))
    }

    /// A single `tools/call`: answered when its plugin has answered.
    func answer(id: JSONValue, params: JSONValue?) {
        start(id: id, params: params) { [self] in reply($0) }
    }

    /// A batch, answered as one array once every request in it is answered (cancelled calls and
    /// notifications have no entry; nothing is written when no entry is left). Its calls run
    /// concurrently, each in its plugin's queue; ping and tools/list are answered here.
    func answer(batch: [JSONRPCLine.Message]) {
        final class Entries: @unchecked Sendable {
            let lock = NSLock()
            /// Each answer's JSON, serialised once: measured here, written as it is.
            var answers: [(Int, [UInt8])] = []
            var bytes = 0
        }
        let entries = Entries(), group = DispatchGroup()
        // The array is written whole: past `batchAnswerLimit` an answer is replaced by an error saying so.
        @Sendable func add(_ position: Int, _ answer: JSONValue) {
            let json = Array(answer.serialized().utf8)
            entries.lock.withLock {
                let fits = entries.bytes + json.count <= Self.batchAnswerLimit
                entries.bytes += fits ? json.count : 0
                entries.answers.append((position, fits ? json : Array(JSONRPCLine.errorResponse(id: answer["id"], code: JSONRPCLine.internalError,
                    "Internal error: the batch's answers passed \(Self.batchAnswerLimit >> 20) MiB; send this request alone").serialized().utf8)))
            }
        }
        for (position, message) in batch.enumerated() {
            switch message {
            case .invalid(let response): add(position, response)
            case .toolCall(let id, let params):
                group.enter()
                start(id: id, params: params) { add(position, $0); group.leave() } cancelled: { group.leave() }
            case .cancelled(let id): if let id { cancel(id) }
            case .request(let id, "ping", _): add(position, ["jsonrpc": "2.0", "id": id, "result": .object([:])])
            case .request(let id, "tools/list", _): add(position, ["jsonrpc": "2.0", "id": id, "result": toolList])
            case .request(let id, "initialize", _):
                add(position, JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.invalidRequest, "Invalid Request: initialize is sent alone, not in a batch"))
            case .request(let id, let method, let params) where resources != nil && ResourceAnswerer.methods.contains(method):
                add(position, resources!.answer(id: id, method: method, params: params))
            case .request(let id, let method, _):
                add(position, JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.methodNotFound,
                                                        "Method not found: \(UntrustedText.sanitized(method, limit: 128))"))
            case .notification, .ignored: break
            }
        }
        unanswered.enter()
        group.notify(queue: .global()) { [self] in
            let answers = entries.lock.withLock { entries.answers.sorted { $0.0 < $1.0 }.map(\.1) }
            if !answers.isEmpty { try? writer.write(Array("[".utf8) + Array(answers.joined(separator: Array(",".utf8))) + Array("]".utf8)) }
            unanswered.leave()
        }
    }

    /// Checks a call and queues it; `answered` gets its response, or `cancelled` runs instead.
    private func start(id: JSONValue, params: JSONValue?, answered: @escaping @Sendable (JSONValue) -> Void,
                       cancelled: @escaping @Sendable () -> Void = {}) {
        guard let name = params?["name"]?.stringValue else {
            return answered(Self.invalidParams(id, "tools/call needs params.name, the tool's name"))
        }
        guard dispatcher.tool(named: name) != nil else {
            let hint = closestMatch(to: name, in: dispatcher.tools.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
            return answered(Self.invalidParams(id, "unknown tool '\(UntrustedText.sanitized(name, limit: 128))'\(hint)"))
        }
        let arguments = params?["arguments"] ?? .object([:])
        guard case .object = arguments else { return answered(Self.invalidParams(id, "params.arguments must be an object")) }
        let key = JSONRPCLine.key(id), cancellation = CallCancellation()
        let known = lock.withLock { () -> Bool in
            guard inFlight[key] == nil else { return true }
            inFlight[key] = cancellation
            return false
        }
        // Ids name calls for cancellation and answers: two in flight under one id would be ambiguous.
        guard !known else {
            return answered(JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.invalidRequest,
                "Invalid Request: id \(UntrustedText.sanitized(id.serialized(), limit: 64)) is already used by a call in progress"))
        }
        unanswered.enter()
        dispatcher.submit(name, arguments: arguments, cancellation: cancellation) { [self] result in
            lock.withLock { _ = inFlight.removeValue(forKey: key) }
            // notifications/cancelled: "the receiver SHOULD NOT send a response for the cancelled request".
            if cancellation.isCancelled { cancelled() } else { answered(Self.response(id: id, result)) }
            unanswered.leave()
        }
    }

    /// Stops every call waiting or running: the client is gone, no answer can reach it.
    func cancelAll() {
        for cancellation in lock.withLock({ Array(inFlight.values) }) { cancellation.cancel() }
    }

    /// Stops the call `id` if it is still waiting or running; a finished or unknown id is ignored.
    func cancel(_ id: JSONValue) {
        lock.withLock { inFlight[JSONRPCLine.key(id)] }?.cancel()
    }

    /// Returns once every call and batch already read has been answered (at end of input:
    /// answered, not dropped).
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
