import Foundation
import GRDB

/// A trusted index: where it is, the key pinned when it was added, and the highest version seen.
public struct IndexRecord: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "indexes"
    public var name: String
    public var location: String
    public var publicKey: String
    public var keyID: String
    public var highestVersion: Int
    public var expires: Date
    public var refreshedAt: Date
    /// The `name` the index itself declared when it was added: pinned with the key, so another
    /// index signed by the same key cannot stand in for this one.
    public var declaredName: String? = nil
}

/// The highest version of an index ever accepted under one name and key, and the digest of those
/// bytes: kept apart from `indexes`, so removing and re-adding an index cannot reset it.
struct IndexHistory: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "indexHistory"
    var name: String
    var keyID: String
    var highestVersion: Int
    var digest: String
}

/// One release of the verified catalog of an index, cached so search and info need no fetch.
public struct CatalogRow: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "catalog"
    public var indexName: String
    public var pluginID: String
    public var version: String
    public var kind: String
    public var abi: String
    public var tier: Int
    public var description: String
    public var tools: String
    public var archive: String
    public var sha256: String
    public var size: Int64
    public var yanked: Bool
    /// The vouched-for sandbox: destinations and paths, one per line.
    public var network: String = ""
    public var filesystemRead: String = ""
    public var filesystemWrite: String = ""

    var semanticVersion: SemanticVersion { SemanticVersion(version) ?? SemanticVersion("0.0.0")! }
}

/// What was installed, from where, and the hash of every file, so remove, info and verify work
/// even after the plugin has left its index.
public struct InstallReceipt: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "installs"
    public var pluginID: String
    public var version: String
    public var indexName: String
    public var sha256: String
    public var size: Int64
    public var path: String
    public var kind: String
    public var tier: Int
    public var manifest: String
    public var pinned: Bool
    public var installedAt: Date
    /// Absolute paths the user granted at install (`--allow-path`), one per line; upgrades keep them.
    public var grantedPaths: String? = nil
}

extension InstallReceipt {
    /// Read column by column rather than through Decodable, which took most of `plugin list`'s own
    /// time at 100 plugins. SQLite's own conversions apply, as they did through Decodable (a text
    /// tier reads as 0); a NULL or a missing column is an error.
    public init(row: Row) throws {
        pluginID = try row.decode(forColumn: "pluginID")
        version = try row.decode(forColumn: "version")
        indexName = try row.decode(forColumn: "indexName")
        sha256 = try row.decode(forColumn: "sha256")
        size = try row.decode(forColumn: "size")
        path = try row.decode(forColumn: "path")
        kind = try row.decode(forColumn: "kind")
        tier = try row.decode(forColumn: "tier")
        manifest = try row.decode(forColumn: "manifest")
        pinned = try row.decode(forColumn: "pinned")
        installedAt = try row.decode(forColumn: "installedAt")
        grantedPaths = try row.decode(forColumn: "grantedPaths")
    }
}

public struct InstalledFile: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "installedFiles"
    public var pluginID: String
    /// Relative to the install directory.
    public var path: String
    /// Empty for links.
    public var sha256: String
    public var size: Int64
    public var linkTarget: String?
    /// The file's identity when it was hashed — device, inode, size, mtime and ctime — so a start can
    /// trust the hash without re-reading the file while none of them changed (ctime cannot be set back).
    public var stamp: String?
}

/// The registry: one SQLite file in WAL mode. Every change of an install is one transaction, so
/// a host killed at any instant leaves either the old receipt or the new one, never half.
public final class Registry: Sendable {
    let database: any DatabaseWriter

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.foreignKeysEnabled = true
        do {
            database = try SQLiteStore.open(path, configuration: configuration, migrator: Self.migrator)
        } catch {
            throw MarketplaceError(.io, "registry: \(error)")
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "indexes") { t in
                t.primaryKey("name", .text)
                t.column("location", .text).notNull()
                t.column("publicKey", .text).notNull()
                t.column("keyID", .text).notNull()
                t.column("highestVersion", .integer).notNull()
                t.column("expires", .datetime).notNull()
                t.column("refreshedAt", .datetime).notNull()
            }
            try db.create(table: "catalog") { t in
                t.column("indexName", .text).notNull().references("indexes", onDelete: .cascade)
                t.column("pluginID", .text).notNull()
                t.column("version", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("abi", .text).notNull()
                t.column("tier", .integer).notNull()
                t.column("description", .text).notNull()
                t.column("tools", .text).notNull()
                t.column("archive", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("yanked", .boolean).notNull()
                t.primaryKey(["indexName", "pluginID", "version"])
            }
            try db.create(table: "installs") { t in
                t.primaryKey("pluginID", .text)
                t.column("version", .text).notNull()
                t.column("indexName", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("path", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("tier", .integer).notNull()
                t.column("manifest", .text).notNull()
                t.column("pinned", .boolean).notNull()
                t.column("installedAt", .datetime).notNull()
            }
            try db.create(table: "installedFiles") { t in
                t.column("pluginID", .text).notNull().references("installs", onDelete: .cascade)
                t.column("path", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("size", .integer).notNull()
                t.column("linkTarget", .text)
                t.primaryKey(["pluginID", "path"])
            }
            try db.create(table: "audit") { t in
                t.primaryKey("sequence", .integer)
                t.column("time", .text).notNull()
                t.column("action", .text).notNull()
                t.column("pluginID", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("mac", .text).notNull()
            }
        }
        migrator.registerMigration("v2: file stamps") { db in
            try db.alter(table: "installedFiles") { t in t.add(column: "stamp", .text) }
            try db.alter(table: "installs") { t in t.add(column: "grantedPaths", .text) }
        }
        migrator.registerMigration("v3: index history") { db in
            try db.alter(table: "indexes") { t in t.add(column: "declaredName", .text) }
            try db.create(table: "indexHistory") { t in
                t.column("name", .text).notNull()
                t.column("keyID", .text).notNull()
                t.column("highestVersion", .integer).notNull()
                t.column("digest", .text).notNull()
                t.primaryKey(["name", "keyID"])
            }
            try db.execute(sql: "INSERT INTO indexHistory SELECT name, keyID, highestVersion, '' FROM indexes")
        }
        migrator.registerMigration("v4: vouched sandbox") { db in
            try db.alter(table: "catalog") { t in
                t.add(column: "network", .text).notNull().defaults(to: "")
                t.add(column: "filesystemRead", .text).notNull().defaults(to: "")
                t.add(column: "filesystemWrite", .text).notNull().defaults(to: "")
            }
        }
        migrator.registerMigration("v5: release history") { db in
            // Every release an index (by its own name and key) ever offered, with its digest: "a
            // published version never changes" must hold across a version dropped and offered
            // again, not only against the catalog of the update before.
            try db.create(table: "releaseHistory") { t in
                t.column("name", .text).notNull()
                t.column("keyID", .text).notNull()
                t.column("pluginID", .text).notNull()
                t.column("version", .text).notNull()
                t.column("sha256", .text).notNull()
                t.primaryKey(["name", "keyID", "pluginID", "version"])
            }
            try db.execute(sql: """
                INSERT OR IGNORE INTO releaseHistory SELECT coalesce(i.declaredName, i.name), i.keyID, c.pluginID, c.version, c.sha256
                FROM catalog c JOIN indexes i ON i.name = c.indexName
                """)
        }
        return migrator
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try database.read(body) } catch let error as MarketplaceError { throw error } catch {
            throw MarketplaceError(.io, "registry read failed: \(Self.briefly(error))")
        }
    }

    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try database.write(body) } catch let error as MarketplaceError { throw error } catch {
            throw MarketplaceError(.io, "registry write failed: \(Self.briefly(error))")
        }
    }

    /// A database error as one bounded line: GRDB's row errors quote the whole row, a receipt's
    /// manifest included (up to 1 MiB, from a file on disk).
    private static func briefly(_ error: any Error) -> String { UntrustedText.sanitized("\(error)", limit: 400) }

    // MARK: Queries used by several verbs

    public func indexes() throws -> [IndexRecord] { try read { try IndexRecord.order(Column("name")).fetchAll($0) } }
    public func receipts() throws -> [InstallReceipt] { try read { try InstallReceipt.order(Column("pluginID")).fetchAll($0) } }
    public func receipt(_ id: String) throws -> InstallReceipt? { try read { try InstallReceipt.fetchOne($0, key: id) } }
    public func files(of id: String) throws -> [InstalledFile] {
        try read { try InstalledFile.filter(Column("pluginID") == id).order(Column("path")).fetchAll($0) }
    }
    public func releases(of id: String) throws -> [CatalogRow] {
        try read { try CatalogRow.filter(Column("pluginID") == id).fetchAll($0) }
            .sorted { $0.semanticVersion < $1.semanticVersion }
    }
}
