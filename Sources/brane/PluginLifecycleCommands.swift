import ArgumentParser
import BraneHost
import Foundation

/// `brane plugin install|list|info|search|upgrade|remove|pin|unpin|verify`.
extension PluginCommand {
    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install",
            abstract: "Install a plugin from an added index, verified end to end.",
            discussion: """
                The archive is fetched (capped at its declared size), checked against the size and \
                SHA-256 in the signed index, unpacked into a staging directory (absolute paths, "..", \
                links that leave the directory and device files are refused), its manifest, ABI and \
                tier are checked, and only then is it moved into place. Any failure leaves the \
                previous version installed and working.
                Versions: com.x (newest), com.x@1.2.3, com.x@^1.2, com.x@~1.2.3, 'com.x@>=1.0 <2.0'.
                """)

        @Argument(help: "id[@version-requirement]") var plugin: String
        @Option(help: "Install from this index only.") var index: String?
        @Flag(help: "Accept an index past its expiry date (an air-gapped mirror, knowingly).") var allowExpired = false
        @Option(name: .customLong("allow-path"), help: ArgumentHelp(
            "Let the plugin reach this absolute path beyond what installed plugins may (repeatable; shown and audited).",
            discussion: "Without it, absolute reads are limited to \(PathPolicy.readableSystemPaths.joined(separator: ", ")) and absolute writes to nowhere."))
        var allowPath: [String] = []
        @Flag(help: "Print the outcome as JSON; no progress output.") var json = false

        func run() throws {
            let (id, requirement) = try marketplace { try parseSpec(plugin) }
            let market = try openMarketplace()
            market.onStep = progressPrinter(enabled: !json)
            if !allowPath.isEmpty && !json { warn("brane: granting \(id) access to \(allowPath.joined(separator: ", ")) (recorded in the audit log)") }
            let outcome = try marketplace { try market.install(id, requirement: requirement, index: index, allowExpired: allowExpired, grantedPaths: allowPath) }
            printJSONOrText(json: json, outcome) { describe(outcome) }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List installed plugins.")
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let receipts = try marketplace { try openMarketplace().registry.receipts() }
            let rows = receipts.map { InstalledRow($0) }
            printJSONOrText(json: json, rows) {
                rows.isEmpty ? "no plugins installed (`brane plugin search` shows what the added indexes offer)"
                    : table(["ID", "VERSION", "KIND", "TIER", "INDEX", "PINNED"],
                            rows.map { [$0.id, $0.version, $0.kind, String($0.tier), $0.index, $0.pinned ? "pinned" : ""] })
            }
        }
    }

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "info",
            abstract: "Show an installed plugin's receipt and the releases its index offers.",
            discussion: "Works from the receipt, so it answers even after the plugin has left its index.")
        @Argument(help: "An installed or indexed plugin id.") var plugin: String
        @Flag(help: "Print JSON for scripts.") var json = false

        struct Report: Encodable {
            var installed: InstalledRow?
            var manifest: String?
            var files: Int?
            var available: [String]
        }

        func run() throws {
            let market = try openMarketplace()
            let report = try marketplace { () throws -> Report in
                let receipt = try market.registry.receipt(plugin)
                let releases = try market.registry.releases(of: plugin)
                guard receipt != nil || !releases.isEmpty else { throw try market.notInstalledOrIndexed(plugin) }
                return Report(installed: receipt.map(InstalledRow.init), manifest: receipt?.manifest,
                              files: try receipt.map { try market.registry.files(of: $0.pluginID).count },
                              available: releases.map { $0.yanked ? "\($0.version) (yanked)" : $0.version })
            }
            printJSONOrText(json: json, report) {
                var lines = [String]()
                if let r = report.installed {
                    lines += ["\(r.id) \(r.version) installed\(r.pinned ? ", pinned" : "")",
                              "  kind \(r.kind), tier \(r.tier), from index \(r.index)",
                              "  sha256 \(r.sha256)", "  path \(r.path)", "  installed \(r.installedAt)", "  files \(report.files ?? 0)"]
                } else {
                    lines.append("\(plugin) is not installed")
                }
                lines.append("  available: \(report.available.isEmpty ? "none (no longer in any added index)" : report.available.joined(separator: ", "))")
                return lines.map { UntrustedText.sanitized($0) }.joined(separator: "\n")
            }
        }
    }

    struct Search: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "search",
            abstract: "Search the added indexes by id, description and tool names.",
            discussion: "Every word must match (case-insensitive). Example: brane plugin search dose convert")
        @Argument(help: "Words to look for; none lists everything.") var words: [String] = []
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let hits = try marketplace { try openMarketplace().search(words.joined(separator: " ")) }
            printJSONOrText(json: json, hits) {
                hits.isEmpty ? "nothing matches" : table(["ID", "VERSION", "KIND", "TIER", "TOOLS", "DESCRIPTION"],
                                                         hits.map { [$0.id, $0.version, $0.kind, String($0.tier), $0.tools.joined(separator: ","), $0.description] })
            }
        }
    }

    struct Upgrade: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "upgrade",
            abstract: "Upgrade installed plugins to their newest release.",
            discussion: "With --all, one plugin that fails does not stop the others; pinned plugins are skipped and said so. Exit 0 only if none failed. "
                + "A running neuron (`neuron run`, `mcp serve`) that uses an upgraded plugin keeps serving the version it started with until it reloads; each is named in a warning.")
        @Argument(help: "The plugin to upgrade.") var plugin: String?
        @Flag(help: "Upgrade every installed plugin.") var all = false
        @Flag(help: "Accept an index past its expiry date.") var allowExpired = false
        @Flag(help: "Print JSON for scripts; no progress output.") var json = false

        struct Result: Encodable {
            var plugin: String
            var status: String
            var detail: String
            var warnings: [String] = []
        }

        func validate() throws {
            if (plugin == nil) == !all { throw ValidationError("name one plugin, or pass --all") }
        }

        func run() throws {
            let market = try openMarketplace()
            market.onStep = progressPrinter(enabled: !json)
            if let plugin {
                let outcome = try marketplace { try market.upgrade(plugin, allowExpired: allowExpired) }
                if !json { for warning in outcome.warnings { warn("brane: warning: \(warning)") } }
                printJSONOrText(json: json, outcome) { describe(outcome) }
                return
            }
            let ids = try marketplace { try market.registry.receipts().map(\.pluginID) }
            var results = [Result]()
            for id in ids {
                if let receipt = try? market.registry.receipt(id), receipt.pinned {
                    results.append(Result(plugin: id, status: "skipped", detail: "pinned at \(receipt.version)"))
                    continue
                }
                do {
                    let outcome = try market.upgrade(id, allowExpired: allowExpired)
                    if !json { for warning in outcome.warnings { warn("brane: warning: \(warning)") } }
                    results.append(Result(plugin: id, status: outcome.action.rawValue, detail: describe(outcome), warnings: outcome.warnings))
                } catch {
                    results.append(Result(plugin: id, status: "failed", detail: "\(error)"))
                }
            }
            printJSONOrText(json: json, results) {
                results.isEmpty ? "no plugins installed" : results.map { "\($0.plugin): \($0.status == "skipped" ? "skipped, \($0.detail)" : $0.detail)" }.joined(separator: "\n")
            }
            if results.contains(where: { $0.status == "failed" }) { throw ExitCode.refused }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove an installed plugin and its files.",
            discussion: "A running neuron that uses the plugin keeps serving it (its files stay until the neuron stops); each is named in a warning.")
        @Argument(help: "The installed plugin's id.") var plugin: String

        func run() throws {
            let market = try openMarketplace()
            let warnings = try marketplace { try market.remove(plugin) }
            for warning in warnings { warn("brane: warning: \(warning)") }
            print("removed \(plugin)")
        }
    }

    struct Pin: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "pin", abstract: "Hold a plugin at its installed version: upgrades skip it.")
        @Argument(help: "The installed plugin's id.") var plugin: String

        func run() throws {
            try marketplace { try openMarketplace().setPinned(plugin, true) }
            print("pinned \(plugin)")
        }
    }

    struct Unpin: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "unpin", abstract: "Let a pinned plugin upgrade again.")
        @Argument(help: "The installed plugin's id.") var plugin: String

        func run() throws {
            try marketplace { try openMarketplace().setPinned(plugin, false) }
            print("unpinned \(plugin)")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Re-hash installed files against their install receipts.",
            discussion: "Names every changed, missing or added file; exits 5 if there is any.")
        @Argument(help: "One installed plugin; all of them when omitted.") var plugin: String?
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let problems = try marketplace { try openMarketplace().verify(plugin) }
            printJSONOrText(json: json, problems) {
                problems.isEmpty ? "all installed files match their receipts" : problems.map(\.description).joined(separator: "\n")
            }
            if !problems.isEmpty { throw ExitCode.refused }
        }
    }
}

struct InstalledRow: Encodable {
    var id: String, version: String, kind: String, tier: Int, index: String, pinned: Bool
    var sha256: String, path: String, installedAt: String

    init(_ r: InstallReceipt) {
        (id, version, kind, tier, index, pinned) = (r.pluginID, r.version, r.kind, r.tier, r.indexName, r.pinned)
        (sha256, path, installedAt) = (r.sha256, r.path, Timestamp.string(r.installedAt))
    }
}

func parseSpec(_ spec: String) throws -> (String, VersionRequirement) {
    guard let at = spec.firstIndex(of: "@") else { return (spec, .any) }
    return (String(spec[..<at]), try VersionRequirement(String(spec[spec.index(after: at)...])))
}

func describe(_ outcome: InstallOutcome) -> String {
    switch outcome.action {
    case .unchanged: "\(outcome.plugin) \(outcome.version) is already installed"
    case .installed: "installed \(outcome.plugin) \(outcome.version) at \(outcome.path)"
    case .upgraded, .downgraded: "\(outcome.action.rawValue) \(outcome.plugin) \(outcome.previousVersion ?? "?") → \(outcome.version)"
    }
}

/// Left-aligned columns. Every cell is one line through the sanitiser: a field from an index or a
/// receipt cannot start a row of its own.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows.map { $0.map { UntrustedText.sanitized($0) } }
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    // Appended in place, not through Foundation's padding and trimming: they bridge every cell,
    // a millisecond of `plugin list` at 100 plugins.
    return all.map { row in
        var line = ""
        for (column, cell) in row.enumerated() {
            if column > 0 { line += String(repeating: " ", count: widths[column - 1] - row[column - 1].count + 2) }
            line += cell
        }
        while line.last == " " { line.removeLast() }
        return line
    }.joined(separator: "\n")
}
