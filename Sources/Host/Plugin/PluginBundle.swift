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
        try open(directory, manifest: nil, locator: locator)
    }

    /// An installed plugin: its manifest is the copy in its receipt — the one the signed index
    /// vouched for — not whatever `manifest.yaml` holds by the time it is read, and its library
    /// comes from its own directory only.
    public static func openInstalled(_ directory: String, manifestText: String) throws -> PluginBundle {
        try open(directory, manifest: manifestText, locator: .current)
    }

    private static func open(_ directory: String, manifest text: String?, locator: ResourceLocator) throws -> PluginBundle {
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        let (manifest, warnings) = try text.map { try ManifestLoader.parse($0, file: "\(root)/manifest.yaml") }
            ?? ManifestLoader.load(path: "\(root)/manifest.yaml")
        let candidates = ["\(root)/\(manifest.library)"]
            + (text == nil ? locator.librarySearchPath.map { "\($0)/\(URL(fileURLWithPath: manifest.library).lastPathComponent)" } : [])
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
