import Foundation
import SystemPackage

/// Packs built plugins into archives and writes, versions and signs an index. It builds nothing:
/// the library must already exist (in the plugin directory or where `swift build` put it).
public struct Publisher {
    public let indexDirectory: String
    public let key: Ed25519Key
    public var now: Date = Date()

    public init(indexDirectory: String, key: Ed25519Key) {
        self.indexDirectory = URL(fileURLWithPath: indexDirectory).standardizedFileURL.path
        self.key = key
    }

    public struct Report: Codable, Sendable {
        public var index: String
        public var version: Int
        public var expires: Date
        public var keyID: String
        public var published: [String]
        public var unchanged: [String]
    }

    /// What goes into a plugin's archive: its manifest, its library, and README.md and data/
    /// when present.
    static func entries(of bundle: PluginBundle) throws -> [TarEntry] {
        let fm = FileManager.default
        func file(_ source: String, as path: String, mode: UInt32 = 0o644) throws -> TarEntry {
            guard let data = fm.contents(atPath: source) else { throw MarketplaceError(.io, "cannot read \(source)") }
            return TarEntry(path: path, kind: .file, mode: mode, contents: Array(data))
        }
        var entries = [try file("\(bundle.directory)/manifest.yaml", as: "manifest.yaml"),
                       try file(bundle.libraryPath, as: bundle.manifest.library, mode: 0o755)]
        if fm.fileExists(atPath: "\(bundle.directory)/README.md") {
            entries.append(try file("\(bundle.directory)/README.md", as: "README.md"))
        }
        let data = "\(bundle.directory)/data"
        if let walker = fm.enumerator(atPath: data) {
            entries.append(TarEntry(path: "data", kind: .directory, mode: 0o755))
            for relative in walker.allObjects.compactMap({ $0 as? String }).sorted() {
                var isDirectory: ObjCBool = false
                _ = fm.fileExists(atPath: "\(data)/\(relative)", isDirectory: &isDirectory)
                entries.append(isDirectory.boolValue ? TarEntry(path: "data/\(relative)", kind: .directory, mode: 0o755)
                                                     : try file("\(data)/\(relative)", as: "data/\(relative)"))
            }
        }
        return entries
    }

    /// Adds each plugin's current version to the index (an already published version must be
    /// byte-identical: releases are immutable), bumps the index version and signs it.
    public func publish(_ pluginDirectories: [String], name defaultName: String? = nil, validDays: Int = 90) throws -> Report {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(indexDirectory)/archives", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: "\(indexDirectory)/keys", withIntermediateDirectories: true)
        let indexPath = "\(indexDirectory)/index.yaml"
        var index: MarketplaceIndex
        if let text = try? String(contentsOfFile: indexPath, encoding: .utf8) {
            index = try MarketplaceIndex.parse(text, file: indexPath)
        } else {
            index = MarketplaceIndex(name: defaultName ?? URL(fileURLWithPath: indexDirectory).lastPathComponent, version: 0,
                                     expires: now, plugins: [])
        }
        var published = [String](), unchanged = [String]()
        for directory in pluginDirectories {
            let bundle = try PluginBundle.open(directory)
            let manifest = bundle.manifest
            let archive = try Tar.write(try Self.entries(of: bundle))
            let digest = SHA256.hash(archive)
            let archivePath = "archives/\(manifest.id)-\(manifest.version).tar"
            var release = MarketplaceIndex.Release(version: manifest.version, kind: manifest.kind, abi: manifest.abi, tier: manifest.tier,
                                                   description: manifest.description, tools: manifest.tools.map(\.name),
                                                   archive: archivePath, sha256: digest, size: UInt64(archive.count), yanked: false)
            (release.network, release.read, release.write) = (manifest.network.destinations, manifest.filesystem.read, manifest.filesystem.write)
            let label = "\(manifest.id) \(manifest.version)"
            var plugin = index.plugins.first { $0.id == manifest.id } ?? .init(id: manifest.id, releases: [])
            if let existing = plugin.releases.first(where: { $0.version == manifest.version }) {
                guard existing.sha256 == digest else {
                    throw MarketplaceError(.usage, "\(label) is already published with different content (sha256 \(existing.sha256.prefix(16))…); releases are immutable — raise the version in \(directory)/manifest.yaml")
                }
                unchanged.append(label)
                continue
            }
            try writeAtomically(archive, to: "\(indexDirectory)/\(archivePath)")
            plugin.releases.append(release)
            index.plugins.removeAll { $0.id == manifest.id }
            index.plugins.append(plugin)
            published.append(label)
        }
        index.version = try Self.nextVersion(index)
        index.expires = now.addingTimeInterval(Double(validDays) * 86_400)
        let text = Array(try index.yaml().utf8)
        let signature = try key.sign(text)
        try writeAtomically(Array(key.publicKeyPEM.utf8), to: "\(indexDirectory)/keys/\(key.keyID).pem")
        // Signature before index: a reader that races us sees an old index with a new signature
        // (refused, retried) rather than a new index with an old one.
        try writeAtomically(Array((Data(signature).base64EncodedString() + "\n").utf8), to: "\(indexDirectory)/index.yaml.sig")
        try writeAtomically(text, to: indexPath)
        return Report(index: index.name, version: index.version, expires: index.expires, keyID: key.keyID,
                      published: published, unchanged: unchanged)
    }

    /// The index's version after a publish or yank; an index already at the largest cannot be raised.
    private static func nextVersion(_ index: MarketplaceIndex) throws -> Int {
        let (next, overflow) = index.version.addingReportingOverflow(1)
        guard !overflow else { throw MarketplaceError(.usage, "index \(index.name) is at version \(index.version), the largest there is; it cannot be raised for another publish") }
        return next
    }

    /// Marks a published version yanked (still listed, never chosen) and re-signs.
    public func yank(_ id: String, version: String) throws -> Report {
        let indexPath = "\(indexDirectory)/index.yaml"
        guard let text = try? String(contentsOfFile: indexPath, encoding: .utf8) else {
            throw MarketplaceError(.notFound, "no index at \(indexPath)")
        }
        var index = try MarketplaceIndex.parse(text, file: indexPath)
        guard let p = index.plugins.firstIndex(where: { $0.id == id }),
              let r = index.plugins[p].releases.firstIndex(where: { $0.version.description == version }) else {
            throw MarketplaceError(.notFound, "\(id) \(version) is not in \(indexPath)")
        }
        index.plugins[p].releases[r].yanked = true
        index.version = try Self.nextVersion(index)
        let bytes = Array(try index.yaml().utf8)
        try writeAtomically(Array((Data(try key.sign(bytes)).base64EncodedString() + "\n").utf8), to: "\(indexDirectory)/index.yaml.sig")
        try writeAtomically(bytes, to: indexPath)
        return Report(index: index.name, version: index.version, expires: index.expires, keyID: key.keyID,
                      published: [], unchanged: [])
    }
}

/// Creates a key pair: the private key (PKCS#8 PEM, mode 0600) at `path`, the public key beside it.
public func generatePublisherKey(at path: String) throws -> Ed25519Key {
    guard !FileManager.default.fileExists(atPath: path) else {
        throw MarketplaceError(.usage, "\(path) already exists; refusing to overwrite a private key")
    }
    let key = try Ed25519Key.generate()
    try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                            withIntermediateDirectories: true)
    try writeAtomically(Array(key.privateKeyPEM.utf8), to: path, mode: 0o600)
    try writeAtomically(Array(key.publicKeyPEM.utf8), to: publicKeyPath(for: path))
    return key
}

/// `key.pem` → `key.pub.pem`.
public func publicKeyPath(for privateKeyPath: String) -> String {
    (privateKeyPath.hasSuffix(".pem") ? String(privateKeyPath.dropLast(4)) : privateKeyPath) + ".pub.pem"
}
