import ArgumentParser
import BraneHost
import Foundation

struct PluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugin",
        abstract: "Install, inspect and run plugins.",
        discussion: """
            A plugin is named by its directory (a source checkout) or, once installed, by its id:

              brane plugin install com.brane.units@^0.1
              brane tool call com.brane.units convert_units --args '{"value":5,"from":"mg","to":"g"}'
            """,
        subcommands: [New.self, Install.self, List.self, Info.self, Search.self, Upgrade.self, Remove.self,
                      Pin.self, Unpin.self, Verify.self, Inspect.self, Run.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inspect",
            abstract: "Show a plugin's manifest and the exact sandbox it would run in.",
            discussion: "Nothing is executed. Example: brane plugin inspect Plugins/com.brane.units")

        @Argument(help: "A plugin directory (holding manifest.yaml), or an installed plugin's id.") var directory: String
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let bundle = try openBundle(directory)
            let plan = try makePlan(bundle)
            let report = SandboxReport(plan: plan)
            if json {
                print(encodeJSON(report))
            } else {
                print(report.text)
            }
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run one plugin method in a fresh sandboxed instance.",
            discussion: """
                Examples:
                  brane plugin run Plugins/com.brane.sysinfo sensor/sample
                  brane plugin run Plugins/com.brane.units tools/call \\
                      --input '{"name":"convert_units","arguments":{"value":5,"from":"mg","to":"g"}}'
                """)

        @Argument(help: "A plugin directory (holding manifest.yaml), or an installed plugin's id.") var directory: String
        @Argument(help: "The method: tools/call, sensor/sample, scanner/scan, specialist/consult, …") var method: String
        @Option(help: "The input JSON, @FILE to read it from a file, or - for standard input.") var input = "{}"
        @Flag(help: "Print a JSON envelope {ok, result|error, pluginLog} for scripts.") var json = false

        func run() throws {
            let bundle = try openBundle(directory)
            let bytes = try readInput(input)
            try invoke(bundle: bundle, method: method, input: bytes, json: json)
        }
    }
}

struct ToolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tool",
        abstract: "Call MCP tools of synapse plugins.",
        subcommands: [Call.self])

    struct Call: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "call",
            abstract: "Validate arguments against the tool's inputSchema, then call it sandboxed.",
            discussion: """
                Arguments that do not match the schema, and URLs (format: uri) to a host:port the \
                plugin's manifest does not declare, are refused before the plugin runs.

                Example: brane tool call Plugins/com.brane.units convert_units --args '{"value":98.6,"from":"degF","to":"degC"}'
                """)

        @Argument(help: "A plugin directory (holding manifest.yaml), or an installed plugin's id.") var directory: String
        @Argument(help: "The tool name, as listed by `brane plugin inspect`.") var tool: String
        @Option(help: "The arguments as a JSON object, @FILE, or - for standard input.") var args = "{}"
        @Flag(help: "Print a JSON envelope for scripts.") var json = false

        func run() throws {
            let bundle = try openBundle(directory)
            let arguments: JSONValue, text = try readInput(args)
            do {
                arguments = try JSONValue(parsing: text)
            } catch {
                throw CLIFailure("--args is not valid JSON: \(error)", .invalidInput)
            }
            let request: ToolRequest
            do { request = try ToolRequest(manifest: bundle.manifest, tool: tool, arguments: arguments) } catch { throw CLIFailure("\(error)", .invalidInput) }
            try invoke(bundle: bundle, method: "tools/call", input: request.input, json: json)
        }
    }
}
