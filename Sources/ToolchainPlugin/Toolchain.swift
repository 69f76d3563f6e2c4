import Foundation
import PackagePlugin

/// Records, for BraneHost, where the toolchain that builds Brane keeps its Swift runtime: Swift
/// plugins load it under Landlock, and the CLI, which links a copy of its own in, cannot ask the
/// dynamic loader where it is. This plugin runs on that toolchain's runtime, so it looks up where
/// its own was mapped from. The file is rewritten only when the directory changed, so nothing recompiles.
@main
struct Toolchain: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        // Read to its end: /proc reports a size of 0, so a sized read stops short.
        let maps = String(decoding: try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/maps")).readToEnd() ?? Data(), as: UTF8.self)
        guard let line = maps.split(separator: "\n").first(where: { $0.hasSuffix("/libswiftCore.so") }),
              let path = line.firstIndex(of: "/").map({ String(line[$0...]) }) else {
            throw ToolchainFailure(description: "cannot find the Swift runtime this build runs on in /proc/self/maps")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let output = context.pluginWorkDirectoryURL.appending(path: "Toolchain.swift")
        // String(reflecting:) is a Swift literal, every quote and control character escaped.
        let text = "let toolchainSwiftRuntimeDirectory = \(String(reflecting: directory))"
        return [.prebuildCommand(displayName: "Recording the toolchain's Swift runtime directory",
                                 executable: URL(fileURLWithPath: "/bin/sh"),
                                 arguments: ["-c", #"[ "$(cat "$2" 2>/dev/null)" = "$1" ] || printf '%s' "$1" > "$2""#, "sh", text, output.path],
                                 outputFilesDirectory: context.pluginWorkDirectoryURL)]
    }
}

struct ToolchainFailure: Error, CustomStringConvertible {
    var description: String
}
