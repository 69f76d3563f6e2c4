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
        if let existing = FileManager.default.contents(atPath: keyPath), existing.count == 32 {
            key = Array(existing)
            return
        }
        let fresh = try secureRandomBytes(32)
        let fd = open(keyPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 && errno == EEXIST, let raced = FileManager.default.contents(atPath: keyPath), raced.count == 32 {
            key = Array(raced)   // another brane process created it first
            return
        }
        guard fd >= 0 else { throw MarketplaceError(.io, "cannot create the audit key \(keyPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard (try? FileDescriptor(rawValue: fd).writeAll(fresh)) == fresh.count, fsync(fd) == 0 else {
            throw MarketplaceError(.io, "cannot write the audit key \(keyPath)")
        }
        key = fresh
    }

    func append(_ db: Database, action: String, plugin: String, detail: String, now: Date = Date()) throws {
        let last = try AuditEntry.order(Column("sequence").desc).fetchOne(db)
        var entry = AuditEntry(sequence: (last?.sequence ?? 0) + 1, time: ISO8601DateFormatter().string(from: now),
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
    /// Appends one entry that records no change of the registry: a plugin death, a start under
    /// the development opt-out, a connection a plugin asked for. The detail is sanitised: it carries plugin-originated text.
    public func record(action: String, plugin: String, detail: String) throws {
        try registry.write { try audit.append($0, action: action, plugin: plugin, detail: UntrustedText.sanitized(detail, limit: 2048)) }
    }
}
