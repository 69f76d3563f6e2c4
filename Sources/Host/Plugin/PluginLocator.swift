import Foundation

/// Finds a plugin by id: first among directories named explicitly, then in source directories
/// (`<dir>/<id>/manifest.yaml`, e.g. the repository's Plugins/), then among the plugins
/// installed under BRANE_HOME.
public struct PluginLocator: Sendable {
    public var explicit: [String: String]
    public var searchDirectories: [String]
    public var installed: (@Sendable (String) throws -> PluginBundle?)?
    /// The ids of installed plugins, for "did you mean" when an id is not found.
    public var installedIDs: (@Sendable () -> [String])?

    public init(explicit: [String: String] = [:], searchDirectories: [String] = [], installed: (@Sendable (String) throws -> PluginBundle?)? = nil,
                installedIDs: (@Sendable () -> [String])? = nil) {
        self.explicit = explicit
        self.searchDirectories = searchDirectories
        self.installed = installed
        self.installedIDs = installedIDs
    }

    public struct NotFound: Error, CustomStringConvertible {
        public var id: String
        public var searched: [String]
        public var description: String {
            "no plugin \(id): not in \(searched.isEmpty ? "any source directory" : searched.joined(separator: ", ")) and not installed (`brane plugin install \(id)`)"
        }
    }

    /// The plugin `id`; an installed one as its receipt says (checked against its files).
    public func bundle(_ id: String) throws -> PluginBundle {
        if let directory = explicit[id] { return try PluginBundle.open(directory) }
        for base in searchDirectories {
            let candidate = "\(base)/\(id)"
            if FileManager.default.fileExists(atPath: "\(candidate)/manifest.yaml") { return try PluginBundle.open(candidate) }
        }
        if let bundle = try installed?(id) { return bundle }
        throw NotFound(id: id, searched: searchDirectories)
    }

    /// Every id this locator can find, sorted.
    public func availableIDs() -> [String] {
        var ids = Set(explicit.keys).union(installedIDs?() ?? [])
        for base in searchDirectories {
            let children = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
            ids.formUnion(children.filter { FileManager.default.fileExists(atPath: "\(base)/\($0)/manifest.yaml") })
        }
        return ids.sorted()
    }
}

extension PluginLocator {
    /// `explicit` directories, then `searchDirectories`, then the plugins installed under
    /// BRANE_HOME — whose registry is opened on the first lookup that gets that far, and once.
    public static func includingInstalled(explicit: [String: String] = [:], searchDirectories: [String] = []) -> PluginLocator {
        let registry = InstalledRegistry()
        return PluginLocator(explicit: explicit, searchDirectories: searchDirectories,
                             installed: { id in try registry.marketplace?.installedBundle(id) },
                             installedIDs: { ((try? registry.marketplace?.registry.receipts()) ?? []).map(\.pluginID) })
    }
}

/// Opens the marketplace when first asked, so a locator that finds everything in source
/// directories never touches BRANE_HOME.
private final class InstalledRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var opened: Marketplace??

    var marketplace: Marketplace? {
        lock.withLock {
            if let opened { return opened }
            let marketplace = try? Marketplace()
            opened = .some(marketplace)
            return marketplace
        }
    }
}
