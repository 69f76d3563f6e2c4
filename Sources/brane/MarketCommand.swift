import ArgumentParser
import BraneHost
import Foundation

struct MarketCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "market",
        abstract: "Publish plugins into a signed index.",
        discussion: """
              brane market keygen --out ~/.config/brane/marketplace-key.pem
              swift build
              brane market publish Plugins/* --index marketplace-index --key ~/.config/brane/marketplace-key.pem
            Keep the private key out of version control; share only keys/<key-id>.pem.
            """,
        subcommands: [Keygen.self, Publish.self, Yank.self])

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "keygen", abstract: "Create an Ed25519 signing key (private key mode 0600, public key beside it).")
        @Option(help: "Where to write the private key; the public key goes to the same name with .pub.pem.") var out: String

        func run() throws {
            let key = try marketplace { try generatePublisherKey(at: out) }
            print("key \(key.keyID): private \(out), public \(publicKeyPath(for: out))")
        }
    }

    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "publish",
            abstract: "Pack built plugins into archives, add them to the index, bump its version and sign it.",
            discussion: "Packs manifest.yaml, the library, README.md and data/. A version already published must be byte-identical: raise the version to change it.")
        @Argument(help: "Plugin directories (built: the library must exist).") var plugins: [String]
        @Option(help: "The index directory (created if missing).") var index: String
        @Option(help: "The publisher's private key (PEM).") var key: String
        @Option(help: "The index name, for a new index (default: the directory's name).") var name: String?
        @Option(help: "Days until the index expires.") var validDays = 90
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            let signer = try loadPrivateKey(key)
            let report = try marketplace { try Publisher(indexDirectory: index, key: signer).publish(plugins, name: name, validDays: validDays) }
            printJSONOrText(json: json, report) {
                (report.published.map { "published \($0)" } + report.unchanged.map { "unchanged \($0)" }
                    + ["index \(report.index) version \(report.version), signed by key \(report.keyID), expires \(Timestamp.string(report.expires))"])
                    .joined(separator: "\n")
            }
        }
    }

    struct Yank: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "yank", abstract: "Mark a published version as yanked: listed, never installed.")
        @Argument(help: "Plugin id.") var plugin: String
        @Argument(help: "Version.") var version: String
        @Option(help: "The index directory.") var index: String
        @Option(help: "The publisher's private key (PEM).") var key: String

        func run() throws {
            let report = try marketplace { try Publisher(indexDirectory: index, key: loadPrivateKey(key)).yank(plugin, version: version) }
            print("yanked \(plugin) \(version); index version \(report.version)")
        }
    }
}

func loadPrivateKey(_ path: String) throws -> Ed25519Key {
    guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw CLIFailure("cannot read the key \(path) (create one with `brane market keygen --out \(path)`)", .invalidInput)
    }
    guard let key = try? Ed25519Key(pem: pem), key.hasPrivateKey else { throw CLIFailure("\(path) is not an Ed25519 private key in PEM form", .invalidInput) }
    return key
}
