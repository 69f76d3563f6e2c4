import Foundation
import MCP

/// Serves a neuron's tools over MCP with the official Swift SDK: `tools/list` lists exactly the
/// tools the neuron allows, with their manifests' inputSchemas; `tools/call` (`ToolCallAnswerer`)
/// validates, queues behind the plugin's other calls, runs the sandboxed plugin and returns its
/// answer. Invalid arguments, a crash or a timeout become an error result (`isError: true`) and
/// the server keeps serving.
public enum NeuronMCPServer {
    public static let version = BraneRelease.version

    /// Serves on standard input and output until the client closes its end (or stops reading:
    /// SIGPIPE is ignored, so EPIPE ends the session like end of input). `observations` is the
    /// store the neuron's resources are read from; it is required when its `host:` section
    /// offers them.
    public static func serve(_ dispatcher: ToolDispatcher, observations: ObservationStore? = nil) async throws {
        signal(SIGPIPE, SIG_IGN)
        let writer = LineWriter(STDOUT_FILENO)
        let session = try await Session(dispatcher, observations: observations, sink: writer)
        defer { session.resources?.stop() }
        let transport = BlockingStdioTransport(writer: writer) { line in triage(line, session.answerer) }
        try await session.server.start(transport: transport)
        await session.server.waitUntilCompleted()
        // End of input is not the end of the requests already read: each gets its answer first.
        session.answerer.finish()
        transport.waitForSDKAnswers(timeout: .seconds(10))
        await session.server.stop()
    }

    /// One client's session, whatever carries it: the SDK's server (initialize, ping,
    /// tools/list), the host's answerer of calls and batches, and the resources when offered,
    /// all writing to `sink`.
    struct Session: Sendable {
        let server: Server
        let answerer: ToolCallAnswerer
        let resources: ResourceAnswerer?

        init(_ dispatcher: ToolDispatcher, observations: ObservationStore?, sink: any MessageSink) async throws {
            let neuron = dispatcher.neuron.config
            let offersResources = neuron.host.resources
            if offersResources && observations == nil {
                throw MCPRefusal("neuron \(neuron.id) offers resources but no observation store was opened for them")
            }
            server = Server(name: "brane-\(neuron.id)", version: version, title: neuron.name,
                            instructions: neuron.instructions.isEmpty ? nil : neuron.instructions,
                            capabilities: .init(resources: offersResources ? .init(subscribe: true, listChanged: false) : nil,
                                                tools: .init(listChanged: false)))
            resources = observations.flatMap { store in
                offersResources ? ResourceAnswerer(ObservationResources(HostObservations(neuron: dispatcher.neuron, store: store))) { notification in
                    try? sink.write(Array(notification.serialized().utf8))
                } : nil
            }
            answerer = ToolCallAnswerer(dispatcher: dispatcher, writer: sink, resources: resources)
            let tools = dispatcher.tools.map { Tool(name: $0.name, description: $0.description, inputSchema: Value($0.inputSchema)) }
            await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: tools) }
        }
    }

    /// What to do with one line: the host answers calls, batches, cancellations and every error;
    /// the SDK gets the rest (initialize, ping, tools/list, notifications), each small.
    private static func triage(_ line: LineSplitter.Line, _ answerer: ToolCallAnswerer) -> BlockingStdioTransport.Disposition {
        switch line {
        case .tooLong(let prefix, let length):
            answerer.reply(JSONRPCLine.errorResponse(id: JSONRPCLine.salvagedID(prefix), code: JSONRPCLine.invalidRequest,
                "Invalid Request: the message is \(length) bytes; a message may have at most \(BlockingStdioTransport.lineLimit >> 20) MiB"))
            return .answered
        case .complete(let bytes):
            return triage(bytes, answerer)
        }
    }

    /// What to do with one whole message (a line, an HTTP request's body).
    static func triage(_ bytes: [UInt8], _ answerer: ToolCallAnswerer) -> BlockingStdioTransport.Disposition {
        switch JSONRPCLine.classify(bytes) {
        case .invalid(let response), .single(.invalid(let response)):
            answerer.reply(response)
        case .single(.toolCall(let id, let params)):
            answerer.answer(id: id, params: params)
        case .single(.cancelled(let id)):
            if let id { answerer.cancel(id) }
        case .batch(let messages):
            answerer.answer(batch: messages)
        case .single(.ignored):
            break
        case .single(.request(let id, let method, let params)) where answerer.resources != nil && ResourceAnswerer.methods.contains(method):
            answerer.reply(answerer.resources!.answer(id: id, method: method, params: params))
        case .single(.request(let id, let method, _)):
            // The SDK serves only what this server registered; any other method is answered here, its name sanitised.
            guard ["initialize", "ping", "tools/list"].contains(method) else {
                answerer.reply(JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.methodNotFound, "Method not found: \(UntrustedText.sanitized(method, limit: 128))"))
                return .answered
            }
            guard bytes.count <= BlockingStdioTransport.sdkMessageLimit else {
                answerer.reply(JSONRPCLine.errorResponse(id: id, code: JSONRPCLine.invalidRequest,
                    "Invalid Request: \(UntrustedText.sanitized(method, limit: 64)) is \(bytes.count) bytes; it may have at most \(BlockingStdioTransport.sdkMessageLimit >> 10) KiB"))
                return .answered
            }
            return .forSDK(expecting: id)
        case .single(.notification):
            // A notification is never answered; one too large to be real is dropped.
            return bytes.count <= BlockingStdioTransport.sdkMessageLimit ? .forSDK(expecting: nil) : .answered
        }
        return .answered
    }
}

/// Why an MCP server will not serve as asked (where it would listen, what it lacks), in words
/// that say what to do instead.
public struct MCPRefusal: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
