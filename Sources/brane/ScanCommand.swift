import ArgumentParser
import BraneHost
import Foundation

struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Discover assets with scanners and record them in the asset catalog.",
        discussion: """
            Each scanner runs in its own sandbox; what it finds goes into $BRANE_HOME/observations.sqlite with a \
            stable asset id, first and last seen, and what changed since the previous scan of that scanner. \
            With no scanner named, every installed scanner runs.

              brane scan
              brane scan Plugins/com.brane.scanner.ports com.brane.scanner.machine
              brane assets diff
            """)

    @Argument(help: "Scanners: directories or installed ids (default: every installed scanner).") var scanners: [String] = []
    @Flag(help: "Print the scan summaries as JSON.") var json = false

    func run() throws {
        var targets = scanners
        if targets.isEmpty {
            targets = try marketplace { try openMarketplace().registry.receipts() }.filter { $0.kind == PluginKind.scanner.rawValue }.map(\.pluginID)
            guard !targets.isEmpty else {
                throw CLIFailure("no scanners installed; name one (e.g. Plugins/com.brane.scanner.machine) or `brane plugin install com.brane.scanner.machine`", .invalidInput)
            }
        }
        let store = try openObservationStore()
        let runner = try runnerPath()
        var summaries: [ScanSummary] = [], failed = false
        for target in targets {
            let bundle = try openBundle(target)
            guard bundle.manifest.kind == .scanner else { throw CLIFailure("\(bundle.manifest.id) is a \(bundle.manifest.kind.rawValue), not a scanner", .invalidInput) }
            let plugin = SupervisedPlugin(plan: try makePlan(bundle), runner: runner, onLog: PluginLogCollector(echo: !json).record)
            defer { plugin.stop() }
            do {
                let summary = try Scanning.scan(plugin, into: store)
                summaries.append(summary)
                if !json {
                    let counts = Dictionary(grouping: summary.changes, by: \.change).mapValues(\.count)
                    print("\(summary.scanner): \(summary.assets) assets — \(counts[.added] ?? 0) added, \(counts[.changed] ?? 0) changed, \(counts[.removed] ?? 0) removed (scan \(summary.scanID))")
                    for note in summary.notes { print("  note: \(note)") }
                }
            } catch {
                failed = true
                warn("brane: \(error)")
            }
        }
        if json { print(encodeJSON(summaries)) }
        if failed { throw ExitCode.pluginError }
    }
}

struct AssetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assets",
        abstract: "Browse the asset catalog that `brane scan` builds.",
        subcommands: [List.self, Show.self, Diff.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List assets (those the latest scans still found).")
        @Option(help: "Only this kind: machine, process, port, container.") var kind: String?
        @Flag(help: "Include assets that are gone.") var all = false
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let assets = try openObservationStore().assets(kind: kind, includeRemoved: all)
            printJSONOrText(json: json, assets) {
                assets.isEmpty ? "no assets recorded; run `brane scan`" : table(
                    ["ID", "KIND", "NAME", "FIRST SEEN", "LAST SEEN"] + (all ? ["PRESENT"] : []),
                    assets.map { [$0.id, $0.kind, String($0.name.prefix(48)), $0.firstSeen.formatted(.iso8601), $0.lastSeen.formatted(.iso8601)]
                        + (all ? [$0.present ? "yes" : "no"] : []) })
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one asset and its properties.")
        @Argument(help: "The asset id, as `brane assets list` shows it.") var id: String
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            guard let asset = try openObservationStore().asset(id) else { throw CLIFailure("no asset \(id); `brane assets list` shows the ids", .invalidInput) }
            printJSONOrText(json: json, asset) {
                (["\(asset.name) (\(asset.kind), \(asset.id))", "  scanner: \(asset.scanner)", "  first seen: \(asset.firstSeen.formatted(.iso8601))",
                  "  last seen: \(asset.lastSeen.formatted(.iso8601))\(asset.present ? "" : " (gone)")"]
                 + asset.properties.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }).joined(separator: "\n")
            }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "diff", abstract: "What the latest scan of each scanner (or one scan) found changed.")
        @Option(help: "One scan's number, as `brane scan` prints it.") var scan: Int64?
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let changes = try openObservationStore().assetChanges(scanID: scan)
            printJSONOrText(json: json, changes) {
                changes.isEmpty ? "no changes" : changes.map { change in
                    let detail = change.detail.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
                    return "\(change.change.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(change.assetID)\(detail.isEmpty ? "" : "  \(detail)")"
                }.joined(separator: "\n")
            }
        }
    }
}

func openObservationStore() throws -> ObservationStore {
    do { return try ObservationStore() } catch { throw CLIFailure("cannot open the observation store: \(error)", .hostProblem) }
}
