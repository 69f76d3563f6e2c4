import Foundation
import MCP

/// Serves a neuron's tools over MCP with the official Swift SDK: `tools/list` lists exactly the
/// tools the neuron allows, with their manifests' inputSchemas; `tools/call` (`ToolCallAnswerer`)
/// validates, runs the sandboxed plugin and returns its answer. Invalid arguments, a crash or a
/// timeout become an error result (`isError: true`) and the server keeps serving.
public enum NeuronMCPServer {
    public static let version = "0.5.0"

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
        // tools/call never reaches the SDK: the transport hands it to the answerer.
        let writer = LineWriter(STDOUT_FILENO)
        let answerer = ToolCallAnswerer(dispatcher: dispatcher, writer: writer)
        try await server.start(transport: BlockingStdioTransport(writer: writer, intercept: answerer.answer))
        await server.waitUntilCompleted()
        // End of input is not the end of the calls already read: each gets its answer first.
        answerer.finish()
        await server.stop()
    }
}
