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
        let neuron = dispatcher.neuron.config
        let offersResources = neuron.host.resources
        if offersResources && observations == nil {
            throw HostObservations.Refusal(description: "neuron \(neuron.id) offers resources but no observation store was opened for them")
        }
        let server = Server(name: "brane-\(neuron.id)", version: version, title: neuron.name,
                            instructions: neuron.instructions.isEmpty ? nil : neuron.instructions,
                            capabilities: .init(resources: offersResources ? .init(subscribe: true, listChanged: false) : nil,
                                                tools: .init(listChanged: false)))
        let tools = dispatcher.tools.map { Tool(name: $0.name, description: $0.description, inputSchema: Value($0.inputSchema)) }
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: tools) }
        let writer = LineWriter(STDOUT_FILENO)
        let resources = observations.flatMap { store in
            offersResources ? ResourceAnswerer(ObservationResources(HostObservations(neuron: dispatcher.neuron, store: store))) { notification in
                try? writer.write(Array(notification.serialized().utf8))
            } : nil
        }
        defer { resources?.stop() }
        let answerer = ToolCallAnswerer(dispatcher: dispatcher, writer: writer, resources: resources)
        let transport = BlockingStdioTransport(writer: writer) { line in triage(line, answerer) }
        try await server.start(transport: transport)
        await server.waitUntilCompleted()
        // End of input is not the end of the requests already read: each gets its answer first.
        answerer.finish()
        transport.waitForSDKAnswers(timeout: .seconds(10))
        await server.stop()
    }

    /// What to do with one line: the host answers calls, batches, cancellations and every error;
    /// the SDK gets the rest (initialize, ping, tools/list, notifications), each small.
    private static func triage(_ line: LineSplitter.Line, _ answerer: ToolCallAnswerer) -> BlockingStdioTransport.Disposition {
        let bytes: [UInt8]
        switch line {
        case .tooLong(let prefix, let length):
            answerer.reply(JSONRPCLine.errorResponse(id: JSONRPCLine.salvagedID(prefix), code: JSONRPCLine.invalidRequest,
                "Invalid Request: the message is \(length) bytes; a message may have at most \(BlockingStdioTransport.lineLimit >> 20) MiB"))
            return .answered
        case .complete(let complete): bytes = complete
        }
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
