import ArgumentParser
import BraneHost
import Foundation

struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve a neuron's sandboxed tools to MCP clients.",
        subcommands: [Serve.self, Config.self])

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
            let observations = resolved.config.host.readsObservations ? try openObservationStore() : nil
            do { dispatcher = try ToolDispatcher(neuron: resolved, runner: runner, observations: observations, onLog: { id, line in warn("[\(id)] \(line.message)") }) } catch { throw CLIFailure("\(error)", .hostProblem) }
            defer { dispatcher.stop() }
            let finished = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var failure: Error?
            Task {
                do { try await NeuronMCPServer.serve(dispatcher, observations: observations) } catch { failure = error }
                finished.signal()
            }
            finished.wait()
            if let failure { throw CLIFailure("MCP server stopped: \(failure)", .hostProblem) }
        }
    }

    /// The snippet an MCP client's configuration takes to start `brane mcp serve` for a neuron.
    struct Config: ParsableCommand {
        enum Client: String, ExpressibleByArgument, CaseIterable {
            case claudeDesktop = "claude-desktop", vscode, cursor
        }

        static let configuration = CommandConfiguration(
            abstract: "Print the MCP client configuration that starts this neuron's server.",
            discussion: """
                Paste the output into the client's configuration:
                  claude-desktop  claude_desktop_config.json (~/.config/Claude/ on Linux): "mcpServers"
                  vscode          .vscode/mcp.json in the workspace: "servers", each with "type": "stdio"
                  cursor          ~/.cursor/mcp.json (or .cursor/mcp.json in a project): "mcpServers"
                The command is this brane's own absolute path, the neuron file's absolute path, and
                BRANE_HOME as this shell has it, so the client starts the same brane with the same data.

                  brane mcp config --client vscode --neuron examples/neurons/sports-medicine.yaml > .vscode/mcp.json
                """)

        @Option(help: "The client: \(Client.allCases.map(\.rawValue).joined(separator: ", ")).") var client: Client
        @Option(help: "The neuron file (or id in $BRANE_HOME/neurons) whose tools the client is to get.") var neuron: String
        @Flag(name: .customLong("run"), help: "Run the whole neuron while the client is connected (sensors, scanners, rules): `neuron run --mcp`.")
        var wholeNeuron = false
        @OptionGroup var search: NeuronCommand.PluginSearch

        func run() throws {
            let resolved = try loadNeuron(neuron, search.locator)   // a neuron that does not validate is no snippet
            let file = URL(fileURLWithPath: resolved.file).standardizedFileURL.path
            let brane = ResourceLocator.executablePath
            let arguments: [JSONValue] = (wholeNeuron ? ["neuron", "run", .string(file), "--mcp"] : ["mcp", "serve", "--neuron", .string(file)])
                + search.directories.flatMap { ["--plugins", .string(URL(fileURLWithPath: $0).standardizedFileURL.path)] }
            var server: [String: JSONValue] = ["command": .string(brane), "args": .array(arguments),
                                               "env": ["BRANE_HOME": .string(URL(fileURLWithPath: BraneHome.current.root).standardizedFileURL.path)]]
            let key: String
            switch client {
            case .vscode:
                server["type"] = "stdio"
                key = "servers"
            case .claudeDesktop, .cursor:
                key = "mcpServers"
            }
            print(JSONValue.object([key: .object([resolved.config.id: .object(server)])]).serialized(pretty: true))
        }
    }
}

