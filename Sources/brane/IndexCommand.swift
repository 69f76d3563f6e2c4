import ArgumentParser
import BraneHost
import Foundation

struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Trust, refresh and forget marketplace indexes.",
        discussion: """
            An index is trusted through the public key pinned when it is added; every later fetch \
            must be signed by that key, no older than the newest version seen (rollback), and not \
            past its expiry date.
              brane index add local marketplace-index --key marketplace-index/keys/<key-id>.pem
            """,
        subcommands: [Add.self, List.self, Update.self, Remove.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an index and pin its publisher's key.")
        @Argument(help: "A short name for the index.") var name: String
        @Argument(help: "A directory, file:// URL or http(s):// URL holding index.yaml and index.yaml.sig.") var location: String
        @Option(help: "The publisher's Ed25519 public key (PEM), obtained out of band.") var key: String
        @Flag(help: "Accept an index past its expiry date.") var allowExpired = false
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            guard let pem = try? String(contentsOfFile: key, encoding: .utf8) else { throw CLIFailure("cannot read the key file \(key)", .invalidInput) }
            let record = try marketplace { try openMarketplace().addIndex(name: name, location: location, publicKeyPEM: pem, allowExpired: allowExpired) }
            printJSONOrText(json: json, IndexRow(record)) {
                "added index \(record.name) (version \(record.highestVersion), key \(record.keyID)) at \(record.location)"
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List added indexes.")
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let rows = try marketplace { try openMarketplace().registry.indexes() }.map(IndexRow.init)
            printJSONOrText(json: json, rows) {
                rows.isEmpty ? "no indexes (add one with `brane index add`)"
                    : table(["NAME", "VERSION", "EXPIRES", "KEY", "LOCATION"], rows.map { [$0.name, String($0.version), $0.expires, $0.keyID, $0.location] })
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "update", abstract: "Fetch and verify indexes again, refreshing what search and install see.")
        @Argument(help: "One index; all when omitted.") var name: String?
        @Flag(help: "Accept an index past its expiry date.") var allowExpired = false

        func run() throws {
            let market = try openMarketplace()
            let names = try name.map { [$0] } ?? marketplace { try market.registry.indexes().map(\.name) }
            for name in names {
                let index = try marketplace { try market.refreshIndex(name, allowExpired: allowExpired) }
                print("\(name): version \(index.version), \(index.plugins.count) plugins")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Forget an index and its pinned key.",
            discussion: "Installed plugins stay installed and runnable; `brane plugin info` still shows their receipts.")
        @Argument(help: "The index name.") var name: String

        func run() throws {
            try marketplace { try openMarketplace().removeIndex(name) }
            print("removed index \(name)")
        }
    }
}

struct IndexRow: Encodable {
    var name: String, location: String, keyID: String, version: Int, expires: String

    init(_ r: IndexRecord) {
        (name, location, keyID, version) = (r.name, r.location, r.keyID, r.highestVersion)
        expires = Timestamp.string(r.expires)
    }
}
