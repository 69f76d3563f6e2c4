import Foundation
import GRDB

/// The host's side of the marketplace: trusted indexes, their verified catalogs, and the
/// installed plugins. Every verb of `brane index` and `brane plugin install…verify` is a method here.
public final class Marketplace: @unchecked Sendable {
    public let home: BraneHome
    public let registry: Registry
    public let audit: AuditLog
    public var fetcher: Fetcher
    /// Steps of long work (fetch, verify, unpack…), for progress output.
    public var onStep: (@Sendable (_ plugin: String, _ step: InstallStep) -> Void)?
    /// Injected for tests of expiry; the wall clock otherwise.
    public var now: @Sendable () -> Date = { Date() }

    /// The largest index accepted (a 10,000-plugin index is ~4 MiB).
    static let indexSizeLimit: UInt64 = 64 << 20

    public init(home: BraneHome = .current, fetcher: Fetcher = Fetcher()) throws {
        try home.prepare()
        self.home = home
        self.fetcher = fetcher
        registry = try Registry(path: home.registry)
        // A key that vanished is not made anew beside a log it signed: that would orphan every entry.
        var info = stat()
        if lstat(home.auditKey, &info) != 0, try registry.read({ try AuditEntry.fetchCount($0) }) > 0 {
            throw MarketplaceError(.io, "the audit key \(home.auditKey) is missing, but the audit log has entries it signed: restore the key from a backup "
                + "(or move registry.sqlite aside to start anew)")
        }
        audit = try AuditLog(keyPath: home.auditKey)
    }

    // MARK: Indexes

    /// Pins `publicKeyPEM` for a new index, fetches and verifies it, and caches its catalog.
    @discardableResult
    public func addIndex(name: String, location: String, publicKeyPEM: String, allowExpired: Bool = false) throws -> IndexRecord {
        guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]*$", options: .regularExpression) != nil else {
            throw MarketplaceError(.usage, "index name \"\(name)\" may hold only letters, digits, '.', '_' and '-'")
        }
        if try registry.read({ try IndexRecord.fetchOne($0, key: name) }) != nil {
            throw MarketplaceError(.usage, "an index named \(name) is already added; remove it first or pick another name")
        }
        let key: Ed25519Key
        do { key = try Ed25519Key(pem: publicKeyPEM) } catch {
            throw MarketplaceError(.usage, "the key is not an Ed25519 public key in PEM form: \(error)")
        }
        let place = try IndexLocation(location)
        var record = IndexRecord(name: name, location: place.base, publicKey: key.publicKeyPEM, keyID: key.keyID,
                                 highestVersion: 0, expires: .distantPast, refreshedAt: now())
        try auditingIndexRefusals(name) {
            let (index, digest) = try loadVerified(record, allowExpired: allowExpired)
            record.declaredName = index.name
            try store(index, digest: digest, for: record, action: "index-add")
        }
        return try registry.read { try IndexRecord.fetchOne($0, key: name)! }
    }

    /// Fetches the index again, verifies it against the pinned key, refuses a rollback, and
    /// replaces the cached catalog.
    @discardableResult
    public func refreshIndex(_ name: String, allowExpired: Bool = false) throws -> MarketplaceIndex {
        let record = try indexRecord(name)
        return try auditingIndexRefusals(name) {
            let (index, digest) = try loadVerified(record, allowExpired: allowExpired)
            try store(index, digest: digest, for: record, action: nil)
            return index
        }
    }

    /// An index refused for what it is (signature, rollback, expiry, content) is audited.
    private func auditingIndexRefusals<T>(_ name: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as MarketplaceError where [.badSignature, .rollback, .expired, .invalidIndex, .tooLarge, .digestMismatch].contains(error.reason) {
            try? registry.write { try audit.append($0, action: "refuse", plugin: "-", detail: "index \(name): \(error.message)") }
            throw error
        }
    }

    public func removeIndex(_ name: String) throws {
        _ = try indexRecord(name)
        try registry.write { db in
            _ = try IndexRecord.deleteOne(db, key: name)
            try audit.append(db, action: "index-remove", plugin: "-", detail: "index \(name)")
        }
    }

    func indexRecord(_ name: String) throws -> IndexRecord {
        let all = try registry.indexes()
        guard let record = all.first(where: { $0.name == name }) else {
            let hint = closestMatch(to: name, in: all.map(\.name)).map { "; did you mean \($0)?" }
                ?? (all.isEmpty ? "; add one with `brane index add`" : "; known: \(all.map(\.name).joined(separator: ", "))")
            throw MarketplaceError(.notFound, "no index named \(name)\(hint)")
        }
        return record
    }

    /// Signature first, then parsing, then the pinned name and expiry: nothing unverified is ever
    /// parsed. Rollback is decided where the result is stored, in the same transaction.
    func loadVerified(_ record: IndexRecord, allowExpired: Bool) throws -> (index: MarketplaceIndex, digest: String) {
        let place = try IndexLocation(record.location)
        let indexURL = place.resolve("index.yaml")
        let quiet = Fetcher()
        let bytes = try quiet.fetch(indexURL, remote: place.isRemote, limit: Self.indexSizeLimit)
        let signatureText = try quiet.fetch(place.resolve("index.yaml.sig"), remote: place.isRemote, limit: 4096)
        let key = try Ed25519Key(pem: record.publicKey)
        guard let signature = Data(base64Encoded: String(decoding: signatureText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)),
              key.verify(Array(signature), of: bytes) else {
            throw MarketplaceError(.badSignature, "index \(record.name) (\(indexURL)): the signature does not verify with the key pinned for it (key \(record.keyID)); the index was altered or signed by another key — refused")
        }
        let index: MarketplaceIndex
        do { index = try MarketplaceIndex.parse(try YAMLFields.utf8Text(Array(bytes), file: indexURL), file: indexURL) } catch let failure as ValidationFailure {
            throw MarketplaceError(.invalidIndex, "index \(record.name) is signed but invalid:\n\(failure)")
        }
        // Byte for byte: String's == holds canonically equivalent names equal ("café" composed and
        // decomposed), and the histories below are looked up by bytes.
        if let pinned = record.declaredName, !pinned.utf8.elementsEqual(index.name.utf8) {
            throw MarketplaceError(.badSignature, "index \(record.name) now calls itself \"\(UntrustedText.sanitized(index.name, limit: 80))\", "
                + "not \"\(UntrustedText.sanitized(pinned, limit: 80))\" as when it was added: another index signed by the same key is standing in for it — refused")
        }
        if index.expires < now() && !allowExpired {
            throw MarketplaceError(.expired, "index \(record.name) expired at \(Timestamp.string(index.expires)); a stale mirror may be hiding updates. Refresh the index, or pass --allow-expired to accept it knowingly")
        }
        return (index, SHA256.hash(bytes))
    }

    /// Stores a verified index. The highest version seen under this name and key is read and raised
    /// inside the same write transaction — so two updates at once cannot lower it — and it outlives
    /// `index remove`. A lower version is a rollback; the same version with other bytes is refused too.
    private func store(_ index: MarketplaceIndex, digest: String, for record: IndexRecord, action: String?) throws {
        var record = record
        record.expires = index.expires
        record.refreshedAt = now()
        try registry.write { db in
            if record.declaredName == nil {
                // Added before names were pinned: pinned now, and the history kept under the local
                // name until then moves with it, so the first update cannot replay or re-hash.
                record.declaredName = index.name
                for table in [IndexHistory.databaseTableName, "releaseHistory"] {
                    try db.execute(sql: "UPDATE OR IGNORE \(table) SET name = ? WHERE name = ? AND keyID = ?", arguments: [index.name, record.name, record.keyID])
                }
            }
            // A published version never changes: a plugin's version with other bytes than this index
            // (by its name and key) ever offered for it is refused, and so is an index offering one
            // version twice. Versions are compared as semver orders them: `1.0.0+b` is `1.0.0`.
            var published = [String: [String: [(version: String, sha256: String)]]]()  // plugin → version's precedence → what was offered
            let rows = try Row.fetchCursor(db, sql: "SELECT pluginID, version, sha256 FROM releaseHistory WHERE name = ? AND keyID = ?",
                                           arguments: [index.name, record.keyID])
            while let row = try rows.next() {
                let version: String = try row.decode(forColumn: "version")
                published[try row.decode(forColumn: "pluginID"), default: [:]][SemanticVersion(version)?.precedence ?? version, default: []]
                    .append((version, try row.decode(forColumn: "sha256")))
            }
            let remember = try db.makeStatement(sql: "INSERT OR IGNORE INTO releaseHistory VALUES (?, ?, ?, ?, ?)")
            var listed = Set<String>()
            for plugin in index.plugins {
                guard listed.insert(plugin.id).inserted else {
                    throw MarketplaceError(.invalidIndex, "index \(record.name) lists \(plugin.id) twice; a plugin's versions are one list — refused")
                }
                var offered = Set<String>()
                for release in plugin.releases {
                    guard offered.insert(release.version.precedence).inserted else {
                        throw MarketplaceError(.invalidIndex, "index \(record.name) offers \(plugin.id) \(release.version.precedence) twice "
                            + "(build metadata does not make another version) — refused")
                    }
                    let earlier = published[plugin.id]?[release.version.precedence] ?? []
                    if let other = earlier.first(where: { $0.sha256 != release.sha256 }) {
                        throw MarketplaceError(.digestMismatch, "index \(record.name) now offers \(plugin.id) \(release.version) with other bytes "
                            + "(sha256 \(release.sha256.prefix(16))…, was \(other.sha256.prefix(16))…): a published version never changes — refused")
                    }
                    if !earlier.contains(where: { $0.version == release.version.description }) {
                        try remember.execute(arguments: [index.name, record.keyID, plugin.id, release.version.description, release.sha256])
                    }
                }
            }
            // Kept under the name the index gives itself, with its key: another local name cannot reset it.
            let seen = try IndexHistory.fetchOne(db, key: ["name": index.name, "keyID": record.keyID])
            if let seen, index.version < seen.highestVersion {
                throw MarketplaceError(.rollback, "index \(record.name) offers version \(index.version), but version \(seen.highestVersion) was seen before: an old copy is being replayed (rollback) — refused")
            }
            if let seen, index.version == seen.highestVersion, !seen.digest.isEmpty, seen.digest != digest {
                throw MarketplaceError(.rollback, "index \(record.name) offers version \(index.version) with other contents than the version \(index.version) seen before: "
                    + "a publisher must raise the version for every change (two different indexes under one version) — refused")
            }
            try IndexHistory(name: index.name, keyID: record.keyID, highestVersion: index.version, digest: digest).save(db)
            record.highestVersion = index.version
            try record.save(db)
            try CatalogRow.filter(Column("indexName") == record.name).deleteAll(db)
            // One prepared statement for every row: a record's insert encodes it through Codable,
            // most of the time of a 10,000-plugin index's store. CatalogRow's columns, in its order.
            let insert = try db.makeStatement(sql: """
                INSERT OR REPLACE INTO catalog (indexName, pluginID, version, kind, abi, tier, description, tools, archive, sha256, size,
                                                yanked, network, filesystemRead, filesystemWrite)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for plugin in index.plugins {
                for r in plugin.releases {
                    try insert.execute(arguments: [record.name, plugin.id, r.version.description, r.kind.rawValue, r.abi.description, r.tier.rawValue,
                                                   r.description, r.tools.joined(separator: " "), r.archive, r.sha256, Int64(r.size), r.yanked,
                                                   r.network.joined(separator: "\n"), r.read.joined(separator: "\n"), r.write.joined(separator: "\n")])
                }
            }
            if let action {
                try audit.append(db, action: action, plugin: "-",
                                 detail: "index \(record.name) at \(record.location), key \(record.keyID), version \(index.version)")
            }
        }
    }

    // MARK: Search

    public struct SearchHit: Codable, Sendable, Equatable {
        public var id: String
        public var version: String
        public var kind: String
        public var tier: Int
        public var description: String
        public var tools: [String]
        public var index: String
    }

    /// Plugins whose id, description or tool names contain every word of `text` (case-insensitive),
    /// each with its newest non-yanked release.
    public func search(_ text: String) throws -> [SearchHit] {
        let words = text.lowercased().split(separator: " ").map(String.init)
        let rows = try registry.read { db -> [CatalogRow] in
            var request = CatalogRow.filter(Column("yanked") == false)
            for word in words {
                let pattern = "%\(word)%"
                request = request.filter(Column("pluginID").like(pattern) || Column("description").like(pattern) || Column("tools").like(pattern))
            }
            return try request.fetchAll(db)
        }
        var newest = [String: CatalogRow]()
        for row in rows where newest[row.pluginID].map({ $0.semanticVersion < row.semanticVersion }) ?? true {
            newest[row.pluginID] = row
        }
        return newest.values.sorted { $0.pluginID < $1.pluginID }.map {
            SearchHit(id: $0.pluginID, version: $0.version, kind: $0.kind, tier: $0.tier, description: $0.description,
                      tools: $0.tools.split(separator: " ").map(String.init), index: $0.indexName)
        }
    }
}
