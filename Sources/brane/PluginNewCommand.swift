import ArgumentParser
import BraneHost
import Foundation

extension PluginScaffold.Language: ExpressibleByArgument {}
extension PluginScaffold.Kind: ExpressibleByArgument {}

extension PluginCommand {
    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "new",
            abstract: "Write a new plugin folder that builds and tests outside the Brane repository.",
            discussion: """
                The folder holds a manifest that validates, the source, a Makefile and test.sh:

                  brane plugin new com.example.wordcount --lang c
                  cd com.example.wordcount && make && make test

                `make` builds the library into the folder; `make test` runs the plugin in its real \
                sandbox through brane (Swift: `swift test` first). C builds against the installed \
                header (`pkg-config --cflags brane-plugin`); Swift is a package whose one dependency \
                is the installed plugin kit (share/brane/swift/BranePluginKit). Each kind comes with \
                a small working example: synapse (an MCP tool), sensor, specialist, scanner.
                """)

        @Argument(help: "The plugin's reverse-DNS id, e.g. com.example.wordcount.") var id: String
        @Option(help: "The language: c or swift.") var lang: PluginScaffold.Language
        @Option(help: "The kind: synapse, sensor, specialist or scanner.") var kind: PluginScaffold.Kind = .synapse
        @Option(help: "Where to write it (default: ./<id>); must not exist, or be empty.") var directory: String?
        @Option(help: "The Swift plugin kit package (default: the one installed beside this brane).") var kit: String?
        @Flag(help: "Print what was written as JSON.") var json = false

        struct Written: Encodable {
            var directory: String
            var files: [String]
            var build: String
        }

        func run() throws {
            let scaffold: PluginScaffold
            do { scaffold = try PluginScaffold(id: id, language: lang, kind: kind) } catch {
                throw CLIFailure("\(error)", .invalidInput)
            }
            let kitPath = lang == .swift ? try swiftKit() : nil
            let target = directory ?? id
            let files: [PluginScaffold.File]
            do {
                files = try scaffold.files(kit: kitPath)
                try PluginScaffold.write(files, to: target)
            } catch let problem as PluginScaffold.Problem {
                throw CLIFailure(problem.description, .invalidInput)
            }
            let absolute = URL(fileURLWithPath: target).standardizedFileURL.path
            // Quoted for a shell when it must be: the hint is meant to be pasted.
            let relative = target.hasPrefix("-") ? "./" + target : target
            let plain = relative.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || "0123456789._-/".unicodeScalars.contains($0) }
            let shellTarget = plain ? relative : "'" + relative.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
            let written = Written(directory: absolute, files: files.map(\.path), build: "cd \(shellTarget) && make && make test")
            printJSONOrText(json: json, written) {
                "wrote \(scaffold.kind.rawValue) plugin \(scaffold.id) (\(scaffold.language == .c ? "C" : "Swift")) in \(UntrustedText.sanitized(absolute, limit: 400)):\n"
                    + files.map { "  \($0.path)" }.joined(separator: "\n")
                    + "\nnext: \(UntrustedText.sanitized(written.build, limit: 500))" + (lang == .c ? pkgConfigHint() : "")
            }
        }

        /// The kit named by --kit, else the installed one; refused unless it is a package.
        private func swiftKit() throws -> String {
            guard let path = kit ?? ResourceLocator.current.swiftKitDirectory else {
                throw CLIFailure("""
                    no Swift plugin kit beside this brane (\(ResourceLocator.executablePath)): install Brane \
                    (scripts/install or the .deb puts it in <prefix>/share/brane/swift/BranePluginKit), or pass --kit DIR
                    """, .invalidInput)
            }
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            guard FileManager.default.fileExists(atPath: "\(absolute)/Package.swift") else {
                throw CLIFailure("\(absolute) is not the plugin kit: it has no Package.swift", .invalidInput)
            }
            return absolute
        }

        /// pkg-config finds brane-plugin.pc under /usr and /usr/local by itself; elsewhere it needs telling.
        private func pkgConfigHint() -> String {
            let prefix = URL(fileURLWithPath: ResourceLocator.current.executableDirectory).deletingLastPathComponent().path
            let pc = "\(prefix)/lib/pkgconfig"
            guard FileManager.default.fileExists(atPath: "\(pc)/brane-plugin.pc"), prefix != "/usr", prefix != "/usr/local" else { return "" }
            return "\n(pkg-config needs: export PKG_CONFIG_PATH=\(pc))"
        }
    }
}
