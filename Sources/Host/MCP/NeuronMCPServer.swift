import Foundation
import MCP

/// Serves a neuron's tools over MCP with the official Swift SDK: `tools/list` lists exactly the
/// tools the neuron allows, with their manifests' inputSchemas; `tools/call` validates, runs the
/// sandboxed plugin and returns its answer. Invalid arguments, a crash or a timeout become an
/// error result (`isError: true`) and the server keeps serving.
public enum NeuronMCPServer {
    public static let version = "0.5.0"

    /// Serves until the client closes its end of the transport.
    public static func serve(_ dispatcher: ToolDispatcher, transport: any Transport) async throws {
        let neuron = dispatcher.neuron.config
        let server = Server(name: "brane-\(neuron.id)", version: version, title: neuron.name,
                            instructions: neuron.instructions.isEmpty ? nil : neuron.instructions,
                            capabilities: .init(tools: .init(listChanged: false)))
        let tools = dispatcher.tools.map { Tool(name: $0.name, description: $0.description, inputSchema: Value($0.inputSchema)) }
        // Plugin calls block (one sandboxed round trip each), so they run on threads of their own,
        // not on the few threads of Swift's cooperative pool; concurrency is bounded by the pools.
        let calls = DispatchQueue(label: "brane.mcp.calls", attributes: .concurrent)
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: tools) }
        await server.withMethodHandler(CallToolWithJSON.self) { params in
            guard dispatcher.tool(named: params.name) != nil else {
                let hint = closestMatch(to: params.name, in: tools.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
                throw MCPError.invalidParams("unknown tool '\(params.name)'\(hint)")
            }
            let arguments = params.arguments ?? .object([:])
            let result = await withCheckedContinuation { continuation in
                calls.async { continuation.resume(returning: dispatcher.call(params.name, arguments: arguments)) }
            }
            return CallTool.Result(content: [.text(text: result.text, annotations: nil, _meta: nil)],
                                   structuredContent: result.structured.map(Value.init),
                                   isError: result.isError)
        }
        try await server.start(transport: transport)
        await server.waitUntilCompleted()
        await server.stop()
    }
}

/// `tools/call` with its arguments decoded straight into the host's JSONValue, which the
/// validator and plugins take. The SDK's `CallTool` decodes them as `Value`, whose decoder
/// compiles and runs a regular expression on every string (a third of a call's time, measured).
enum CallToolWithJSON: MCP.Method {
    static let name = CallTool.name

    struct Parameters: Codable, Hashable, Sendable {
        var name: String
        var arguments: JSONValue?
    }

    typealias Result = CallTool.Result
}
