import ArgumentParser
import BraneHost
import Foundation

struct MCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve a neuron's sandboxed tools to MCP clients.",
        subcommands: [Serve.self, Config.self, Token.self])

    /// `--http` and what goes with it, for `mcp serve` and `neuron run --mcp`.
    struct HTTPServing: ParsableArguments {
        @Option(help: ArgumentHelp("Serve MCP's Streamable HTTP transport instead of standard input and output: PORT or HOST:PORT "
                                   + "(loopback unless a host is given; port 0 picks a free one), or unix:/path/to.sock.", valueName: "address"))
        var http: String?
        @Option(name: .customLong("allow-origin"), help: ArgumentHelp("A browser page's Origin that may use the server, e.g. http://localhost:3000 (repeatable; none by default).", valueName: "origin"))
        var allowedOrigins: [String] = []
        @Flag(help: "Allow an --http address other machines can reach (tier-2 neurons only; every request still needs the token).")
        var allowRemote = false

        func validate() throws {
            if let http, MCPListenAddress(http) == nil {
                throw ValidationError("--http expects \(MCPListenAddress.forms); found \(UntrustedText.sanitized(http, limit: 80))")
            }
            if http == nil && (allowRemote || !allowedOrigins.isEmpty) { throw ValidationError("--allow-origin and --allow-remote go with --http") }
        }

        /// Starts the HTTP server when asked; says where on standard error.
        func start(_ dispatcher: ToolDispatcher, observations: ObservationStore?) throws -> MCPHTTPServer? {
            guard let http, let address = MCPListenAddress(http) else { return nil }
            let server: MCPHTTPServer
            do {
                server = try MCPHTTPServer(dispatcher: dispatcher, observations: observations, listen: address, token: try MCPToken.read(),
                                           allowedOrigins: allowedOrigins, allowRemote: allowRemote)
            } catch let refusal as MCPRefusal {
                throw CLIFailure("\(refusal)", .refused)
            } catch {
                throw CLIFailure("\(error)", .hostProblem)
            }
            warn("serving neuron \(dispatcher.neuron.config.id) over MCP Streamable HTTP at \(server.url) (Authorization: Bearer <`brane mcp token`>)")
            return server
        }
    }

    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Serve a neuron's tools over MCP: on standard input and output, or over HTTP with --http.",
            discussion: """
                Lists exactly the tools the neuron allows (specialists as consult_<id>), checks every \
                call's arguments against the tool's inputSchema before a plugin runs, and answers a \
                plugin crash or timeout with an error result while it keeps serving. Calls run \
                concurrently up to each tool's pool size. Logs go to standard error. A neuron whose \
                file has a host: section also gets the host's own tools over its readings, assets and \
                alerts, and with host.resources: true those as MCP resources a client can subscribe to \
                (docs/neurons.md, "Host tools and resources").

                Claude Desktop, IDEs and other MCP clients start it from their mcpServers config:
                  {"mcpServers": {"sports-medicine": {"command": "brane",
                     "args": ["mcp", "serve", "--neuron", "/path/to/sports-medicine.yaml"]}}}

                With --http it speaks MCP's Streamable HTTP transport instead, until SIGINT or SIGTERM: \
                every request needs the bearer token `brane mcp token` prints; a browser page's Origin is \
                refused unless listed with --allow-origin; the address is loopback unless a host is \
                given, and a tier-0 or tier-1 neuron is never served beyond loopback or a unix socket.
                  brane mcp serve --neuron examples/neurons/sports-medicine.yaml --http 8765
                  brane mcp config --client vscode --neuron examples/neurons/sports-medicine.yaml --http 8765
                """)

        @Option(help: "The neuron file (or id in $BRANE_HOME/neurons) whose tools to serve.") var neuron: String
        @OptionGroup var search: NeuronCommand.PluginSearch
        @OptionGroup var serving: HTTPServing

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
            if let server = try serving.start(dispatcher, observations: observations) {
                defer { server.stop() }
                Signals.install()
                while !Signals.stopRequested { Thread.sleep(forTimeInterval: 0.1) }
                return
            }
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
            commandName: "config",
            abstract: "Print the MCP client configuration that starts this neuron's server.",
            discussion: """
                Paste the output into the client's configuration:
                  claude-desktop  claude_desktop_config.json (~/.config/Claude/ on Linux): "mcpServers"
                  vscode          .vscode/mcp.json in the workspace: "servers", each with "type": "stdio"
                  cursor          ~/.cursor/mcp.json (or .cursor/mcp.json in a project): "mcpServers"
                The command is this brane's own absolute path, the neuron file's absolute path, and \
                BRANE_HOME as this shell has it, so the client starts the same brane with the same data.

                  brane mcp config --client vscode --neuron examples/neurons/sports-medicine.yaml > .vscode/mcp.json

                With --http ADDRESS it prints the form for a server already started with \
                `brane mcp serve --http ADDRESS`: the URL and the Authorization header. VS Code's form asks \
                for the token when it connects (an input, so the workspace file holds no secret); \
                Cursor's form holds the token (~/.cursor/mcp.json is yours alone). Claude Desktop's file \
                takes commands only: give it the URL as a custom connector instead.
                """)

        @Option(help: "The client: \(Client.allCases.map(\.rawValue).joined(separator: ", ")).") var client: Client
        @Option(help: "The neuron file (or id in $BRANE_HOME/neurons) whose tools the client is to get.") var neuron: String
        @Flag(name: .customLong("run"), help: "Run the whole neuron while the client is connected (sensors, scanners, rules): `neuron run --mcp`.")
        var wholeNeuron = false
        @Option(help: ArgumentHelp("The address a `brane mcp serve --http` of this neuron listens on: print the URL form.", valueName: "address"))
        var http: String?
        @OptionGroup var search: NeuronCommand.PluginSearch

        func run() throws {
            let resolved = try loadNeuron(neuron, search.locator)   // a neuron that does not validate is no snippet
            if let http { return try printHTTPForm(resolved, http) }
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

        private func printHTTPForm(_ resolved: ResolvedNeuron, _ text: String) throws {
            guard let address = MCPListenAddress(text) else {
                throw ValidationError("--http expects \(MCPListenAddress.forms); found \(UntrustedText.sanitized(text, limit: 80))")
            }
            guard !wholeNeuron else {
                throw CLIFailure("--run has no effect with --http: the client connects to a server you start, so start it as `brane neuron run \(resolved.file) --mcp --http \(text)`", .invalidInput)
            }
            guard case .tcp(let host, let port) = address, port != 0 else {
                throw CLIFailure("clients connect to a URL: give --http the HOST:PORT the server listens on (a unix socket or port 0 has no URL to print)", .invalidInput)
            }
            guard !["0.0.0.0", "::"].contains(host) else {
                throw CLIFailure("\(host) is where a server listens, not an address to connect to: give --http the host clients reach it at", .invalidInput)
            }
            // A snippet for an address the server would refuse would only fail later.
            if let refusal = MCPHTTPServer.refusal(serving: resolved, at: address, allowRemote: true) { throw CLIFailure(refusal, .refused) }
            let id = resolved.config.id
            let url = JSONValue.string("http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(MCPHTTPGate.path)")
            let document: JSONValue
            switch client {
            case .claudeDesktop:
                throw CLIFailure("Claude Desktop's configuration file takes commands, not URLs: add \(url.stringValue!) as a custom connector in its settings "
                                 + "(header Authorization: Bearer <`brane mcp token`>), or leave out --http for the command form", .invalidInput)
            case .vscode:
                document = ["inputs": [["type": "promptString", "id": "brane-token", "password": true,
                                        "description": .string("Brane's MCP token (`brane mcp token` prints it)")]],
                            "servers": [.init(stringLiteral: id): ["type": "http", "url": url, "headers": ["Authorization": "Bearer ${input:brane-token}"]]]]
            case .cursor:
                document = ["mcpServers": [.init(stringLiteral: id): ["url": url, "headers": ["Authorization": .string("Bearer \(try MCPToken.read())")]]]]
            }
            print(document.serialized(pretty: true))
        }
    }

    /// The bearer token `mcp serve --http` requires, for a client's configuration.
    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "token",
            abstract: "Print the bearer token MCP clients send to `brane mcp serve --http`.",
            discussion: """
                The token is 32 random bytes kept in $BRANE_HOME/mcp-token (mode 0600), made on first use. \
                Clients send it on every request as `Authorization: Bearer <token>`. To replace it, move \
                the file aside: the next `mcp serve --http` makes a new one, and clients need the new token.
                """)

        func run() throws {
            do { print(try MCPToken.read()) } catch { throw CLIFailure("\(error)", .hostProblem) }
        }
    }
}

