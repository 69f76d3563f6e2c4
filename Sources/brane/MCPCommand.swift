import ArgumentParser
import BraneHost
import Foundation

struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve a neuron's sandboxed tools to MCP clients.",
        subcommands: [Serve.self])

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve a neuron's tools over MCP on standard input and output.",
            discussion: """
                Lists exactly the tools the neuron allows (specialists as consult_<id>), checks every \
                call's arguments against the tool's inputSchema before a plugin runs, and answers a \
                plugin crash or timeout with an error result while it keeps serving. Calls run \
                concurrently up to each tool's pool size. Logs go to standard error.

                Claude Desktop, IDEs and other MCP clients start it from their mcpServers config:
                  {"mcpServers": {"sports-medicine": {"command": "brane",
                     "args": ["mcp", "serve", "--neuron", "/path/to/sports-medicine.yaml"]}}}
                """)

        @Option(help: "The neuron file (or id in $BRANE_HOME/neurons) whose tools to serve.") var neuron: String
        @OptionGroup var search: NeuronCommand.PluginSearch

        func run() throws {
            // From the start: a client that closed stdout or stderr must not kill the server before it serves.
            signal(SIGPIPE, SIG_IGN)
            let resolved = try loadNeuron(neuron, search.locator)
            if resolved.config.privacyTier == .sensitive {
                warn("neuron \(resolved.config.id) is tier 0: tool results go to the MCP client; connect only a client whose model runs on this machine")
            }
            let registration = registerRunning(resolved, command: "mcp serve")
            defer { withExtendedLifetime(registration) {} }
            let dispatcher: ToolDispatcher, runner = try runnerPath()
            do { dispatcher = try ToolDispatcher(neuron: resolved, runner: runner, onLog: { id, line in warn("[\(id)] \(line.message)") }) } catch { throw CLIFailure("\(error)", .hostProblem) }
            defer { dispatcher.stop() }
            let finished = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var failure: Error?
            Task {
                do { try await NeuronMCPServer.serve(dispatcher) } catch { failure = error }
                finished.signal()
            }
            finished.wait()
            if let failure { throw CLIFailure("MCP server stopped: \(failure)", .hostProblem) }
        }
    }
}
