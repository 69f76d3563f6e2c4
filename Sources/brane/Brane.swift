import ArgumentParser
import BraneHost
import Foundation

@main
struct Brane: ParsableCommand {
    /// `--allow-weaker-sandbox` may stand anywhere before `--`, on any command that starts plugins.
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let end = arguments.firstIndex(of: "--") ?? arguments.endIndex
        if let flag = arguments[..<end].firstIndex(of: "--\(SandboxSettings.optOutName)") {
            arguments.remove(at: flag)
            SandboxSettings.commandLineOptOut = true
        }
        reportSandboxEvents()
        let status: Int32
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            status = 0
        } catch let failure as CLIFailure {
            warn("brane: \(failure.message)")
            status = failure.status.rawValue
        } catch {
            // ArgumentParser's own messages (help, usage, a bad option), through the sanitiser like
            // everything else: an option's value can hold ESC or BEL.
            let message = fullMessage(for: error), code = exitCode(for: error)
            if code == .success { print(message) } else if !message.isEmpty { warn(message) }
            status = code.rawValue
        }
        // The command's zygotes and spares end with it, reaped here rather than left to init.
        InstanceLauncher.endZygotes()
        Foundation.exit(status)
    }

    static let configuration = CommandConfiguration(
        commandName: "brane",
        abstract: "Run privacy-first AI agent plugins in per-plugin sandboxes.",
        discussion: """
            Every plugin runs in its own process under rlimits, no_new_privs, no capabilities, \
            a Landlock allow-list and a seccomp filter chosen by its privacy tier.

            Exit codes:
              0  success
              1  the plugin answered with an error
              2  invalid input: a manifest, arguments or JSON that failed validation
              3  the plugin died or was killed (sandbox violation, limit, crash,
                 timeout)
              4  the host cannot run plugins here (runner or profile missing), or an
                 I/O failure
              5  refused by the marketplace: bad signature, rollback, expired index,
                 size or SHA-256 mismatch, unsafe archive, incompatible or yanked
                 plugin; or `plugin verify` / `audit verify` found a mismatch
              6  another brane process is changing the same plugin
             64  command-line usage error

            A plugin never runs under a weaker sandbox than its tier requires: where this kernel \
            cannot give it (no Landlock, no namespaces), the plugin is refused with exit 4 and \
            `brane doctor` says what is missing. For development only, --allow-weaker-sandbox \
            (or BRANE_ALLOW_WEAKER_SANDBOX=1, or `allow-weaker-sandbox: true` in \
            $BRANE_HOME/host.yaml) runs it anyway, warning on every start and writing an audit entry.
            """,
        version: "brane \(BraneRelease.version), plugin ABI \(ABIVersion.host), git \(buildRevision)",
        subcommands: [PluginCommand.self, ToolCommand.self, NeuronCommand.self, MCPCommand.self, SpecialistCommand.self, SensorCommand.self, ScanCommand.self, AssetsCommand.self, IndexCommand.self, MarketCommand.self,
                      AuditCommand.self, DoctorCommand.self])
}

/// Exit codes shared by every command (listed in `brane --help`).
extension ExitCode {
    static let pluginError = ExitCode(1)
    static let invalidInput = ExitCode(2)
    static let pluginDied = ExitCode(3)
    static let hostProblem = ExitCode(4)
    static let refused = ExitCode(5)
    static let busy = ExitCode(6)
}
