import Foundation
import SystemPackage

/// The host's own data: `$BRANE_HOME`, by default `$XDG_DATA_HOME/brane` or `~/.local/share/brane`.
/// Plugins never see it (it is outside every Landlock allow-list).
public struct BraneHome: Sendable {
    public let root: String
    public var registry: String { "\(root)/registry.sqlite" }
    public var plugins: String { "\(root)/plugins" }
    public var staging: String { "\(root)/staging" }
    public var locks: String { "\(root)/locks" }
    public var auditKey: String { "\(root)/audit.key" }
    /// Sensor readings, alerts and the asset catalog.
    public var observations: String { "\(root)/observations.sqlite" }
    /// Tokens each neuron spent on its model, per day (the daily budget).
    public var usage: String { "\(root)/usage.sqlite" }
    /// Events waiting for a running neuron's specialists: `inbox/<neuron>/<event kind>/*.jsonl`.
    public var inbox: String { "\(root)/inbox" }
    /// Neuron files `brane neuron list` and `show` look in by default.
    public var neurons: String { "\(root)/neurons" }
    /// Host settings (`allow-weaker-sandbox`, `sandbox-id-base`); see `SandboxSettings`.
    public var hostSettings: String { "\(root)/host.yaml" }

    public init(root: String) { self.root = root }

    /// An existing home (or the directory it would be created in) must be this user's and not
    /// writable by its group or others.
    private func refuseIfOthersCanWrite() throws {
        var info = stat()
        guard stat(root, &info) == 0 else { return }
        let writableByOthers = info.st_mode & 0o022 != 0
        guard info.st_uid == geteuid(), !writableByOthers else {
            let mode = String(info.st_mode & 0o7777, radix: 8)
            throw MarketplaceError(.usage, "\(root) is \(info.st_uid != geteuid() ? "owned by uid \(info.st_uid), not this user" : "writable by its group or others (mode \(mode))"): "
                + "another user could replace what runs from it; `chmod \(geteuid() == 0 ? "711" : "700") \(root)` (or choose another BRANE_HOME)")
        }
    }

    /// `plugins/<id>`, for a valid id only (`PluginID`): the directory of every installed version.
    func versionsDirectory(of id: String) -> String? {
        PluginID.problem(id) == nil ? "\(plugins)/\(id)" : nil
    }

    /// Whether `path` is a directory itself — not a link to one — that only this user can write.
    static func isOwnDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR && info.st_uid == geteuid() && info.st_mode & 0o022 == 0
    }

    /// Whether `path` is one version directory of `id` — `plugins/<id>/<name>` with a plain name —
    /// the only kind of path an install or remove ever deletes, whatever a receipt on disk says.
    func isVersionDirectory(_ path: String, of id: String) -> Bool {
        guard let versions = versionsDirectory(of: id), path.hasPrefix(versions + "/") else { return false }
        let name = path.dropFirst(versions.count + 1)
        return !name.isEmpty && name != "." && name != ".." && !name.contains("/")
    }

    public static var current: BraneHome {
        let environment = ProcessInfo.processInfo.environment
        if let home = environment["BRANE_HOME"], !home.isEmpty { return BraneHome(root: home) }
        // An empty variable is an unset one: an empty HOME must not put the home at /.local.
        let data = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "\(environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory())/.local/share"
        return BraneHome(root: "\(data)/brane")
    }

    /// Creates the directories, private to this user (0700). On a root host the root and
    /// `plugins/` are traversable but not listable (0711) instead: each plugin instance runs under
    /// its own uid, which must reach its installed tree. Every store in the root is created 0600
    /// (`ensurePrivateFile`); staging and locks stay 0700. A home another user could write to is
    /// refused: its files decide what runs.
    public func prepare() throws {
        let traversable = geteuid() == 0 ? 0o711 : 0o700
        try refuseIfOthersCanWrite()
        for (directory, mode) in [(root, traversable), (plugins, traversable), (staging, 0o700), (locks, 0o700)] {
            // Below the root, each is a real directory: a link planted here would carry installs,
            // clean-up and locks to wherever it points.
            var link = stat()
            if directory != root, lstat(directory, &link) == 0, link.st_mode & S_IFMT != S_IFDIR {
                throw MarketplaceError(.usage, "\(directory) is not a directory (a symbolic link?): refused; move it aside and run the command again")
            }
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: mode])
                // An existing directory keeps what it had; bring it to the mode this layout needs
                // (a read-only home is left as it is: nothing can be written there anyway).
                var info = stat()
                if stat(directory, &info) == 0, info.st_mode & 0o7777 != mode_t(mode), chmod(directory, mode_t(mode)) != 0, errno != EROFS {
                    throw Errno(rawValue: errno)
                }
            } catch {
                throw MarketplaceError(.io, "cannot create \(directory): \(error.localizedDescription)")
            }
        }
    }
}
