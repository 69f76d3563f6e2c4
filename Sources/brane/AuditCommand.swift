import ArgumentParser
import BraneHost
import Foundation

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read and check the tamper-evident log of installs, upgrades, removals, refusals and pins.",
        subcommands: [Show.self, Verify.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print the log, oldest first.")
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let entries = try marketplace { try openMarketplace().auditEntries() }
            printJSONOrText(json: json, entries) {
                entries.isEmpty ? "the log is empty"
                    : table(["#", "TIME", "ACTION", "PLUGIN", "DETAIL"], entries.map { [String($0.sequence), $0.time, $0.action, $0.pluginID, $0.detail] })
                        + "\nhead MAC \(entries.last!.mac) (record it elsewhere to detect a truncated tail)"
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check the HMAC chain and the installs it must record.",
            discussion: """
                Names the first entry that was edited, removed or reordered, and every installed plugin \
                whose install has no entry (an emptied or cut log). What it cannot prove: that no \
                entries were cut from the end after the last install (record the head MAC elsewhere \
                and compare), or anything against someone who holds audit.key. Exits 0 when all is \
                well, 5 otherwise.
                """)

        func run() throws {
            let market = try openMarketplace()
            let entries = try marketplace { try market.auditEntries() }
            let problems = try marketplace { try market.auditProblems() }
            if !problems.isEmpty {
                throw CLIFailure("the audit log is broken:\n" + problems.map { "  \($0)" }.joined(separator: "\n"), .refused)
            }
            print("audit log intact: \(entries.count) entries, every install recorded, head MAC \(entries.last?.mac ?? "-")")
        }
    }
}
