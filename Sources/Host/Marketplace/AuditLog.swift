import Foundation
import GRDB
import SystemPackage

public struct AuditEntry: Codable, FetchableRecord, PersistableRecord, Sendable, Equatable {
    public static let databaseTableName = "audit"
    public var sequence: Int64
    public var time: String
    /// install, upgrade, remove, refuse, pin, unpin, index-add, index-remove; plugin-death, sandbox-weaker, plugin-connect.
    public var action: String
    public var pluginID: String
    public var detail: String
    /// HMAC-SHA-256 over the previous entry's MAC and this entry's fields.
    public var mac: String

    var signedText: String { "\(sequence)\t\(time)\t\(action)\t\(pluginID)\t\(detail)" }
}

/// A tamper-evident log of what changed on this host: each entry is HMAC-chained to the one
/// before, with a key only this host holds (`audit.key`, mode 0600). Editing, removing or
/// reordering an entry breaks the chain at that point. Entries are written in the same
/// transaction as the change they record.
public struct AuditLog: Sendable {
    let key: [UInt8]

    public init(keyPath: String) throws {
        key = try OwnerOnlyRandomFile.readOrCreate(keyPath, length: 32, name: "audit key", ifDamaged:
            "every audit entry depends on it: restore it from a backup, or move it aside to start a new log (the old entries then no longer verify)")
    }

    func append(_ db: Database, action: String, plugin: String, detail: String, now: Date = Date()) throws {
        let last = try AuditEntry.order(Column("sequence").desc).fetchOne(db)
        var entry = AuditEntry(sequence: (last?.sequence ?? 0) + 1, time: Timestamp.string(now),
                               action: action, pluginID: plugin, detail: detail, mac: "")
        entry.mac = mac(of: entry, previous: last?.mac ?? "")
        try entry.insert(db)
    }

    func mac(of entry: AuditEntry, previous: String) -> String {
        hmacSHA256(key: key, message: Array("\(previous)\n\(entry.signedText)".utf8))
    }

    /// Nil when the chain is whole; otherwise where it first breaks and how.
    public func firstBreak(in entries: [AuditEntry]) -> String? {
        var previous = ""
        for (offset, entry) in entries.enumerated() {
            let expected = Int64(offset + 1)
            if entry.sequence != expected {
                return "entry #\(expected) is missing: the log jumps from #\(expected - 1) to #\(entry.sequence) (an entry was removed)"
            }
            if mac(of: entry, previous: previous) != entry.mac {
                return "entry #\(entry.sequence) (\(entry.action) \(entry.pluginID) at \(entry.time)) does not match its MAC: "
                    + "it was edited, or entries were reordered or removed at this point"
            }
            previous = entry.mac
        }
        return nil
    }
}

extension Marketplace {
    public func auditEntries() throws -> [AuditEntry] {
        try registry.read { try AuditEntry.order(Column("sequence")).fetchAll($0) }
    }
}

extension Marketplace {
    /// What is wrong with the audit log: the first break of its chain, and every install whose
    /// receipt has no matching entry — which the chain alone cannot see when the log was emptied
    /// or its tail cut off. Empty when the log tells the story the receipts do.
    public func auditProblems() throws -> [String] {
        let entries = try auditEntries()
        var problems = audit.firstBreak(in: entries).map { [$0] } ?? []
        for receipt in try registry.receipts() {
            let install = entries.last { entry in
                ["install", "upgrade", "downgrade"].contains(entry.action) && entry.pluginID == receipt.pluginID
                    && entry.detail.hasPrefix("\(receipt.version) ") && entry.detail.contains("sha256 \(receipt.sha256)")
            }
            guard let install else {
                problems.append("\(receipt.pluginID) \(receipt.version) is installed, but no audit entry records that install "
                    + "(sha256 \(receipt.sha256.prefix(16))…): entries were removed, or the log was emptied")
                continue
            }
            let digest = Self.receiptDigest(receipt, files: try registry.files(of: receipt.pluginID))
            if !install.detail.hasSuffix("receipt \(digest)") {
                problems.append("the receipt of \(receipt.pluginID) \(receipt.version) differs from what entry #\(install.sequence) recorded at install "
                    + "(its files, manifest, grants or path were edited in the registry)")
            }
        }
        return problems
    }

    /// Appends one entry that records no change of the registry: a plugin death, a start under
    /// the development opt-out, a connection a plugin asked for. The detail is sanitised: it carries plugin-originated text.
    public func record(action: String, plugin: String, detail: String) throws {
        try registry.write { try audit.append($0, action: action, plugin: plugin, detail: UntrustedText.sanitized(detail, limit: 2048)) }
    }
}
