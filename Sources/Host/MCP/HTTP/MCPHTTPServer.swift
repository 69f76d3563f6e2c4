import CBraneSystem
import Foundation
import MCP
import NIOCore
import NIOHTTP1
import NIOPosix

/// `brane mcp serve --http`: MCP's Streamable HTTP transport (2025-11-25) on SwiftNIO, one
/// endpoint (`/mcp`), sessions on the SDK's `StatefulHTTPServerTransport` (`MCPHTTPSessions`),
/// every request through `MCPHTTPGate` first.
///
/// Where it may listen is a privacy rule, checked here so no caller can skip it: beyond loopback
/// only when asked (`allowRemote`), and never for a neuron of tier 0 or 1. Every buffer and wait
/// on the wire has a bound: a body of at most `bodyLimit` (a larger Content-Length is refused
/// before it is read); a connection may sit idle, or take its request's head, for `idleLimit`, and
/// the body then has `requestDeadline` (a slow client is cut off, the others are served
/// meanwhile); at most `connectionLimit` connections; at most `unsentLimit` bytes waiting for a
/// client that does not read its stream before its connection is closed.
public final class MCPHTTPServer: @unchecked Sendable {
    public static let bodyLimit = BlockingStdioTransport.lineLimit
    static let requestDeadline: TimeAmount = .seconds(10)
    /// How long a connection may sit without a request under way: also the bound on headers that
    /// trickle in (the HTTP decoder hands over a request only once its head is whole).
    static let idleLimit: TimeAmount = .seconds(10)
    static let connectionLimit = 128
    static let unsentLimit = 4 << 20
    public static let remoteRule = "a neuron of tier 0 or 1 is served only on loopback or a unix socket"

    /// Where it listens, with the port the system chose for port 0.
    public let address: MCPListenAddress
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    private let sessions: MCPHTTPSessions
    /// The unix socket this server made (its inode): stop removes that one and no other.
    private let socketInode: ino_t?
    /// Ends idle sessions even when no request comes to do it.
    private let sweep: Task<Void, Never>

    /// Why `neuron` may not be served at `listen`, or nil. Beyond this machine a client is a
    /// tier-2 destination: the neuron must be tier 2, and so must everything it would serve —
    /// each tool's data (a host tool's is its sources'; resources are host tools' answers). A
    /// tier-2 neuron that enables a tier-0 plugin serves that plugin's data only on this machine.
    public static func refusal(serving neuron: ResolvedNeuron, at listen: MCPListenAddress, allowRemote: Bool) -> String? {
        guard !listen.isLocal else { return nil }
        let config = neuron.config
        guard config.privacyTier == .external else {
            return "neuron \(config.id) is tier \(config.privacyTier.rawValue): \(listen) is not on this machine, and \(remoteRule); listen on 127.0.0.1 or unix:/path"
        }
        if let sensitive = neuron.exposedTools.filter({ $0.tier < .external }).min(by: { $0.tier < $1.tier }) {
            return "neuron \(config.id) serves \(sensitive.name) (\(sensitive.owner)), whose data is tier \(sensitive.tier.rawValue): \(listen) is not on this machine, "
                + "and \(DataFlow.rule); listen on 127.0.0.1 or unix:/path, or leave the tool out"
        }
        guard allowRemote else {
            return "\(listen) is reachable from other machines; pass --allow-remote to serve there (every request still needs the token)"
        }
        return nil
    }

    /// Starts serving; returns once it listens.
    public init(dispatcher: ToolDispatcher, observations: ObservationStore?, listen: MCPListenAddress, token: String,
                allowedOrigins: [String], allowRemote: Bool) throws {
        if let refusal = Self.refusal(serving: dispatcher.neuron, at: listen, allowRemote: allowRemote) { throw MCPRefusal(refusal) }
        if case .unix(let path) = listen { try Self.clear(socket: path) }
        let sessions = MCPHTTPSessions(dispatcher: dispatcher, observations: observations)
        self.sessions = sessions
        sweep = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(60))
                await sessions.expireIdle()
            }
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let connections = ConnectionTable()
        let gateBox = GateBox()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                guard connections.admit(channel) else { return channel.close() }
                channel.closeFuture.whenComplete { _ in connections.closed(channel) }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(MCPHTTPConnection(gate: gateBox, sessions: sessions, connections: connections))
                }
            }
        do {
            switch listen {
            case .tcp(let host, let port): channel = try bootstrap.bind(host: host, port: port).wait()
            case .unix(let path):
                channel = try bootstrap.bind(unixDomainSocketPath: path).wait()
                chmod(path, 0o600)
            }
        } catch {
            sweep.cancel()
            try? group.syncShutdownGracefully()
            throw MCPRefusal("cannot listen on \(listen): \(error)")
        }
        switch listen {
        case .tcp(let host, _):
            address = .tcp(host: host, port: channel.localAddress?.port ?? 0)
            socketInode = nil
            // What was bound, not what was asked for, decides: fail closed if it is not loopback.
            if listen.isLocal, !(channel.localAddress?.ipAddress.map(NetworkAccess.isLoopback) ?? false) {
                try? channel.close().wait()
                sweep.cancel()
                try? group.syncShutdownGracefully()
                throw MCPRefusal("\(listen) was bound to \(channel.localAddress.map { "\($0)" } ?? "an unknown address"), not loopback; nothing is served")
            }
        case .unix(let path):
            address = listen
            var info = stat()
            socketInode = lstat(path, &info) == 0 ? info.st_ino : nil
        }
        let port = if case .tcp(_, let port) = address { port } else { 0 }
        gateBox.gate = MCPHTTPGate(token: token, allowedOrigins: allowedOrigins, listening: address, port: port)
    }

    /// The URL a client connects to (a unix socket has none: its clients name the socket).
    public var url: String {
        switch address {
        case .tcp: "http://\(address)\(MCPHTTPGate.path)"
        case .unix(let path): "http://localhost\(MCPHTTPGate.path) over the unix socket \(path)"
        }
    }

    /// Ends every session and stops listening.
    public func stop() {
        sweep.cancel()
        let done = DispatchSemaphore(value: 0)
        Task {
            await sessions.endAll()
            done.signal()
        }
        _ = done.wait(timeout: .now() + 5)
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        var info = stat()
        if case .unix(let path) = address, let socketInode, lstat(path, &info) == 0, info.st_ino == socketInode { unlink(path) }
    }

    /// Makes way for a unix socket at `path`: its directory must be this user's alone; a stale
    /// socket there (no server answers on it) is removed; anything else — a file, a live server's
    /// socket — is refused and left as it is.
    private static func clear(socket path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        guard BraneHome.isOwnDirectory(directory) else {
            throw MCPRefusal("\(directory) must be a directory of this user's that others cannot write: someone could replace the socket \(path)")
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw MCPRefusal("\(path) exists and is not a socket; it is left as it is: choose another path")
        }
        // Non-blocking: a live server whose backlog is full answers EAGAIN rather than keep us waiting.
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        defer { close(probe) }
        let answered = brane_connect_unix_without_links(probe, path) == 0 || errno == EAGAIN
        guard !answered else {
            throw MCPRefusal("a server is listening on \(path) already; stop it or choose another path")
        }
        unlink(path)   // a stale socket of an earlier run; the directory is this user's alone
    }
}

/// The gate, set once the listener knows its port (before the first connection can pass it).
private final class GateBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: MCPHTTPGate?
    var gate: MCPHTTPGate? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

/// The open connections. At `connectionLimit`, a new one takes the place of the oldest that has
/// not passed the gate yet (headers trickling in, say): a client with the token still gets in
/// while others hold connections open without it.
final class ConnectionTable: @unchecked Sendable {
    private let lock = NSLock()
    private var open: [ObjectIdentifier: (channel: Channel, since: NIODeadline, passed: Bool)] = [:]

    func admit(_ channel: Channel) -> Bool {
        let evicted = lock.withLock { () -> Channel?? in
            if open.count >= MCPHTTPServer.connectionLimit {
                guard let oldest = open.filter({ !$0.value.passed }).min(by: { $0.value.since < $1.value.since }) else { return .some(nil) }
                open[oldest.key] = nil
                open[ObjectIdentifier(channel)] = (channel, .now(), false)
                return .some(oldest.value.channel)
            }
            open[ObjectIdentifier(channel)] = (channel, .now(), false)
            return .none
        }
        switch evicted {
        case .some(nil): return false
        case .some(let oldest?): oldest.close(promise: nil); return true
        case .none: return true
        }
    }

    func authenticated(_ channel: Channel) {
        lock.withLock { open[ObjectIdentifier(channel)]?.passed = true }
    }

    func closed(_ channel: Channel) {
        lock.withLock { _ = open.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// One connection: reads a request whole within the deadline and the body bound, passes it
/// through the gate to the sessions, and writes the answer — a stream as its chunks come,
/// closing the connection if the client leaves more than `unsentLimit` bytes unread. State is
/// touched on the connection's event loop only.
private final class MCPHTTPConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let gate: GateBox
    private let sessions: MCPHTTPSessions
    private let connections: ConnectionTable
    private var head: HTTPRequestHead?
    private var headers: [String: String] = [:]
    private var body: ByteBuffer?
    private var refused = false
    private var deadline: Scheduled<Void>?
    private var idle: Scheduled<Void>?
    private var unsent = 0
    private var open = true

    init(gate: GateBox, sessions: MCPHTTPSessions, connections: ConnectionTable) {
        self.gate = gate
        self.sessions = sessions
        self.connections = connections
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdle(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        open = false
        deadline?.cancel()
        idle?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            idle?.cancel()
            head = requestHead
            headers = Self.headers(requestHead)
            body = context.channel.allocator.buffer(capacity: 0)
            refused = false
            // The gate sees the head: a request it refuses is answered without reading its body.
            guard let gate = gate.gate else { return refuse(context, .error(statusCode: 503, .internalError("starting"))) }
            if let refusal = gate.refusal(method: requestHead.method.rawValue, path: Self.path(requestHead), headers: headers) { return refuse(context, refusal) }
            connections.authenticated(context.channel)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: MCPHTTPServer.requestDeadline) {
                let (connection, context) = bound.value
                connection.refuse(context, .error(statusCode: 408, .invalidRequest("Request Timeout: a request must arrive whole within 10 s")))
            }
            if let length = requestHead.headers.first(name: "content-length").flatMap(Int.init), length > MCPHTTPServer.bodyLimit {
                refuse(context, tooLarge(length))
            }
        case .body(var chunk):
            guard !refused, body != nil else { return }
            if body!.readableBytes + chunk.readableBytes > MCPHTTPServer.bodyLimit {
                return refuse(context, tooLarge(body!.readableBytes + chunk.readableBytes))
            }
            body!.writeBuffer(&chunk)
        case .end:
            deadline?.cancel()
            guard !refused, let head, let body else { return }
            self.head = nil
            self.body = nil
            let request = Self.request(head, headers, body)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let (sessions, eventLoop) = (sessions, context.eventLoop)
            Task {
                let answer = await sessions.handle(request)
                Self.deliver(bound, on: eventLoop, head, answer.response) {
                    guard let session = answer.session, let id = answer.requestID else { return }
                    await sessions.finished(id, in: session)
                }
            }
        }
    }

    /// Header names as lower case, the values of one name (in any case) joined by ", ": a gate
    /// and the SDK's validators read the same value, and `Authorization: x` beside
    /// `authorization: y` is one header that matches no token.
    private static func headers(_ head: HTTPRequestHead) -> [String: String] {
        var headers: [String: String] = [:]
        for (name, value) in head.headers {
            let key = name.lowercased()
            headers[key] = headers[key].map { "\($0), \(value)" } ?? value
        }
        return headers
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func tooLarge(_ length: Int) -> HTTPResponse {
        .error(statusCode: 413, .invalidRequest("Payload Too Large: \(length) bytes; a message may have at most \(MCPHTTPServer.bodyLimit >> 20) MiB"))
    }

    /// Answers a request that will not be read to its end, and closes the connection.
    private func refuse(_ context: ChannelHandlerContext, _ response: HTTPResponse) {
        guard !refused, open, let head else { return }
        refused = true
        deadline?.cancel()
        respond(context, head, response, closing: true)
    }

    private func armIdle(_ context: ChannelHandlerContext) {
        idle?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        idle = context.eventLoop.scheduleTask(in: MCPHTTPServer.idleLimit) { bound.value.close(promise: nil) }
    }

    /// The request's path: its URI without the query.
    private static func path(_ head: HTTPRequestHead) -> String {
        String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
    }

    private static func request(_ head: HTTPRequestHead, _ headers: [String: String], _ body: ByteBuffer) -> HTTPRequest {
        HTTPRequest(method: head.method.rawValue, headers: headers, body: body.readableBytes > 0 ? Data(body.readableBytesView) : nil,
                    path: path(head))
    }

    private func writeHead(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ response: HTTPResponse, closing: Bool) {
        var head = HTTPResponseHead(version: request.version, status: HTTPResponseStatus(statusCode: response.statusCode))
        for (name, value) in response.headers { head.headers.add(name: name, value: value) }
        if closing { head.headers.replaceOrAdd(name: "connection", value: "close") }
        if case .stream = response {
            // HTTP/1.0 has no chunked encoding: the stream's end is the connection's.
            if request.version == .http1_0 { head.headers.replaceOrAdd(name: "connection", value: "close") }
        } else {
            head.headers.replaceOrAdd(name: "content-length", value: "\(response.bodyData?.count ?? 0)")
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    /// Writes a whole (non-stream) response.
    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ response: HTTPResponse, closing: Bool) {
        guard open else { return }
        writeHead(context, request, response, closing: closing)
        if let data = response.bodyData {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: data)))), promise: nil)
        }
        let keepAlive = request.isKeepAlive && !closing
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            let (connection, context) = bound.value
            if keepAlive { connection.armIdle(context) } else { context.close(promise: nil) }
        }
    }

    /// Delivers the sessions' answer, on the event loop; a stream chunk by chunk as it comes.
    /// `finished` runs once the answer is written or can no longer be.
    private static func deliver(_ bound: NIOLoopBound<(MCPHTTPConnection, ChannelHandlerContext)>, on eventLoop: any EventLoop,
                                _ request: HTTPRequestHead, _ response: HTTPResponse, finished: @escaping @Sendable () async -> Void) {
        guard case .stream(let stream, _) = response else {
            Task { await finished() }
            return eventLoop.execute { bound.value.0.respond(bound.value.1, request, response, closing: false) }
        }
        eventLoop.execute {
            let (connection, context) = bound.value
            guard connection.open else { return }
            connection.writeHead(context, request, response, closing: false)
            context.flush()
        }
        // The stream is read to its end even once the connection is gone: its request id stays in
        // flight until the SDK has its answer, and nothing piles up unread in the SDK's stream.
        Task {
            do {
                for try await chunk in stream {
                    try await eventLoop.submit {
                        let (connection, context) = bound.value
                        guard connection.open else { return }
                        // Bounded by what waits unread: one large event to a client that reads is fine.
                        guard connection.unsent == 0 || connection.unsent + chunk.count <= MCPHTTPServer.unsentLimit else {
                            connection.open = false
                            context.close(promise: nil)   // a client that does not read its stream
                            return
                        }
                        connection.unsent += chunk.count
                        context.writeAndFlush(connection.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: chunk))))).whenComplete { _ in
                            bound.value.0.unsent -= chunk.count
                        }
                    }.get()
                }
            } catch {}
            await finished()
            eventLoop.execute {
                let (connection, context) = bound.value
                guard connection.open else { return }
                let keepAlive = request.isKeepAlive && request.version != .http1_0
                context.writeAndFlush(connection.wrapOutboundOut(.end(nil))).whenComplete { _ in
                    if keepAlive { bound.value.0.armIdle(bound.value.1) } else { bound.value.1.close(promise: nil) }
                }
            }
        }
    }
}
