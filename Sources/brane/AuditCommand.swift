import ArgumentParser
import BraneHost
import Foundation

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read and check the tamper-evident log of installs, upgrades, removals, refusals and pins.",
        subcommands: [Show.self, Verify.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the log, oldest first.")
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let entries = marketplace { try openMarketplace().auditEntries() }
            printJSONOrText(json: json, entries) {
                entries.isEmpty ? "the log is empty"
                    : table(["#", "TIME", "ACTION", "PLUGIN", "DETAIL"], entries.map { [String($0.sequence), $0.time, $0.action, $0.pluginID, $0.detail] })
                        + "\nhead MAC \(entries.last!.mac) (record it elsewhere to detect a truncated tail)"
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the HMAC chain; names the first entry that was edited, removed or reordered.",
            discussion: "Exits 0 when the chain is whole, 5 when it is broken.")

        func run() throws {
            let market = openMarketplace()
            let entries = marketplace { try market.auditEntries() }
            if let broken = market.audit.firstBreak(in: entries) {
                fail("the audit log is broken: \(broken)", .refused)
            }
            print("audit log intact: \(entries.count) entries, head MAC \(entries.last?.mac ?? "-")")
        }
    }
}
