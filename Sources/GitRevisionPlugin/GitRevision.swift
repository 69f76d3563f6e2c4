import Foundation
import PackagePlugin

/// Writes the checkout's git revision into the `brane` target before each build, for
/// `brane --version`. The file is rewritten only when the revision changed, so a build that
/// changed nothing recompiles nothing; outside a git checkout the revision is "unknown".
@main
struct GitRevision: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "BuildRevision.swift")
        let script = """
            revision=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
            git -C "$1" diff --quiet HEAD 2>/dev/null || revision="$revision+changes"
            text="let buildRevision = \\"$revision\\""
            [ "$(cat "$2" 2>/dev/null)" = "$text" ] || printf '%s' "$text" > "$2"
            """
        return [.prebuildCommand(displayName: "Recording the git revision for brane --version",
                                 executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", script, "sh", context.package.directoryURL.path, output.path],
                                 outputFilesDirectory: context.pluginWorkDirectoryURL)]
    }
}
