import Foundation
import GRDB

/// An asset in the catalog: a stable id from its kind and key, first and last seen, and
/// whether the latest scan of its scanner still found it.
public struct CatalogAsset: Sendable, Encodable {
    public var id: String
    public var kind: String
    public var name: String
    public var scanner: String
    public var properties: [String: String]
    public var firstSeen: Date
    public var lastSeen: Date
    public var present: Bool
}

/// A change one scan found.
public struct AssetChange: Sendable, Encodable {
    public enum Kind: String, Sendable, Encodable { case added, changed, removed }
    public var scanID: Int64
    public var assetID: String
    public var change: Kind
    /// For `changed`: property → "old → new".
    public var detail: [String: String]
}

public struct ScanSummary: Sendable, Encodable {
    public var scanID: Int64
    public var scanner: String
    public var assets: Int
    public var changes: [AssetChange]
    public var notes: [String]
}

/// The asset catalog in the observation store.
extension ObservationStore {
    /// The stable id of an asset: its kind and a short hash of its key, so it survives rescans.
    public static func assetID(kind: String, key: String) -> String {
        "\(kind)-" + SHA256.hash(Array("\(kind)\u{0}\(key)".utf8)).prefix(12)
    }

    /// Records one scanner's complete result in one transaction: new assets are added, known ones
    /// updated (with what changed), and assets of this scanner the scan no longer found are marked removed.
    public func recordScan(scanner: String, assets: [(kind: String, key: String, name: String, properties: [String: String])],
                           notes: [String], at now: Date = Date()) throws -> ScanSummary {
        try database.write { db in
            try db.execute(sql: "INSERT INTO scans (scanner, startedAt, assets) VALUES (?, ?, ?)",
                           arguments: [scanner, now.timeIntervalSince1970, assets.count])
            let scanID = db.lastInsertedRowID
            var changes: [AssetChange] = []
            var seen: Set<String> = []
            for asset in assets {
                let id = Self.assetID(kind: asset.kind, key: asset.key)
                guard seen.insert(id).inserted else { continue }
                let properties = JSONValue.object(asset.properties.mapValues(JSONValue.string)).serialized()
                if let row = try Row.fetchOne(db, sql: "SELECT properties, present FROM assets WHERE id = ?", arguments: [id]) {
                    let old = Self.properties(row.text("properties"))
                    var detail: [String: String] = [:]
                    for key in Set(old.keys).union(asset.properties.keys).sorted() where old[key] != asset.properties[key] {
                        detail[key] = "\(old[key] ?? "∅") → \(asset.properties[key] ?? "∅")"
                    }
                    let wasPresent = row.flag("present")
                    if !wasPresent { changes.append(AssetChange(scanID: scanID, assetID: id, change: .added, detail: [:])) }
                    else if !detail.isEmpty { changes.append(AssetChange(scanID: scanID, assetID: id, change: .changed, detail: detail)) }
                    try db.execute(sql: "UPDATE assets SET name = ?, properties = ?, lastSeen = ?, scanID = ?, present = 1 WHERE id = ?",
                                   arguments: [asset.name, properties, now.timeIntervalSince1970, scanID, id])
                } else {
                    changes.append(AssetChange(scanID: scanID, assetID: id, change: .added, detail: [:]))
                    try db.execute(sql: """
                        INSERT INTO assets (id, kind, name, scanner, properties, firstSeen, lastSeen, scanID, present)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
                        """, arguments: [id, asset.kind, asset.name, scanner, properties, now.timeIntervalSince1970, now.timeIntervalSince1970, scanID])
                }
            }
            for id in try String.fetchAll(db, sql: "SELECT id FROM assets WHERE scanner = ? AND present = 1 AND scanID != ?", arguments: [scanner, scanID]) {
                changes.append(AssetChange(scanID: scanID, assetID: id, change: .removed, detail: [:]))
            }
            try db.execute(sql: "UPDATE assets SET present = 0 WHERE scanner = ? AND present = 1 AND scanID != ?", arguments: [scanner, scanID])
            for change in changes {
                try db.execute(sql: "INSERT INTO assetChanges (scanID, assetID, change, detail) VALUES (?, ?, ?, ?)",
                               arguments: [scanID, change.assetID, change.change.rawValue,
                                           JSONValue.object(change.detail.mapValues(JSONValue.string)).serialized()])
            }
            return ScanSummary(scanID: scanID, scanner: scanner, assets: seen.count, changes: changes, notes: notes)
        }
    }

    /// Assets, optionally of one kind; removed ones only when asked.
    public func assets(kind: String? = nil, includeRemoved: Bool = false) throws -> [CatalogAsset] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM assets WHERE (? IS NULL OR kind = ?) AND (? OR present = 1) ORDER BY kind, name, id
                """, arguments: [kind, kind, includeRemoved])
        }.map(Self.asset)
    }

    public func asset(_ id: String) throws -> CatalogAsset? {
        try database.read { db in try Row.fetchOne(db, sql: "SELECT * FROM assets WHERE id = ?", arguments: [id]) }.map(Self.asset)
    }

    /// The changes the newest scan of each scanner found, or those of one scan.
    public func assetChanges(scanID: Int64? = nil) throws -> [AssetChange] {
        try database.read { db in
            let rows = if let scanID {
                try Row.fetchAll(db, sql: "SELECT * FROM assetChanges WHERE scanID = ? ORDER BY change, assetID", arguments: [scanID])
            } else {
                try Row.fetchAll(db, sql: """
                    SELECT c.* FROM assetChanges c JOIN (SELECT max(id) AS id FROM scans GROUP BY scanner) newest ON newest.id = c.scanID
                    ORDER BY c.scanID, c.change, c.assetID
                    """)
            }
            return rows.map { row in
                AssetChange(scanID: row.integer("scanID"), assetID: row.text("assetID"), change: AssetChange.Kind(rawValue: row.text("change")) ?? .changed,
                            detail: Self.properties(row.text("detail")))
            }
        }
    }

    /// The assets `scanners` found, at most `limit` (by kind and name), and how many match in all
    /// (counted up to `countLimit`): of one kind when given, with `nameContains` in their name (any
    /// case) when given, removed ones only when asked.
    public func assets(scanners: [String], kind: String?, nameContains: String?, includeRemoved: Bool,
                       limit: Int, countLimit: Int = 10_000) throws -> (assets: [CatalogAsset], total: Int) {
        guard !scanners.isEmpty else { return ([], 0) }
        // instr, not LIKE: a name filter's % and _ are text, not wildcards.
        let filter = "scanner IN (\(placeholders(scanners.count))) AND (? IS NULL OR kind = ?) AND (? IS NULL OR instr(lower(name), lower(?)) > 0) AND (? OR present = 1)"
        let arguments = StatementArguments(scanners) + [kind, kind, nameContains, nameContains, includeRemoved]
        return try database.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM assets WHERE \(filter) ORDER BY kind, name, id LIMIT ?", arguments: arguments + [limit])
            let total = try countRows(db, "FROM assets WHERE \(filter)", arguments, upTo: countLimit)
            return (rows.map(Self.asset), total)
        }
    }

    /// How many present assets `scanners` found, by kind.
    public func assetCounts(scanners: [String]) throws -> [String: Int] {
        guard !scanners.isEmpty else { return [:] }
        return try database.read { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, count(*) AS n FROM assets WHERE present = 1 AND scanner IN (\(placeholders(scanners.count))) GROUP BY kind",
                                        arguments: StatementArguments(scanners)) {
                counts[row.text("kind")] = Int(row.integer("n"))
            }
            return counts
        }
    }

    /// A change with when and by which scanner it was seen.
    public struct DatedChange: Sendable {
        public var at: Date
        public var scanner: String
        public var change: AssetChange
    }

    /// The newest `limit` changes scans of `scanners` found since `since`, oldest first, and how
    /// many there are in all (counted up to `countLimit`).
    public func assetChanges(scanners: [String], since: Date, limit: Int, countLimit: Int = 10_000) throws -> (changes: [DatedChange], total: Int) {
        guard !scanners.isEmpty else { return ([], 0) }
        let filter = "s.scanner IN (\(placeholders(scanners.count))) AND s.startedAt >= ?"
        let arguments = StatementArguments(scanners) + [since.timeIntervalSince1970]
        return try database.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT c.*, s.startedAt, s.scanner FROM assetChanges c JOIN scans s ON s.id = c.scanID
                WHERE \(filter) ORDER BY c.scanID DESC, c.rowid DESC LIMIT ?
                """, arguments: arguments + [limit])
            let total = try countRows(db, "FROM assetChanges c JOIN scans s ON s.id = c.scanID WHERE \(filter)", arguments, upTo: countLimit)
            return (rows.reversed().map { row in
                DatedChange(at: row.date("startedAt"), scanner: row.text("scanner"),
                            change: AssetChange(scanID: row.integer("scanID"), assetID: row.text("assetID"),
                                                change: AssetChange.Kind(rawValue: row.text("change")) ?? .changed, detail: Self.properties(row.text("detail"))))
            }, total)
        }
    }

    /// The newest scan of each of `scanners`.
    public func lastScans(scanners: [String]) throws -> [(scanner: String, at: Date, assets: Int)] {
        guard !scanners.isEmpty else { return [] }
        return try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.* FROM scans s JOIN (SELECT max(id) AS id FROM scans WHERE scanner IN (\(placeholders(scanners.count))) GROUP BY scanner) newest
                ON newest.id = s.id ORDER BY s.scanner
                """, arguments: StatementArguments(scanners))
        }.map { ($0.text("scanner"), $0.date("startedAt"), Int($0.integer("assets"))) }
    }

    private static func properties(_ text: String) -> [String: String] {
        guard case .object(let values)? = try? JSONValue(parsing: Array(text.utf8)) else { return [:] }
        return values.compactMapValues(\.stringValue)
    }

    private static func asset(_ row: Row) -> CatalogAsset {
        CatalogAsset(id: row.text("id"), kind: row.text("kind"), name: row.text("name"), scanner: row.text("scanner"), properties: properties(row.text("properties")),
                     firstSeen: row.date("firstSeen"), lastSeen: row.date("lastSeen"), present: row.flag("present"))
    }
}
