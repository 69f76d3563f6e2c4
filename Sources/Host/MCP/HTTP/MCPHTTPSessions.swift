import Foundation
import Logging
import MCP

/// The Streamable HTTP sessions of one server, each on the official SDK's
/// `StatefulHTTPServerTransport` (session ids, SSE streams, DELETE, resumability): an
/// `initialize` without a session starts one, every other request goes to its session's
/// transport. Between that transport and the SDK's server sits the host's answerer, as on stdio
/// (`HostAnsweringTransport`), so calls, resources and errors are answered the same way.
///
/// Bounded: at most `sessionLimit` sessions; one unused for `idleLimit` ends; one whose answers and
/// notifications pass `sessionByteLimit` ends (the SDK's transport keeps every message it sent
/// for replay until its session ends); a body is checked by the host's parser before the SDK
/// sees it; a request id already in flight in the session is refused (the SDK's transport would
/// give its answer to the second request and leave the first waiting forever).
actor MCPHTTPSessions {
    static let sessionLimit = 16
    static let idleLimit: Duration = .seconds(30 * 60)
    static let sessionByteLimit = 32 << 20
    /// A session unused this long may give its place to a new one when all places are taken.
    static let evictableAfter: Duration = .seconds(60)
    static let idLimit = 256

    private struct Entry {
        let transport: StatefulHTTPServerTransport
        let session: NeuronMCPServer.Session
        let sink: HTTPSessionSink
        var lastUsed: ContinuousClock.Instant
        var inFlight: Set<String> = []
    }

    private let dispatcher: ToolDispatcher
    private let observations: ObservationStore?
    private var sessions: [String: Entry] = [:]

    init(dispatcher: ToolDispatcher, observations: ObservationStore?) {
        self.dispatcher = dispatcher
        self.observations = observations
    }

    /// A request's response; for a request with an id in a session, who to tell once its answer
    /// is written (`finished`), which frees the id.
    struct Answer: Sendable {
        var response: HTTPResponse
        var session: String?
        var requestID: String?

        init(response: HTTPResponse, session: String? = nil, requestID: String? = nil) {
            (self.response, self.session, self.requestID) = (response, session, requestID)
        }
    }

    func handle(_ request: HTTPRequest) async -> Answer {
        var requestID: String?, method: String?
        expireIdle()
        if request.method == "POST" {
            switch Self.check(request.body) {
            case .refused(let refusal): return Answer(response: refusal)
            case .message(let id, let name): (requestID, method) = (id, name)
            }
        }
        guard let sessionID = request.header(HTTPHeaderName.sessionID) else {
            guard method == "initialize", requestID != nil else {
                return Answer(response: .error(statusCode: 400, .invalidRequest("Bad Request: Missing \(HTTPHeaderName.sessionID) header; a session starts with initialize")))
            }
            return Answer(response: await start(request))
        }
        guard var entry = sessions[sessionID] else {
            return Answer(response: .error(statusCode: 404, .invalidRequest("Not Found: Session not found or expired; start a new one with initialize")))
        }
        entry.lastUsed = .now
        if let requestID {
            guard !entry.inFlight.contains(requestID) else {
                return Answer(response: .error(statusCode: 409, .invalidRequest("Conflict: request id \(UntrustedText.sanitized(requestID, limit: 64)) is already in flight in this session"),
                                               sessionID: sessionID))
            }
            entry.inFlight.insert(requestID)
        }
        sessions[sessionID] = entry
        let response = await entry.transport.handleRequest(request)
        if request.method == "DELETE", response.statusCode == 200 { await end(sessionID) }
        return Answer(response: response, session: sessionID, requestID: requestID)
    }

    /// Ends every session (the server stops).
    func endAll() async {
        for id in Array(sessions.keys) { await end(id) }
    }

    private func start(_ request: HTTPRequest) async -> HTTPResponse {
        if sessions.count >= Self.sessionLimit {
            // The least recently used session with nothing in flight, unused for a minute, gives way:
            // clients that left without DELETE do not lock out the next one for half an hour.
            let now = ContinuousClock.now
            guard let oldest = sessions.filter({ $0.value.inFlight.isEmpty && now - $0.value.lastUsed > Self.evictableAfter })
                .min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key else {
                return .error(statusCode: 503, .internalError("Service Unavailable: \(Self.sessionLimit) sessions are in use; end one (DELETE) or try again in a minute"))
            }
            await end(oldest)
        }
        guard let bytes = try? secureRandomBytes(24) else { return .error(statusCode: 500, .internalError("no random bytes for a session id")) }
        let sessionID = hex(bytes)
        struct FixedID: SessionIDGenerator { let id: String; func generateSessionID() -> String { id } }
        let transport = StatefulHTTPServerTransport(sessionIDGenerator: FixedID(id: sessionID), validationPipeline: StandardValidationPipeline(validators: [
            AcceptHeaderValidator(mode: .sseRequired), ContentTypeValidator(), ProtocolVersionValidator(), SessionValidator(),
        ]))
        let sink = HTTPSessionSink(transport) { [weak self] in
            Task { await self?.end(sessionID) }   // past its byte bound, whatever is sending
        }
        do {
            let session = try await NeuronMCPServer.Session(dispatcher, observations: observations, sink: sink)
            try await session.server.start(transport: HostAnsweringTransport(transport, answerer: session.answerer, sink: sink))
            sessions[sessionID] = Entry(transport: transport, session: session, sink: sink, lastUsed: .now)
        } catch {
            await transport.disconnect()
            return .error(statusCode: 500, .internalError("cannot start a session: \(error)"))
        }
        let response = await transport.handleRequest(request)
        if case .error = response { await end(sessionID) }
        return response
    }

    /// A POST body as the host's parser reads it, before the SDK does: one JSON-RPC message (a
    /// request's id as the SDK's transport keys it, and its method), or the refusal.
    private enum Checked {
        case message(id: String?, method: String?)
        case refused(HTTPResponse)
    }

    private static func check(_ body: Data?) -> Checked {
        guard let body, !body.isEmpty else { return .refused(.error(statusCode: 400, .parseError("the body is empty"))) }
        let message: JSONValue
        do { message = try JSONValue(parsing: Array(body)) } catch {
            return .refused(.error(statusCode: 400, .parseError("\(error)")))
        }
        switch message {
        case .array:
            return .refused(.error(statusCode: 400, .invalidRequest("a batch; Streamable HTTP carries one message per POST")))
        case .object(let members):
            guard let id = members["id"], let method = members["method"]?.stringValue else { return .message(id: nil, method: members["method"]?.stringValue) }
            guard JSONRPCLine.isValidID(id) else {
                return .refused(.error(statusCode: 400, .invalidRequest("id must be a string or an integer")))
            }
            // The SDK's transport repeats an id in every event it stores for replay.
            guard id.serialized().utf8.count <= Self.idLimit else {
                return .refused(.error(statusCode: 400, .invalidRequest("an id may have at most \(Self.idLimit) bytes")))
            }
            // The SDK's transport keys streams by the id's text.
            return .message(id: id.stringValue ?? String(Int64(id.numberValue!)), method: method)
        default:
            return .refused(.error(statusCode: 400, .invalidRequest("a message is a JSON object, found \(message.typeName)")))
        }
    }

    /// The request `id` of a session was answered (its stream ended): its id may be used again.
    func finished(_ requestID: String, in sessionID: String) {
        sessions[sessionID]?.inFlight.remove(requestID)
    }

    /// Ends the sessions unused for `idleLimit` (called on each request and by the server's sweep).
    func expireIdle() {
        let now = ContinuousClock.now
        for (id, entry) in sessions where now - entry.lastUsed > Self.idleLimit {
            Task { await end(id) }
        }
    }

    private func end(_ sessionID: String) async {
        guard let entry = sessions.removeValue(forKey: sessionID) else { return }
        entry.sink.close()
        await entry.transport.disconnect()
        await entry.session.server.stop()
        // Waits a moment for the watch to stop: off the actor.
        let resources = entry.session.resources
        Thread.detachNewThread { resources?.stop() }
    }
}

/// Where a session's host answers and notifications go: one task sends them to the SDK's
/// transport in order (which routes a response to its request's stream and a notification to
/// the session's GET stream). Counts what passes, as the SDK's transport keeps it — each message
/// about three times (its SSE event, the stored copy, the stream's buffer) — and calls
/// `overBound` once the session's bound is passed.
final class HTTPSessionSink: MessageSink, @unchecked Sendable {
    private let lock = NSLock()
    private var kept = 0
    private var closed = false
    private var brokenHandlers: [@Sendable () -> Void] = []
    private let outbox: AsyncStream<Data>.Continuation
    private let overBound: @Sendable () -> Void

    init(_ transport: StatefulHTTPServerTransport, overBound: @escaping @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Data>.makeStream()
        outbox = continuation
        self.overBound = overBound
        Task {
            for await message in stream { try? await transport.send(message) }
        }
    }

    /// Counts a message on its way to the transport; false once the session is past its bound.
    func count(_ bytes: Int) -> Bool {
        let (within, crossed) = lock.withLock { () -> (Bool, Bool) in
            let before = kept
            kept += 3 * bytes + 512
            return (kept <= MCPHTTPSessions.sessionByteLimit, before <= MCPHTTPSessions.sessionByteLimit && kept > MCPHTTPSessions.sessionByteLimit)
        }
        if crossed { overBound() }
        return within
    }

    func write(_ message: [UInt8]) throws {
        guard lock.withLock({ !closed }), count(message.count) else { throw MCPError.connectionClosed }
        outbox.yield(Data(message))
    }

    func whenBroken(_ handler: @escaping @Sendable () -> Void) {
        lock.withLock { brokenHandlers.append(handler) }
    }

    /// The session ended: nothing more is sent, and what is waiting or running for it is stopped.
    func close() {
        let handlers = lock.withLock { () -> [@Sendable () -> Void] in
            guard !closed else { return [] }
            closed = true
            return brokenHandlers
        }
        outbox.finish()
        for handler in handlers { handler() }
    }
}

/// The SDK's transport, with the host's answerer in front of the SDK's server: each message the
/// transport receives is triaged as a stdio line is (`NeuronMCPServer.triage`), and only what the
/// host leaves to the SDK reaches it.
actor HostAnsweringTransport: Transport {
    nonisolated let logger = Logger(label: "brane.mcp.http", factory: { _ in SwiftLogNoOpLogHandler() })
    private let inner: StatefulHTTPServerTransport
    private nonisolated let answerer: ToolCallAnswerer
    private nonisolated let sink: HTTPSessionSink

    init(_ inner: StatefulHTTPServerTransport, answerer: ToolCallAnswerer, sink: HTTPSessionSink) {
        self.inner = inner
        self.answerer = answerer
        self.sink = sink
    }

    func connect() async throws { try await inner.connect() }
    func disconnect() async { await inner.disconnect() }

    func send(_ data: Data) async throws {
        guard sink.count(data.count) else { throw MCPError.connectionClosed }
        try await inner.send(data)
    }

    nonisolated func receive() -> AsyncThrowingStream<Data, Swift.Error> {
        let (inner, answerer) = (inner, answerer)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await message in await inner.receive() {
                        if case .forSDK = NeuronMCPServer.triage(Array(message), answerer) { continuation.yield(message) }
                    }
                    continuation.finish()
                } catch { continuation.finish(throwing: error) }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}
