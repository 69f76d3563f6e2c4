import Foundation
import Yams

/// `index.yaml`: the one signed catalog of a marketplace. Its bytes are signed as they are, so
/// the host verifies the signature before it parses a single field.
public struct MarketplaceIndex: Sendable, Equatable {
    public static let apiVersion = "brane.dev/v1"
    public static let kind = "MarketplaceIndex"

    public var name: String
    /// Raised by every publish; a host never accepts a lower one than it has seen (rollback).
    public var version: Int
    /// After this instant the index is refused unless the user allows an expired mirror (freeze).
    public var expires: Date
    public var plugins: [Plugin]

    public struct Plugin: Sendable, Equatable {
        public var id: String
        public var releases: [Release]

        public init(id: String, releases: [Release]) {
            self.id = id
            self.releases = releases
        }
    }

    /// One published version. Kind, ABI, tier, tools, network destinations and filesystem paths
    /// are here, under the signature, so the whole sandbox a plugin will ask for is vouched for
    /// before its archive is fetched, and the installed manifest must say exactly the same.
    public struct Release: Sendable, Equatable, Codable {
        public var version: SemanticVersion
        public var kind: PluginKind
        public var abi: ABIVersion
        public var tier: PrivacyTier
        public var description: String
        public var tools: [String]
        /// `network.connect` as `host:port` and unix socket paths (`NetworkAccess.destinations`).
        public var network: [String] = []
        public var read: [String] = []
        public var write: [String] = []
        /// Relative to the index's location.
        public var archive: String
        public var sha256: String
        public var size: UInt64
        public var yanked: Bool

        public init(version: SemanticVersion, kind: PluginKind, abi: ABIVersion, tier: PrivacyTier, description: String,
                    tools: [String], archive: String, sha256: String, size: UInt64, yanked: Bool) {
            (self.version, self.kind, self.abi, self.tier, self.description) = (version, kind, abi, tier, description)
            (self.tools, self.archive, self.sha256, self.size, self.yanked) = (tools, archive, sha256, size, yanked)
        }
    }

    public init(name: String, version: Int, expires: Date, plugins: [Plugin]) {
        self.name = name
        self.version = version
        self.expires = expires
        self.plugins = plugins
    }

    // MARK: Reading

    /// An index is big by nature (~40 nodes a release): its bound is in proportion, ~100,000 releases.
    static let nodeLimit = 4_000_000

    /// Parses index text; errors name the file, line, column and field path. An index in the form
    /// `yaml()` writes is read straight from its events (CanonicalIndexReader); any other, and any
    /// invalid one, by the tree reader.
    public static func parse(_ text: String, file: String) throws -> MarketplaceIndex {
        if text.utf8.count <= Marketplace.indexSizeLimit, let index = CanonicalIndexReader.read(text, nodeLimit: nodeLimit) { return index }
        return try parseTree(text, file: file)
    }

    /// The tree reader: any YAML the limits allow, with a diagnostic for every problem.
    static func parseTree(_ text: String, file: String) throws -> MarketplaceIndex {
        var f = YAMLFields(file: file)
        let index = f.document(text, sizeLimit: Int(Marketplace.indexSizeLimit), nodeLimit: nodeLimit).flatMap { read($0, &f) }
        guard let index, !f.hasErrors else { throw ValidationFailure(diagnostics: f.diagnostics) }
        return index
    }

    private static func read(_ root: Node, _ f: inout YAMLFields) -> MarketplaceIndex? {
        let keys = ["apiVersion", "kind", "name", "version", "expires", "plugins"]
        guard let top = f.mapping(root, "", known: keys, required: Set(keys)) else { return nil }
        if let node = top["apiVersion"], let value = f.string(node, "apiVersion"), value != apiVersion {
            f.error(node, "apiVersion", "expected \(apiVersion), found \"\(value)\"")
        }
        if let node = top["kind"], let value = f.string(node, "kind"), value != kind {
            f.error(node, "kind", "expected \(kind), found \"\(value)\"")
        }
        let name = top["name"].flatMap { f.nonEmptyString($0, "name") }
        let version = top["version"].flatMap { f.integer($0, "version", in: 1...Int.max) }
        let expires = top["expires"].flatMap { node -> Date? in
            guard let text = f.string(node, "expires") else { return nil }
            guard let date = Timestamp.date(text) else {
                f.error(node, "expires", "expected an ISO 8601 time such as 2027-01-31T00:00:00Z, found \"\(text)\"")
                return nil
            }
            return date
        }
        var plugins = [Plugin]()
        if let node = top["plugins"] {
            if let sequence = node.sequence {
                for (i, item) in sequence.enumerated() {
                    if let plugin = readPlugin(item, "plugins[\(i)]", &f) { plugins.append(plugin) }
                }
            } else {
                f.error(node, "plugins", "expected a list of plugins, found \(f.describe(node))")
            }
        }
        guard let name, let version, let expires else { return nil }
        return MarketplaceIndex(name: name, version: version, expires: expires, plugins: plugins)
    }

    private static func readPlugin(_ node: Node, _ path: String, _ f: inout YAMLFields) -> Plugin? {
        guard let m = f.mapping(node, path, known: ["id", "versions"], required: ["id", "versions"]),
              let id = m["id"].flatMap({ f.nonEmptyString($0, "\(path).id") }),
              let versions = m["versions"] else { return nil }
        if let problem = PluginID.problem(id) {
            f.error(m["id"]!, "\(path).id", problem)
            return nil
        }
        guard let sequence = versions.sequence else {
            f.error(versions, "\(path).versions", "expected a list of versions, found \(f.describe(versions))")
            return nil
        }
        let releases = sequence.enumerated().compactMap { readRelease($1, "\(path).versions[\($0)]", &f) }
        return Plugin(id: id, releases: releases)
    }

    /// 64 lowercase hex digits. Bytes, not Characters: Unicode properties per character cost
    /// 10,000 digests 4% of a parse.
    static func isDigest(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// The largest archive a release may declare (and so the most an install ever fetches): 512 MiB.
    public static let archiveSizeLimit: UInt64 = 512 << 20
    static let releaseKeys = ["version", "kind", "abi", "tier", "description", "tools", "network", "filesystem", "archive", "sha256", "size", "yanked"]

    private static func readRelease(_ node: Node, _ path: String, _ f: inout YAMLFields) -> Release? {
        guard let m = f.mapping(node, path, known: releaseKeys, required: Set(releaseKeys).subtracting(["tools", "network", "filesystem", "yanked"])) else { return nil }
        func field(_ key: String) -> (Node, String)? { m[key].map { ($0, "\(path).\(key)") } }
        let version = field("version").flatMap { node, p -> SemanticVersion? in
            guard let text = f.string(node, p) else { return nil }
            guard let v = SemanticVersion(text) else { f.error(node, p, "expected a semantic version, found \"\(UntrustedText.sanitized(text, limit: 160))\""); return nil }
            return v
        }
        let kind = field("kind").flatMap { node, p -> PluginKind? in
            guard let text = f.string(node, p) else { return nil }
            guard let k = PluginKind(rawValue: text) else { f.error(node, p, "expected specialist, synapse, sensor or scanner, found \"\(text)\""); return nil }
            return k
        }
        let abi = field("abi").flatMap { node, p -> ABIVersion? in
            guard let text = node.scalar?.string, let abi = ABIVersion(text) else {
                f.error(node, p, "expected an ABI version such as \"1.0\", found \(f.describe(node))")
                return nil
            }
            return abi
        }
        let tier = field("tier").flatMap { f.integer($0, $1, in: 0...2) }.flatMap(PrivacyTier.init(rawValue:))
        // What people read in search, info and install output: one plain line each, so no field can forge a row.
        func plainLine(_ node: Node, _ p: String, _ text: String) -> String? {
            guard UntrustedText.isPlainLine(text) else {
                f.error(node, p, "expected one line of text without control characters, found \"\(UntrustedText.sanitized(text, limit: 120))\"")
                return nil
            }
            return text
        }
        let description = field("description").flatMap { node, p in f.string(node, p).flatMap { plainLine(node, p, $0) } }
        let tools = field("tools").flatMap { node, p -> [String]? in
            guard let names = f.stringList(node, p) else { return nil }
            if let problem = names.lazy.compactMap(ToolDeclaration.nameProblem).first {
                f.error(node, p, problem)
                return nil
            }
            return names
        } ?? []
        let archive = field("archive").flatMap { node, p -> String? in
            guard let text = f.nonEmptyString(node, p) else { return nil }
            guard ArchiveUnpacker.relativePath(text) != nil else {
                f.error(node, p, "expected a path relative to the index, without \"..\", found \"\(text)\"")
                return nil
            }
            return text
        }
        let sha256 = field("sha256").flatMap { node, p -> String? in
            guard let text = f.string(node, p) else { return nil }
            guard isDigest(text) else {
                f.error(node, p, "expected 64 lowercase hex digits, found \"\(UntrustedText.sanitized(text, limit: 80))\"")
                return nil
            }
            return text
        }
        let size = field("size").flatMap { f.integer($0, $1, in: 1...Int(Self.archiveSizeLimit)) }.map(UInt64.init)
        let yanked = field("yanked").flatMap { node, p -> Bool? in
            guard let value = node.scalar.flatMap({ Bool.construct(from: $0) }) else {
                f.error(node, p, "expected true or false, found \(f.describe(node))")
                return nil
            }
            return value
        } ?? false
        func plainLines(_ node: Node, _ p: String) -> [String]? {
            guard let items = f.stringList(node, p) else { return nil }
            guard items.allSatisfy(UntrustedText.isPlainLine) else {
                f.error(node, p, "expected entries of one line each, without control characters")
                return nil
            }
            return items
        }
        let network = field("network").flatMap { plainLines($0, $1) } ?? []
        var read: [String] = [], write: [String] = []
        if let (node, p) = field("filesystem"), let fs = f.mapping(node, p, known: ["read", "write"]) {
            read = fs["read"].flatMap { plainLines($0, "\(p).read") } ?? []
            write = fs["write"].flatMap { plainLines($0, "\(p).write") } ?? []
        }
        guard let version, let kind, let abi, let tier, let description, let archive, let sha256, let size else { return nil }
        var release = Release(version: version, kind: kind, abi: abi, tier: tier, description: description, tools: tools,
                              archive: archive, sha256: sha256, size: size, yanked: yanked)
        (release.network, release.read, release.write) = (network, read, write)
        return release
    }

    // MARK: Writing

    /// The YAML text of the index, plugins sorted by id and versions by semver, so that the same
    /// catalog always serializes to the same bytes.
    public func yaml() throws -> String {
        func scalar(_ text: String) -> Node { Node(text) }
        func quoted(_ text: String) -> Node { Node(text, .implicit, .doubleQuoted) }
        let pluginNodes = plugins.sorted { $0.id < $1.id }.map { plugin -> Node in
            let releases = plugin.releases.sorted { $0.version < $1.version }.map { r -> Node in
                Node([
                    (scalar("version"), quoted(r.version.description)),
                    (scalar("kind"), scalar(r.kind.rawValue)),
                    (scalar("abi"), quoted(r.abi.description)),
                    (scalar("tier"), scalar(String(r.tier.rawValue))),
                    (scalar("description"), quoted(r.description)),
                    (scalar("tools"), Node(r.tools.map(quoted), .implicit, .flow)),
                    (scalar("network"), Node(r.network.map(quoted), .implicit, .flow)),
                    (scalar("filesystem"), Node([(scalar("read"), Node(r.read.map(quoted), .implicit, .flow)),
                                                 (scalar("write"), Node(r.write.map(quoted), .implicit, .flow))])),
                    (scalar("archive"), quoted(r.archive)),
                    (scalar("sha256"), quoted(r.sha256)),
                    (scalar("size"), scalar(String(r.size))),
                    (scalar("yanked"), scalar(r.yanked ? "true" : "false")),
                ])
            }
            return Node([(scalar("id"), quoted(plugin.id)), (scalar("versions"), Node(releases))])
        }
        let root = Node([
            (scalar("apiVersion"), scalar(Self.apiVersion)),
            (scalar("kind"), scalar(Self.kind)),
            (scalar("name"), quoted(name)),
            (scalar("version"), scalar(String(version))),
            (scalar("expires"), quoted(Timestamp.string(expires))),
            (scalar("plugins"), Node(pluginNodes)),
        ])
        return try Yams.serialize(node: root, sortKeys: false)
    }
}
