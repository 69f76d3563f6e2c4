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
                    let old = Self.properties(row["properties"])
                    var detail: [String: String] = [:]
                    for key in Set(old.keys).union(asset.properties.keys).sorted() where old[key] != asset.properties[key] {
                        detail[key] = "\(old[key] ?? "∅") → \(asset.properties[key] ?? "∅")"
                    }
                    let wasPresent: Bool = row["present"]
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
                AssetChange(scanID: row["scanID"], assetID: row["assetID"], change: AssetChange.Kind(rawValue: row["change"]) ?? .changed,
                            detail: Self.properties(row["detail"]))
            }
        }
    }

    private static func properties(_ text: String) -> [String: String] {
        guard case .object(let values)? = try? JSONValue(parsing: Array(text.utf8)) else { return [:] }
        return values.compactMapValues(\.stringValue)
    }

    private static func asset(_ row: Row) -> CatalogAsset {
        CatalogAsset(id: row["id"], kind: row["kind"], name: row["name"], scanner: row["scanner"], properties: properties(row["properties"]),
                     firstSeen: Date(timeIntervalSince1970: row["firstSeen"]), lastSeen: Date(timeIntervalSince1970: row["lastSeen"]),
                     present: row["present"])
    }
}
