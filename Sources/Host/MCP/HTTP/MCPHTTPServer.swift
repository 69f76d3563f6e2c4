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
/// before it is read), a request that must arrive whole within `requestDeadline` (a slow client
/// is cut off, the others are served meanwhile), an idle connection closed after `idleLimit`, at
/// most `connectionLimit` connections, and at most `unsentLimit` bytes waiting for a client that
/// does not read its stream before its connection is closed. A connection may sit idle, or take
/// its request's head, for `idleLimit`; the body then has `requestDeadline`.
public final class MCPHTTPServer: @unchecked Sendable {
    public static let bodyLimit = BlockingStdioTransport.lineLimit
    static let requestDeadline: TimeAmount = .seconds(10)
    /// How long a connection may sit without a request under way: also the bound on headers that
    /// trickle in (the HTTP decoder hands over a request only once its head is whole).
    static let idleLimit: TimeAmount = .seconds(10)
    static let connectionLimit = 64
    static let unsentLimit = 4 << 20
    public static let remoteRule = "a neuron of tier 0 or 1 is served only on loopback or a unix socket"

    /// Where it listens, with the port the system chose for port 0.
    public let address: MCPListenAddress
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    private let sessions: MCPHTTPSessions
    /// Ends idle sessions even when no request comes to do it.
    private let sweep: Task<Void, Never>

    /// Starts serving; returns once it listens.
    public init(dispatcher: ToolDispatcher, observations: ObservationStore?, listen: MCPListenAddress, token: String,
                allowedOrigins: [String], allowRemote: Bool) throws {
        let neuron = dispatcher.neuron.config
        if !listen.isLocal {
            guard neuron.privacyTier == .external else {
                throw HostObservations.Refusal(description: "neuron \(neuron.id) is tier \(neuron.privacyTier.rawValue): \(listen) is not on this machine, and \(Self.remoteRule); listen on 127.0.0.1 or unix:/path")
            }
            guard allowRemote else {
                throw HostObservations.Refusal(description: "\(listen) is reachable from other machines; pass --allow-remote to serve there (every request still needs the token)")
            }
        }
        if case .unix(let path) = listen {
            let directory = (path as NSString).deletingLastPathComponent
            guard BraneHome.isOwnDirectory(directory) else {
                throw HostObservations.Refusal(description: "\(directory) must be a directory of this user's that others cannot write: someone could replace the socket \(path)")
            }
            unlink(path)   // a stale socket of an earlier run; the directory is this user's alone
        }
        let sessions = MCPHTTPSessions(dispatcher: dispatcher, observations: observations)
        self.sessions = sessions
        sweep = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(60))
                await sessions.expireIdle()
            }
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let counter = ConnectionCounter()
        let gateBox = GateBox()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.writeBufferWaterMark, value: .init(low: 64 << 10, high: 256 << 10))
            .childChannelInitializer { channel in
                guard counter.admit() else { return channel.close() }
                channel.closeFuture.whenComplete { _ in counter.release() }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(MCPHTTPConnection(gate: gateBox, sessions: sessions))
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
            throw HostObservations.Refusal(description: "cannot listen on \(listen): \(error)")
        }
        switch listen {
        case .tcp(let host, _): address = .tcp(host: host, port: channel.localAddress?.port ?? 0)
        case .unix: address = listen
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
        if case .unix(let path) = address { unlink(path) }
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

private final class ConnectionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var open = 0
    func admit() -> Bool {
        lock.withLock {
            guard open < MCPHTTPServer.connectionLimit else { return false }
            open += 1
            return true
        }
    }
    func release() { lock.withLock { open -= 1 } }
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
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var refused = false
    private var deadline: Scheduled<Void>?
    private var idle: Scheduled<Void>?
    private var unsent = 0
    private var open = true

    init(gate: GateBox, sessions: MCPHTTPSessions) {
        self.gate = gate
        self.sessions = sessions
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
            body = context.channel.allocator.buffer(capacity: 0)
            refused = false
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
            let request = Self.request(head, body)
            guard let gate = gate.gate else { return respond(context, head, .error(statusCode: 503, .internalError("starting")), closing: true) }
            if let refusal = gate.refusal(method: request.method, path: request.path ?? "", headers: request.headers) {
                return respond(context, head, refusal, closing: false)
            }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let (sessions, eventLoop) = (sessions, context.eventLoop)
            Task {
                let response = await sessions.handle(request)
                Self.deliver(bound, on: eventLoop, head, response)
            }
        }
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

    private static func request(_ head: HTTPRequestHead, _ body: ByteBuffer) -> HTTPRequest {
        var headers: [String: String] = [:]
        for (name, value) in head.headers {
            headers[name] = headers[name].map { "\($0), \(value)" } ?? value
        }
        let path = String(head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        return HTTPRequest(method: head.method.rawValue, headers: headers,
                           body: body.readableBytes > 0 ? Data(body.readableBytesView) : nil, path: path)
    }

    private func writeHead(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, _ response: HTTPResponse, closing: Bool) {
        var head = HTTPResponseHead(version: request.version, status: HTTPResponseStatus(statusCode: response.statusCode))
        for (name, value) in response.headers { head.headers.add(name: name, value: value) }
        if closing { head.headers.replaceOrAdd(name: "connection", value: "close") }
        if case .stream = response {} else { head.headers.replaceOrAdd(name: "content-length", value: "\(response.bodyData?.count ?? 0)") }
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
    private static func deliver(_ bound: NIOLoopBound<(MCPHTTPConnection, ChannelHandlerContext)>, on eventLoop: any EventLoop,
                                _ request: HTTPRequestHead, _ response: HTTPResponse) {
        guard case .stream(let stream, _) = response else {
            return eventLoop.execute { bound.value.0.respond(bound.value.1, request, response, closing: false) }
        }
        eventLoop.execute {
            let (connection, context) = bound.value
            guard connection.open else { return }
            connection.writeHead(context, request, response, closing: false)
            context.flush()
        }
        Task {
            do {
                for try await chunk in stream {
                    let stillOpen = try await eventLoop.submit { () -> Bool in
                        let (connection, context) = bound.value
                        guard connection.open else { return false }
                        guard connection.unsent + chunk.count <= MCPHTTPServer.unsentLimit else {
                            context.close(promise: nil)   // a client that does not read its stream
                            return false
                        }
                        connection.unsent += chunk.count
                        context.writeAndFlush(connection.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: chunk))))).whenComplete { _ in
                            bound.value.0.unsent -= chunk.count
                        }
                        return true
                    }.get()
                    if !stillOpen { return }
                }
            } catch {}
            eventLoop.execute {
                let (connection, context) = bound.value
                guard connection.open else { return }
                let keepAlive = request.isKeepAlive
                context.writeAndFlush(connection.wrapOutboundOut(.end(nil))).whenComplete { _ in
                    if keepAlive { bound.value.0.armIdle(bound.value.1) } else { bound.value.1.close(promise: nil) }
                }
            }
        }
    }
}
