import Foundation
import GRDB

/// What an install or upgrade did.
public struct InstallOutcome: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case installed, upgraded, downgraded, unchanged }
    public var plugin: String
    public var action: Action
    public var version: String
    public var previousVersion: String?
    public var path: String
    public var sha256: String
    /// Running neurons that use the plugin and keep serving the version they started with.
    public var warnings: [String] = []
}

/// A file of an install that no longer matches its receipt.
public struct VerifyProblem: Codable, Sendable, Equatable, CustomStringConvertible {
    public var plugin: String
    public var file: String
    public var problem: String
    public var description: String { "\(plugin): \(file): \(problem)" }
}

extension Marketplace {
    /// Installs `id` at the newest non-yanked version the requirement accepts.
    /// fetch → size and SHA-256 against the signed index → unpack into staging → manifest, ABI
    /// and tier checks → atomic rename → receipt and audit entry in one transaction → old
    /// version removed. Any failure before the transaction leaves the previous install as it was.
    /// `grantedPaths` lets the plugin reach absolute paths `PathPolicy` would refuse; they are shown,
    /// audited, kept in the receipt and carried over by upgrades.
    @discardableResult
    public func install(_ id: String, requirement: VersionRequirement = .any, index: String? = nil,
                        allowExpired: Bool = false, grantedPaths: [String] = []) throws -> InstallOutcome {
        try checkID(id)
        return try auditingRefusals(of: id) {
            try installOrRefuse(id, requirement: requirement, indexName: index, allowExpired: allowExpired, upgrade: false, granted: grantedPaths)
        }
    }

    /// Moves `id` to its newest acceptable release; pinned plugins are refused with a reason.
    @discardableResult
    public func upgrade(_ id: String, allowExpired: Bool = false) throws -> InstallOutcome {
        try checkID(id)
        guard try registry.receipt(id) != nil else { throw try notInstalled(id) }
        return try auditingRefusals(of: id) {
            try installOrRefuse(id, requirement: .any, indexName: nil, allowExpired: allowExpired, upgrade: true, granted: nil)
        }
    }

    /// A name that is not a plugin id is a usage error, before it is looked up, locked or used in a path.
    func checkID(_ id: String) throws {
        if let problem = PluginID.problem(id) { throw MarketplaceError(.usage, problem) }
    }

    /// A refused package is audited; a busy lock, a typo or a missing plugin is not a refusal.
    private func auditingRefusals(of id: String, _ body: () throws -> InstallOutcome) throws -> InstallOutcome {
        do {
            return try body()
        } catch let error as MarketplaceError where ![.busy, .usage, .notFound].contains(error.reason) {
            try? registry.write { try audit.append($0, action: "refuse", plugin: id, detail: error.message) }
            throw error
        }
    }

    /// `granted` nil (an upgrade) keeps the receipt's grants. Everything read from the receipt —
    /// pinned, origin, grants — is read under the plugin's lock, so a pin racing an upgrade holds.
    private func installOrRefuse(_ id: String, requirement: VersionRequirement, indexName: String?, allowExpired: Bool,
                                 upgrade: Bool, granted requested: [String]?) throws -> InstallOutcome {
        if let relative = requested?.first(where: { !$0.hasPrefix("/") || PathPolicy.normalized($0) == "/" }) {
            throw MarketplaceError(.usage, "--allow-path takes an absolute path other than /, found \"\(UntrustedText.sanitized(relative, limit: 120))\"")
        }
        let lock = try PluginLock(home: home, plugin: id)
        defer { withExtendedLifetime(lock) {} }
        let current = try registry.receipt(id)
        if let current, current.pinned {
            throw MarketplaceError(.usage, "\(id) is pinned at \(current.version); `brane plugin unpin \(id)` \(upgrade ? "to let it upgrade" : "first")")
        }
        let granted = requested ?? current?.grantedPaths.map { $0.split(separator: "\n").map(String.init) } ?? []
        removeDebris(of: id, keeping: current?.path)
        removeLeftovers(besides: id)

        // Trust is per origin: an installed plugin comes only from the index it came from, unless
        // the user names another. Always from a freshly verified catalog — and an index that is
        // broken or expired rules out only its own releases, not a healthy index's.
        let origin = indexName ?? current?.indexName
        let candidates = try catalogRows(for: id, in: origin)
        var refused: [MarketplaceError] = []
        var verified: Set<String> = []
        for name in Set(candidates.map(\.indexName)).sorted() {
            do {
                try refreshIndex(name, allowExpired: allowExpired)
                verified.insert(name)
            } catch let error as MarketplaceError {
                refused.append(error)
            }
        }
        let rows = try catalogRows(for: id, in: origin).filter { verified.contains($0.indexName) }
        if rows.isEmpty, let first = refused.first { throw first }
        let release = try choose(from: rows, id: id, requirement: requirement)
        if let current, current.version == release.version, current.sha256 == release.sha256 {
            return InstallOutcome(plugin: id, action: .unchanged, version: current.version, previousVersion: current.version,
                                  path: current.path, sha256: current.sha256)
        }
        if let current, current.version == release.version {
            throw MarketplaceError(.digestMismatch, "\(id) \(release.version) is installed with sha256 \(current.sha256.prefix(16))…, and index \(release.indexName) "
                + "now offers other bytes (\(release.sha256.prefix(16))…) under the same version: a published version never changes — refused")
        }
        if let problem = ABIVersion(release.abi)?.incompatibilityWithHost ?? (ABIVersion(release.abi) == nil ? "unreadable ABI \(release.abi)" : nil) {
            throw MarketplaceError(.incompatible, "\(id) \(release.version): \(problem)")
        }

        // Fetch, capped at the declared size, and check it against the signed index.
        let record = try indexRecord(release.indexName)
        let place = try IndexLocation(record.location)
        var fetcher = self.fetcher
        let step = onStep
        fetcher.progress = { received, _ in
            let progress = InstallStep.fetching(received: received, total: UInt64(release.size))
            step?(id, progress)
            FaultInjection.reached(progress)
        }
        let bytes = try fetcher.fetch(place.resolve(release.archive), remote: place.isRemote, limit: UInt64(release.size),
                                      total: UInt64(release.size))
        guard bytes.count == release.size else {
            throw MarketplaceError(.sizeMismatch, "\(id) \(release.version): the archive is \(bytes.count) bytes, the signed index says \(release.size) — refused")
        }
        let digest = SHA256.hash(bytes)
        guard digest == release.sha256 else {
            throw MarketplaceError(.digestMismatch, "\(id) \(release.version): the archive's SHA-256 is \(digest), the signed index says \(release.sha256); it was altered — refused")
        }
        reached(id, .verified(sha256: digest))

        // Unpack into staging; the staging directory is removed whatever happens next. `@` is in no
        // id, so one plugin's debris can never be mistaken for another's (com.brane vs com.brane.units).
        let staging = "\(home.staging)/\(id)@\(UUID().uuidString.prefix(8))"
        let tree = "\(staging)/tree"
        guard mkdir(staging, 0o700) == 0, mkdir(tree, 0o755) == 0 else {
            throw MarketplaceError(.io, "cannot create \(staging): \(String(cString: strerror(errno)))")
        }
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let entries: [TarEntry]
        do { entries = try Tar.read(bytes) } catch let error as TarError {
            throw MarketplaceError(.unsafeArchive, "the archive of \(id) is damaged: \(error)")
        }
        let written = try ArchiveUnpacker.unpack(entries, into: tree, plugin: id)
        reached(id, .unpacked(files: written.count))

        let (manifestText, manifest) = try validate(tree: tree, against: release)
        let bounds = PathPolicy.problems(read: manifest.filesystem.read, write: manifest.filesystem.write, home: home, granted: granted)
        if !bounds.isEmpty {
            throw MarketplaceError(.unsafeArchive, "\(id) \(release.version) is refused: " + bounds.joined(separator: "; "))
        }
        let files = try receiptFiles(of: tree, plugin: id)
        reached(id, .validated)

        // Activate: one rename into place; the receipt switches in one transaction.
        // Built from validated parts only: the id's grammar, a strict semver and the verified digest's hex.
        guard let versionsDirectory = home.versionsDirectory(of: id), let version = SemanticVersion(release.version),
              version.description == release.version else {
            throw MarketplaceError(.invalidIndex, "\(id): the release \(UntrustedText.sanitized(release.version, limit: 160)) is not a valid version")
        }
        _ = mkdir(versionsDirectory, 0o755)
        guard BraneHome.isOwnDirectory(versionsDirectory) else {
            throw MarketplaceError(.io, "\(versionsDirectory) is not a directory of this user's alone (a symbolic link, or writable by others): refused; move it aside")
        }
        let destination = "\(versionsDirectory)/\(version)-\(digest.prefix(12))"
        try? FileManager.default.removeItem(atPath: destination)   // debris of a killed install of this very release
        guard rename(tree, destination) == 0 else {
            throw MarketplaceError(.io, "cannot move the plugin into \(destination): \(String(cString: strerror(errno)))")
        }
        syncDirectory(versionsDirectory)
        reached(id, .activated(path: destination))

        let action: InstallOutcome.Action = current.map {
            SemanticVersion($0.version).map { $0 < release.semanticVersion } ?? true ? .upgraded : .downgraded
        } ?? .installed
        let receipt = InstallReceipt(pluginID: id, version: release.version, indexName: release.indexName, sha256: digest,
                                     size: release.size, path: destination, kind: release.kind, tier: release.tier,
                                     manifest: manifestText, pinned: current?.pinned ?? false, installedAt: now(),
                                     grantedPaths: granted.isEmpty ? nil : granted.joined(separator: "\n"))
        do {
            try registry.write { db in
                try receipt.save(db)
                try InstalledFile.filter(Column("pluginID") == id).deleteAll(db)
                for file in files { try file.insert(db) }
                let from = current.map { " (was \($0.version))" } ?? ""
                let grants = granted.isEmpty ? "" : ", granted \(granted.joined(separator: ", "))"
                try audit.append(db, action: action == .installed ? "install" : action.rawValue == "upgraded" ? "upgrade" : "downgrade",
                                 plugin: id, detail: "\(release.version)\(from) from index \(release.indexName)\(grants), sha256 \(digest), "
                                     + "receipt \(Self.receiptDigest(receipt, files: files))")
            }
        } catch {
            try? FileManager.default.removeItem(atPath: destination)
            throw error
        }
        reached(id, .recorded)
        // A running neuron keeps serving the version it started with: its files stay until it stops.
        let inUse = RunningNeurons.directoriesInUse(home: home)
        if let old = current?.path, old != destination, home.isVersionDirectory(old, of: id), !inUse.contains(RunningNeurons.standardized(old)) {
            try? FileManager.default.removeItem(atPath: old)
        }
        return InstallOutcome(plugin: id, action: action, version: release.version, previousVersion: current?.version,
                              path: destination, sha256: digest, warnings: current == nil ? [] : RunningNeurons.warnings(using: id, removed: false, home: home))
    }

    private func reached(_ id: String, _ step: InstallStep) {
        onStep?(id, step)
        FaultInjection.reached(step)
    }

    private func catalogRows(for id: String, in indexName: String?) throws -> [CatalogRow] {
        let rows = try registry.releases(of: id).filter { indexName == nil || $0.indexName == indexName }
        guard !rows.isEmpty else {
            let known = try registry.read { try String.fetchAll($0, sql: "SELECT DISTINCT pluginID FROM catalog") }
            let hint = closestMatch(to: id, in: known).map { "; did you mean \($0)?" } ?? ""
            let scope = indexName.map { "index \($0)" } ?? "any added index"
            throw MarketplaceError(.notFound, "no plugin \(id) in \(scope)\(hint) (`brane plugin search` lists what there is; `brane index update` refreshes)")
        }
        return rows
    }

    private func choose(from rows: [CatalogRow], id: String, requirement: VersionRequirement) throws -> CatalogRow {
        let matching = rows.filter { requirement.accepts($0.semanticVersion) }
        if let best = matching.filter({ !$0.yanked }).max(by: { $0.semanticVersion < $1.semanticVersion }) { return best }
        if let yanked = matching.last {
            throw MarketplaceError(.yanked, "\(id) \(yanked.version) was yanked by its publisher and will not be installed; available: \(available(rows))")
        }
        throw MarketplaceError(.notFound, "no release of \(id) matches \(requirement); available: \(available(rows))")
    }

    private func available(_ rows: [CatalogRow]) -> String {
        let versions = rows.filter { !$0.yanked }.map(\.version)
        return versions.isEmpty ? "none" : versions.joined(separator: ", ")
    }

    /// The manifest must be valid for this host and say exactly what the signed index says.
    private func validate(tree: String, against release: CatalogRow) throws -> (text: String, manifest: Manifest) {
        let path = "\(tree)/manifest.yaml"
        let id = release.pluginID
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw MarketplaceError(.invalidManifest, "the archive of \(id) has no readable manifest.yaml")
        }
        let manifest: Manifest
        do { manifest = try ManifestLoader.parse(text, file: "\(id)/manifest.yaml").manifest } catch let failure as ValidationFailure {
            let reason: MarketplaceError.Reason = failure.errors.contains { $0.path == "abi" } ? .incompatible : .invalidManifest
            throw MarketplaceError(reason, "the manifest of \(id) \(release.version) is refused:\n\(failure)")
        }
        let claims: [(String, String, String)] = [
            ("id", manifest.id, id), ("version", manifest.version.description, release.version),
            ("kind", manifest.kind.rawValue, release.kind), ("abi", manifest.abi.description, release.abi),
            ("privacy tier", String(manifest.tier.rawValue), String(release.tier)),
            ("tools", manifest.tools.map(\.name).sorted().joined(separator: " "), release.tools.split(separator: " ").sorted().joined(separator: " ")),
            ("network destinations", manifest.network.destinations.sorted().joined(separator: ", "), release.network.split(separator: "\n").sorted().joined(separator: ", ")),
            ("filesystem.read", manifest.filesystem.read.sorted().joined(separator: ", "), release.filesystemRead.split(separator: "\n").sorted().joined(separator: ", ")),
            ("filesystem.write", manifest.filesystem.write.sorted().joined(separator: ", "), release.filesystemWrite.split(separator: "\n").sorted().joined(separator: ", ")),
        ]
        for (field, inManifest, inIndex) in claims where inManifest != inIndex {
            throw MarketplaceError(.incompatible, "\(id) \(release.version): the manifest's \(field) is \(UntrustedText.sanitized(inManifest.isEmpty ? "(none)" : inManifest, limit: 300)) "
                + "but the signed index says \(UntrustedText.sanitized(inIndex.isEmpty ? "(none)" : inIndex, limit: 300)) — refused")
        }
        guard let library = ArchiveUnpacker.relativePath(manifest.library), !library.isEmpty else {
            throw MarketplaceError(.invalidManifest, "\(id): library \"\(manifest.library)\" must be a path inside the plugin directory")
        }
        var info = stat()
        guard lstat("\(tree)/\(library)", &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw MarketplaceError(.invalidManifest, "\(id): the archive does not contain its library \(library) as a regular file")
        }
        return (text, manifest)
    }

    /// The receipt of every file and link under `root` — the same walk and per-entry reading `verify` uses.
    func receiptFiles(of root: String, plugin: String) throws -> [InstalledFile] {
        var tooDeep = false
        let paths = listing(of: root, tooDeep: &tooDeep)
        // Deeper than verify walks would make an install that verify refuses forever.
        if tooDeep { throw MarketplaceError(.unsafeArchive, "the archive of \(plugin) nests directories deeper than 64 levels") }
        return try paths.sorted().compactMap { try receiptFile(of: "\(root)/\($0)", relative: $0, plugin: plugin) }
    }

    /// Leftovers of a killed install or remove of `id`: staging directories and version
    /// directories the registry does not point at. Called with the plugin's lock held.
    func removeDebris(of id: String, keeping activePath: String?, staging: Bool = true) {
        let fm = FileManager.default
        guard let versions = home.versionsDirectory(of: id) else { return }
        // A link planted as plugins/<id> is removed itself; what it points to is never walked.
        var link = stat()
        if lstat(versions, &link) == 0, link.st_mode & S_IFMT == S_IFLNK {
            unlink(versions)
            return
        }
        for name in (try? fm.contentsOfDirectory(atPath: home.staging)) ?? [] where staging && name.hasPrefix("\(id)@") {
            try? fm.removeItem(atPath: "\(home.staging)/\(name)")
        }
        let inUse = RunningNeurons.directoriesInUse(home: home)
        for name in (try? fm.contentsOfDirectory(atPath: versions)) ?? [] where "\(versions)/\(name)" != activePath && !inUse.contains(RunningNeurons.standardized("\(versions)/\(name)")) {
            try? fm.removeItem(atPath: "\(versions)/\(name)")
        }
        if activePath == nil { rmdir(versions) }   // gone only once no running neuron's version is left in it
    }

    /// The versions a running neuron still used when they were upgraded or removed: deleted by the
    /// next install, upgrade or remove of any plugin once no running neuron uses them. Each plugin
    /// under its own lock (one being changed right now is skipped), keeping its installed version.
    func removeLeftovers(besides id: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: home.plugins) else { return }
        for name in names where name != id && PluginID.problem(name) == nil {
            guard let lock = try? PluginLock(home: home, plugin: name), case .success(let installed) = Result(catching: { try registry.receipt(name) }) else { continue }
            withExtendedLifetime(lock) { removeDebris(of: name, keeping: installed?.path, staging: false) }   // its own changes clean its staging
        }
    }

    private func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    func notInstalled(_ id: String) throws -> MarketplaceError {
        let installed = try registry.receipts().map(\.pluginID)
        let hint = closestMatch(to: id, in: installed).map { "; did you mean \($0)?" } ?? ""
        return MarketplaceError(.notFound, "\(id) is not installed\(hint)")
    }

    // MARK: Remove, pin

    /// Returns warnings for running neurons that use the plugin: they keep serving it until they stop.
    @discardableResult
    public func remove(_ id: String) throws -> [String] {
        try checkID(id)
        let lock = try PluginLock(home: home, plugin: id)
        defer { withExtendedLifetime(lock) {} }
        guard let receipt = try registry.receipt(id) else { throw try notInstalled(id) }
        try registry.write { db in
            _ = try InstallReceipt.deleteOne(db, key: id)
            try audit.append(db, action: "remove", plugin: id, detail: "\(receipt.version) from \(receipt.path)")
        }
        removeDebris(of: id, keeping: nil)
        removeLeftovers(besides: id)
        return RunningNeurons.warnings(using: id, removed: true, home: home)
    }

    /// Under the plugin's lock, and only the `pinned` column: a receipt read earlier is never written
    /// back, so a pin racing an upgrade cannot point the receipt at a version that was removed.
    public func setPinned(_ id: String, _ pinned: Bool) throws {
        try checkID(id)
        let lock = try PluginLock(home: home, plugin: id)
        defer { withExtendedLifetime(lock) {} }
        guard let receipt = try registry.receipt(id) else { throw try notInstalled(id) }
        guard receipt.pinned != pinned else { return }
        try registry.write { db in
            try db.execute(sql: "UPDATE \(InstallReceipt.databaseTableName) SET pinned = ? WHERE pluginID = ?", arguments: [pinned, id])
            try audit.append(db, action: pinned ? "pin" : "unpin", plugin: id, detail: "at \(receipt.version)")
        }
    }

    // MARK: Verify

    /// Re-hashes every installed file against its receipt. Empty means all is well.
    public func verify(_ id: String? = nil) throws -> [VerifyProblem] {
        if let id { try checkID(id) }
        let receipts = try id.map { id in try registry.receipt(id).map { [$0] } ?? { throw try notInstalled(id) }() } ?? registry.receipts()
        return try receipts.flatMap { try problems(of: $0, trustingStamps: false) }
    }

    /// The directory of an installed plugin, for running it — only while its files are those of its
    /// receipt, which the signed index vouched for at install: a library or manifest changed on disk
    /// afterwards (a tier raised, a destination added) does not start. Cheap: a file whose stamp is
    /// unchanged is not re-read. A mismatch is refused (exit 5), names the file, and is audited.
    public func installedDirectory(_ id: String) throws -> String? { try verifiedReceipt(id)?.path }

    /// The installed plugin to run, its manifest taken from the receipt (what the index vouched
    /// for), not re-read from disk after the check — nothing swapped in between is believed.
    public func installedBundle(_ id: String) throws -> PluginBundle? {
        guard let receipt = try verifiedReceipt(id) else { return nil }
        return try PluginBundle.openInstalled(receipt.path, manifestText: receipt.manifest)
    }

    private func verifiedReceipt(_ id: String) throws -> InstallReceipt? {
        guard PluginID.problem(id) == nil, let receipt = try registry.receipt(id) else { return nil }
        if let problem = try problems(of: receipt, trustingStamps: true).first {
            try? record(action: "refuse-start", plugin: id, detail: problem.description)
            throw MarketplaceError(.tampered, "\(id) will not start: \(UntrustedText.sanitized(problem.description, limit: 400)) — its files differ from its install; "
                + "`brane plugin verify \(id)` lists every difference, `brane plugin install \(id)` restores it")
        }
        return receipt
    }

    /// The installed plugin whose install directory `path` is (after resolving links), if any: a
    /// directory under plugins/ named by path is held to its receipt like one named by id.
    public func installedPlugin(at path: String) throws -> String? {
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        return try registry.receipts().first { URL(fileURLWithPath: $0.path).resolvingSymlinksInPath().path == real }?.pluginID
    }

    /// Differences between an install and its receipt (an installed plugin never writes into its
    /// own tree: `PathPolicy`).
    func problems(of receipt: InstallReceipt, trustingStamps: Bool) throws -> [VerifyProblem] {
        let id = receipt.pluginID
        var info = stat()
        guard stat(receipt.path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            return [VerifyProblem(plugin: id, file: receipt.path, problem: "the install directory is missing")]
        }
        // The receipt must point into this home (a moved or restored home would run code from the
        // old place), through directories that are this user's alone.
        guard home.isVersionDirectory(receipt.path, of: id), let versions = home.versionsDirectory(of: id),
              BraneHome.isOwnDirectory(versions), BraneHome.isOwnDirectory(receipt.path) else {
            return [VerifyProblem(plugin: id, file: receipt.path, problem: "is not a directory of this home's plugins/\(id)/ that only this user can write "
                + "(a moved or restored home, a link, or loose permissions); reinstall the plugin")]
        }
        var problems = [VerifyProblem]()
        let expected = try registry.files(of: id)
        for file in expected {
            let path = "\(receipt.path)/\(file.path)"
            guard lstat(path, &info) == 0 else {
                problems.append(VerifyProblem(plugin: id, file: file.path, problem: "missing"))
                continue
            }
            if trustingStamps, let stamp = file.stamp, stamp == Self.stamp(info) { continue }
            guard let found = try receiptFile(of: path, relative: file.path, plugin: id) else {
                problems.append(VerifyProblem(plugin: id, file: file.path, problem: "not a file or link any more"))
                continue
            }
            if file.linkTarget != found.linkTarget {
                problems.append(VerifyProblem(plugin: id, file: file.path,
                                              problem: "link points to \(found.linkTarget ?? "(not a link)"), receipt says \(file.linkTarget ?? "(a file)")"))
            } else if file.sha256 != found.sha256 || file.size != found.size {
                problems.append(VerifyProblem(plugin: id, file: file.path,
                                              problem: "content changed: sha256 \(found.sha256.prefix(16))… (\(found.size) bytes), receipt says \(file.sha256.prefix(16))… (\(file.size) bytes)"))
            } else if found.stamp != file.stamp {
                // Same bytes under a new stamp (touched, copied back): the next start trusts it again. Best effort (a read-only home).
                try? registry.write { try $0.execute(sql: "UPDATE installedFiles SET stamp = ? WHERE pluginID = ? AND path = ?", arguments: [found.stamp, id, file.path]) }
            }
        }
        // By bytes: a Unicode twin of an installed file is another file.
        let known = Set(expected.map { Array($0.path.utf8) })
        var tooDeep = false
        for path in listing(of: receipt.path, tooDeep: &tooDeep).sorted() where !known.contains(Array(path.utf8)) {
            problems.append(VerifyProblem(plugin: id, file: path, problem: "not part of the install (added afterwards)"))
        }
        if tooDeep { problems.append(VerifyProblem(plugin: id, file: receipt.path, problem: "holds directories nested deeper than 64 levels, added afterwards")) }
        return problems
    }

    /// One file's receipt entry as it is now, or nil for anything but a file or link.
    private func receiptFile(of path: String, relative: String, plugin: String) throws -> InstalledFile? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            return InstalledFile(pluginID: plugin, path: relative, sha256: "", size: 0,
                                 linkTarget: (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "", stamp: Self.stamp(info))
        case S_IFREG:
            guard let (digest, size) = SHA256.hash(file: path) else { throw MarketplaceError(.io, "cannot read \(path)") }
            // The stamp is taken before hashing: a write racing the hash changes the ctime, so it is never trusted.
            return InstalledFile(pluginID: plugin, path: relative, sha256: digest, size: Int64(size), linkTarget: nil, stamp: Self.stamp(info))
        default:
            return nil
        }
    }

    /// Every file and link beneath `root`, relative to it (directories are not receipt entries);
    /// readdir, not a link-following walk, and at most 64 levels deep.
    private func listing(of root: String, prefix: String = "", depth: Int = 0, tooDeep: inout Bool) -> [String] {
        guard depth < 64 else {
            tooDeep = true
            return []
        }
        guard let directory = opendir(root) else { return [] }
        defer { closedir(directory) }
        var paths = [String]()
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name != ".", name != ".." else { continue }
            let relative = prefix + name
            var info = stat()
            let isDirectory = entry.pointee.d_type == UInt8(DT_UNKNOWN)
                ? lstat("\(root)/\(name)", &info) == 0 && info.st_mode & S_IFMT == S_IFDIR : entry.pointee.d_type == UInt8(DT_DIR)
            if isDirectory {
                paths += listing(of: "\(root)/\(name)", prefix: relative + "/", depth: depth + 1, tooDeep: &tooDeep)
            } else {
                paths.append(relative)
            }
        }
        return paths
    }

    /// A digest of everything a receipt says — version, origin, path, grants, the manifest copy and
    /// every file's hash — recorded in the (HMAC-chained) install entry, so `audit verify` sees a
    /// receipt edited in the registry afterwards.
    static func receiptDigest(_ receipt: InstallReceipt, files: [InstalledFile]) -> String {
        let lines = [receipt.version, receipt.indexName, receipt.path, receipt.grantedPaths ?? "", receipt.manifest]
            + files.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }.map { "\($0.path)\u{0}\($0.sha256)\u{0}\($0.size)\u{0}\($0.linkTarget ?? "")" }
        return String(SHA256.hash(Array(lines.joined(separator: "\u{1}").utf8)).prefix(32))
    }

    /// device:inode:size:mtime:ctime (nanoseconds) — what changes whenever the file's bytes can have.
    static func stamp(_ info: stat) -> String {
        "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
    }
}

extension Marketplace {
    /// "Not installed and in no index", with a suggestion from both.
    public func notInstalledOrIndexed(_ id: String) throws -> MarketplaceError {
        let known = try registry.receipts().map(\.pluginID)
            + registry.read { try String.fetchAll($0, sql: "SELECT DISTINCT pluginID FROM catalog") }
        let hint = closestMatch(to: id, in: known).map { "; did you mean \($0)?" } ?? ""
        return MarketplaceError(.notFound, "\(id) is neither installed nor in any added index\(hint)")
    }
}
