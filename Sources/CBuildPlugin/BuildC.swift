import Foundation
import PackagePlugin

/// Builds what is written in C with the C compiler, as the C it is: the sandbox runner, and each
/// bundled C plugin (Plugins/<id>/Makefile, the way an out-of-tree C plugin is built). SwiftPM
/// links everything with swiftc, which adds the Swift runtime and libstdc++ to programs that use
/// neither: loading them tripled the runner's exec time and made a C plugin idle at 4.9 MiB
/// instead of 1.5 (docs/performance.md). The results land in the host's resource bundle, where
/// ResourceLocator looks for the runner and for plugin libraries.
@main
struct BuildC: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let root = context.package.directoryURL
        let sources = root.appending(path: "Sources")
        let include = ["-I", sources.appending(path: "PluginABI/include").path]
        let abiHeader = sources.appending(path: "PluginABI/include/brane_plugin.h")
        let out = context.pluginWorkDirectoryURL

        let runnerFiles = try ["brane-sandbox", "CBraneSystem", "CBraneSystem/include", "PluginABI", "PluginABI/include"]
            .flatMap { try files(in: sources.appending(path: $0), extensions: ["c", "h"]) }
        let hardening = ["-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-fPIE", "-pie", "-Wl,-z,relro,-z,now"]
        let runner = Command.buildCommand(
            displayName: "Building the sandbox runner (C, without the Swift runtime)",
            executable: URL(fileURLWithPath: "/usr/bin/cc"),
            arguments: ["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra"] + hardening + include
                + ["-I", sources.appending(path: "CBraneSystem/include").path, "-o", out.appending(path: "brane-sandbox").path]
                + runnerFiles.filter { $0.pathExtension == "c" }.map(\.path) + ["-lcap", "-ldl"],
            inputFiles: runnerFiles, outputFiles: [out.appending(path: "brane-sandbox")])

        let plugins = try FileManager.default.contentsOfDirectory(at: root.appending(path: "Plugins"), includingPropertiesForKeys: nil)
            .filter { FileManager.default.fileExists(atPath: $0.appending(path: "Makefile").path) }
            .sorted { $0.path < $1.path }
        let pluginCommands = try plugins.map { folder -> Command in
            let manifest = try String(contentsOf: folder.appending(path: "manifest.yaml"), encoding: .utf8)
            guard let library = manifest.split(separator: "\n").first(where: { $0.hasPrefix("library:") })?
                .dropFirst("library:".count).trimmingCharacters(in: .whitespaces) else {
                throw BuildFailure(description: "\(folder.path)/manifest.yaml names no library")
            }
            return .buildCommand(displayName: "Building \(folder.lastPathComponent) (C plugin, with make)",
                                 executable: URL(fileURLWithPath: "/usr/bin/make"),
                                 arguments: ["-s", "-C", folder.path, "OUT=\(out.path)", "BRANE_CFLAGS=\(include.joined(separator: " "))"],
                                 inputFiles: try files(in: folder, extensions: ["c", "h", ""]) + [abiHeader],
                                 outputFiles: [out.appending(path: library)])
        }
        return [runner] + pluginCommands
    }

    private func files(in directory: URL, extensions: Set<String>) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: [.isRegularFileKey])
            .filter { extensions.contains($0.pathExtension) && ((try? $0.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) ?? false) }
            .sorted { $0.path < $1.path }
    }

    struct BuildFailure: Error, CustomStringConvertible { var description: String }
}
