import Foundation

/// A plugin on disk: its directory, validated manifest and the library file to load.
public struct PluginBundle: Sendable {
    public let directory: String
    public let manifest: Manifest
    public let warnings: [Diagnostic]
    public let libraryPath: String

    /// Opens `directory/manifest.yaml` and resolves the library: first inside the plugin
    /// directory (installed plugins), then on the library search path (development builds).
    public static func open(_ directory: String, locator: ResourceLocator = .current) throws -> PluginBundle {
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        let (manifest, warnings) = try ManifestLoader.load(path: "\(root)/manifest.yaml")
        let candidates = ["\(root)/\(manifest.library)"]
            + locator.librarySearchPath.map { "\($0)/\(URL(fileURLWithPath: manifest.library).lastPathComponent)" }
        guard let library = candidates.first(where: FileManager.default.fileExists(atPath:)) else {
            throw SandboxError.libraryNotFound(name: manifest.library, searched: candidates)
        }
        return PluginBundle(directory: root, manifest: manifest, warnings: warnings,
                            libraryPath: URL(fileURLWithPath: library).standardizedFileURL.path)
    }

    /// A manifest path made absolute against the plugin directory.
    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: directory + "/")).standardizedFileURL.path
    }
}
