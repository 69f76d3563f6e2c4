import BraneHost
import Foundation

/// Where the repository's bundled plugins are, for tests that run them sandboxed.
public enum BundledPlugins {
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    public static let directory = repository.appendingPathComponent("Plugins").path

    public static func path(_ id: String) -> String { "\(directory)/\(id)" }

    /// A copy of plugin `id`'s folder (or of `source`, a fixture's) in `base` (manifest only: the
    /// library is found where `swift build` put it), with its manifest passed through `edit`.
    @discardableResult
    public static func copy(_ id: String, into base: URL, from source: String? = nil, edit: (String) -> String = { $0 }) throws -> String {
        let target = base.appendingPathComponent(id)
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let manifest = try String(contentsOfFile: "\(source ?? path(id))/manifest.yaml", encoding: .utf8)
        try edit(manifest).write(to: target.appendingPathComponent("manifest.yaml"), atomically: true, encoding: .utf8)
        return target.path
    }

    /// `base/plugins`, a plugin directory holding a link to the test fixture `Tests/Fixtures/<fixture>`
    /// under its id, for `--plugins` or a `PluginLocator` (the library is found where `swift build` put it).
    public static func fixturePlugins(_ fixture: String, id: String, in base: URL) throws -> URL {
        let plugins = base.appendingPathComponent("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        let link = plugins.appendingPathComponent(id).path
        if !FileManager.default.fileExists(atPath: link) {
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: repository.appendingPathComponent("Tests/Fixtures/\(fixture)").path)
        }
        return plugins
    }

    /// A fresh temporary directory; the caller removes it (tests do so in a teardown block).
    public static func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("brane-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The build's products the tests run: brane, fault-wrapper and the plugin libraries, beside
/// the test bundle (the runner is in the host's resource bundle there: ResourceLocator).
public enum BuildProducts {
    public static let directory = URL(fileURLWithPath: ResourceLocator.current.executableDirectory)
    public static let brane = directory.appendingPathComponent("brane")
}
