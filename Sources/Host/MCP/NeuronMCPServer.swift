import Foundation
import MCP

/// Serves a neuron's tools over MCP with the official Swift SDK: `tools/list` lists exactly the
/// tools the neuron allows, with their manifests' inputSchemas; `tools/call` (`ToolCallAnswerer`,
/// or the SDK's handler inside a batch) validates, queues behind the plugin's other calls, runs
/// the sandboxed plugin and returns its answer. Invalid arguments, a crash or a timeout become
/// an error result (`isError: true`) and the server keeps serving.
public enum NeuronMCPServer {
    public static let version = "0.6.0"

    /// Serves on standard input and output until the client closes its end (or stops reading:
    /// SIGPIPE is ignored, so EPIPE ends the session like end of input).
    public static func serve(_ dispatcher: ToolDispatcher) async throws {
        signal(SIGPIPE, SIG_IGN)
        let neuron = dispatcher.neuron.config
        let server = Server(name: "brane-\(neuron.id)", version: version, title: neuron.name,
                            instructions: neuron.instructions.isEmpty ? nil : neuron.instructions,
                            capabilities: .init(tools: .init(listChanged: false)))
        let tools = dispatcher.tools.map { Tool(name: $0.name, description: $0.description, inputSchema: Value($0.inputSchema)) }
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: tools) }
        // Single calls never reach the SDK (the transport hands them to the answerer); a call
        // inside a batch does, and is served by the same dispatcher and queues.
        await server.withMethodHandler(CallTool.self) { params in try await call(dispatcher, params) }
        let writer = LineWriter(STDOUT_FILENO)
        let answerer = ToolCallAnswerer(dispatcher: dispatcher, writer: writer)
        try await server.start(transport: BlockingStdioTransport(writer: writer) { line in triage(line, answerer) })
        await server.waitUntilCompleted()
        // End of input is not the end of the calls already read: each gets its answer first.
        answerer.finish()
        await server.stop()
    }

    /// True when the line was answered here; false hands it to the SDK.
    private static func triage(_ line: LineSplitter.Line, _ answerer: ToolCallAnswerer) -> Bool {
        switch line {
        case .tooLong(let prefix, let length):
            answerer.reply(JSONRPCLine.errorResponse(id: JSONRPCLine.salvagedID(prefix), code: JSONRPCLine.invalidRequest,
                "Invalid Request: the message is \(length) bytes; a message may have at most \(BlockingStdioTransport.lineLimit >> 20) MiB"))
            return true
        case .complete(let bytes):
            switch JSONRPCLine.classify(bytes) {
            case .invalid(let response):
                answerer.reply(response)
                return true
            case .toolCall(let id, let params):
                answerer.answer(id: id, params: params)
                return true
            case .cancelled(let id):
                if let id { answerer.cancel(id) }
                return false   // the SDK cancels the batch calls it runs
            case .ignored:
                return true
            case .forSDK:
                return false
            }
        }
    }

    private static func call(_ dispatcher: ToolDispatcher, _ params: CallTool.Parameters) async throws -> CallTool.Result {
        guard dispatcher.tool(named: params.name) != nil else {
            let hint = closestMatch(to: params.name, in: dispatcher.tools.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
            throw MCPError.invalidParams("unknown tool '\(UntrustedText.sanitized(params.name, limit: 128))'\(hint)")
        }
        let cancellation = CallCancellation()
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { answered in
                dispatcher.submit(params.name, arguments: JSONValue(MCP.Value.object(params.arguments ?? [:])), cancellation: cancellation) {
                    answered.resume(returning: $0)
                }
            }
        } onCancel: { cancellation.cancel() }
        try Task.checkCancellation()
        return CallTool.Result(content: [.text(text: result.text, annotations: nil, _meta: nil)],
                               structuredContent: result.structured.map(Value.init), isError: result.isError)
    }
}
