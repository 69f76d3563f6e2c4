import ArgumentParser
import BraneHost
import Foundation

struct NeuronCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "neuron",
        abstract: "Validate, inspect, chat with and run neurons (agents described in YAML).",
        discussion: """
            A neuron is a model plus the plugins it may use, at a privacy tier (docs/neurons.md; \
            editors validate files with docs/schemas/neuron.schema.json). Plugins are found among \
            installed ones, and in directories given with --plugins (e.g. a source checkout's Plugins/).

              brane neuron validate examples/neurons/*.yaml
              brane neuron show examples/neurons/sports-medicine.yaml
              brane neuron chat examples/neurons/sports-medicine.yaml
              brane neuron run examples/neurons/sports-medicine.yaml --duration 1h
              brane neuron alerts sports-medicine
              brane mcp serve --neuron examples/neurons/sports-medicine.yaml
            """,
        subcommands: [Validate.self, List.self, Show.self, Chat.self, Run.self, Alerts.self])

    struct PluginSearch: ParsableArguments {
        @Option(name: .customLong("plugins"), help: "A directory of plugin directories to search before installed plugins (repeatable).")
        var directories: [String] = []

        var locator: PluginLocator {
            .includingInstalled(searchDirectories: directories)
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Check neuron files: fields, plugins, tools and privacy rules. Exits 2 on any error.",
            discussion: """
                Every problem is reported as file:line:column: severity: field.path: message, with \
                "did you mean" for misspelled keys, values and plugin ids. Unknown keys are warnings; \
                nothing is dropped silently. Use it in CI: the exit status is 0 only when every file is valid.
                """)

        @Argument(help: "Neuron YAML files.") var files: [String]
        @OptionGroup var search: PluginSearch
        @Flag(help: "Print a JSON report for scripts.") var json = false

        struct FileReport: Encodable {
            var file: String
            var valid: Bool
            var neuron: String?
            var tier: Int?
            var diagnostics: [Diagnostic]
        }

        func run() throws {
            let locator = search.locator
            var reports: [FileReport] = []
            for file in files {
                do {
                    let (neuron, warnings) = try NeuronLoader.load(path: file, plugins: locator)
                    reports.append(FileReport(file: file, valid: true, neuron: neuron.config.id, tier: neuron.config.privacyTier.rawValue, diagnostics: warnings))
                } catch let failure as ValidationFailure {
                    reports.append(FileReport(file: file, valid: false, diagnostics: failure.diagnostics))
                }
            }
            if json {
                print(encodeJSON(reports))
            } else {
                for report in reports {
                    for diagnostic in report.diagnostics { print(diagnostic) }
                    if report.valid {
                        print("\(report.file): valid — neuron \(report.neuron!) (tier \(report.tier!))")
                    } else {
                        let count = report.diagnostics.filter { $0.severity == .error }.count
                        print("\(report.file): \(count) error\(count == 1 ? "" : "s")")
                    }
                }
            }
            if reports.contains(where: { !$0.valid }) { throw ExitCode.invalidInput }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List the neuron files in a directory and whether each is valid.",
            discussion: "The directory defaults to $BRANE_HOME/neurons.")

        @Option(help: "The directory to list.") var dir: String?
        @OptionGroup var search: PluginSearch
        @Flag(help: "Print JSON for scripts.") var json = false

        struct Row: Encodable {
            var file: String
            var id: String?
            var name: String?
            var tier: Int?
            var model: String?
            var plugins: [String]
            var valid: Bool
            var firstError: String?
        }

        func run() throws {
            let directory = dir ?? BraneHome.current.neurons
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { "\(directory)/\($0)" }
            let locator = search.locator
            let rows = files.map { file -> Row in
                do {
                    let config = try NeuronLoader.load(path: file, plugins: locator).neuron.config
                    return Row(file: file, id: config.id, name: config.name, tier: config.privacyTier.rawValue,
                               model: "\(config.model.model) @ \(config.model.endpoint)", plugins: config.allPlugins.map(\.id), valid: true)
                } catch {
                    let first = (error as? ValidationFailure)?.errors.first?.description ?? "\(error)"
                    return Row(file: file, plugins: [], valid: false, firstError: first)
                }
            }
            if json { print(encodeJSON(rows)); return }
            if rows.isEmpty { print("no neuron files in \(directory)"); return }
            for row in rows {
                if row.valid {
                    print("\(row.id!)  tier \(row.tier!)  \(row.name!)  — \(row.model!); \(row.plugins.count) plugins  (\(row.file))")
                } else {
                    print("INVALID  \(row.file)\n  \(row.firstError!)")
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show a neuron resolved: its model, each plugin's tier and its effective sandbox.")

        @Argument(help: "A neuron file, or the id of a neuron in $BRANE_HOME/neurons.") var neuron: String
        @OptionGroup var search: PluginSearch
        @Flag(help: "Print JSON for scripts.") var json = false

        struct Report: Encodable {
            var neuron: NeuronConfig
            var file: String
            var tools: [String]
            var sandboxes: [SandboxReport]
        }

        func run() throws {
            let resolved = try loadNeuron(neuron, search.locator)
            let sandboxes = try resolved.config.allPlugins.map { use in
                do { return SandboxReport(plan: try resolved.plan(for: use)) } catch { throw CLIFailure("\(error)", .hostProblem) }
            }
            if json {
                print(encodeJSON(Report(neuron: resolved.config, file: resolved.file, tools: resolved.exposedTools.map(\.name), sandboxes: sandboxes)))
                return
            }
            let c = resolved.config
            print("\(c.id) — \(c.name) (tier \(c.privacyTier.rawValue): \(c.privacyTier))")
            if !c.description.isEmpty { print("  \(c.description)") }
            let fallback = c.model.fallbackEndpoint.map { ", fallback \($0) (\($0.isLocal ? "local" : "remote"))" } ?? ""
            print("  model: \(c.model.model) via \(c.model.provider.rawValue) at \(c.model.endpoint) (\(c.model.endpoint.isLocal ? "local" : "remote"))\(fallback); tool calling: \(c.model.toolCalling.rawValue)")
            print("  limits: \(c.limits.maxTurns) turns; \(c.limits.dailyTokenBudget.map { "\($0) tokens a day" } ?? "no token budget")\(c.limits.callTimeoutMilliseconds.map { "; calls capped at \($0) ms" } ?? "")")
            print("  tools offered: \(resolved.exposedTools.map(\.name).joined(separator: ", "))")
            for report in sandboxes { print("\n" + report.text) }
        }
    }
}

/// A neuron named by file, or by id among $BRANE_HOME/neurons; exits 2 with every diagnostic when invalid.
func loadNeuron(_ target: String, _ locator: PluginLocator) throws -> ResolvedNeuron {
    var file = target
    if !FileManager.default.fileExists(atPath: target) {
        let directory = BraneHome.current.neurons
        let candidates = ["\(directory)/\(target).yaml", "\(directory)/\(target).yml"]
        guard let found = candidates.first(where: FileManager.default.fileExists(atPath:)) else {
            throw CLIFailure("\(target) is neither a neuron file nor a neuron in \(directory)", .invalidInput)
        }
        file = found
    }
    do {
        let (neuron, warnings) = try NeuronLoader.load(path: file, plugins: locator)
        for warning in warnings { warn("\(warning)") }
        return neuron
    } catch let failure as ValidationFailure {
        throw CLIFailure("invalid neuron:\n\(failure)", .invalidInput)
    } catch {
        throw CLIFailure("\(error)", .invalidInput)
    }
}
