import Foundation
import GRDB

/// An alert a specialist's rule raised while a neuron ran.
public struct StoredAlert: Sendable, Equatable {
    public var neuron: String
    public var specialist: String
    public var rule: String
    public var raisedAt: Date
    /// The specialist's alert as it sent it (date, trigger, message…).
    public var alert: JSONValue

    public init(neuron: String, specialist: String, raisedAt: Date = Date(), alert: JSONValue) {
        self.neuron = neuron
        self.specialist = specialist
        rule = alert["rule"]?.stringValue ?? "-"
        self.raisedAt = raisedAt
        self.alert = alert
    }

    /// The alert's date, trigger and message, for a line of text (the plugin wrote them: sanitised).
    public var text: String {
        ["date", "trigger", "message"].map { UntrustedText.sanitized(alert[$0]?.stringValue ?? "-") }.joined(separator: "  ")
    }
}

/// Alerts in the observation store.
extension ObservationStore {
    public func record(_ alert: StoredAlert) throws {
        try database.write { db in
            try db.execute(sql: "INSERT INTO alerts (neuron, specialist, rule, raisedAt, alert) VALUES (?, ?, ?, ?, ?)",
                           arguments: [alert.neuron, alert.specialist, alert.rule, alert.raisedAt.timeIntervalSince1970, alert.alert.serialized()])
        }
    }

    /// Where feeding an inbox file stopped (bytes and lines stored), for the file with this inode.
    public func inboxProgress(neuron: String, file: String, inode: UInt64) throws -> (offset: UInt64, line: Int) {
        try database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT inode, offset, line FROM inboxProgress WHERE neuron = ? AND file = ?", arguments: [neuron, file]),
                  (row["inode"] as Int64) == Int64(bitPattern: inode) else { return (0, 0) }
            return (UInt64(row["offset"] as Int64), row["line"])
        }
    }

    /// One batch of an inbox file: its alerts (each with its key, stored at most once) and how far
    /// the file is fed, in one transaction — a kill at any point leaves both or neither.
    public func commitInbox(neuron: String, file: String, inode: UInt64, offset: UInt64, line: Int, alerts: [(StoredAlert, key: String)]) throws {
        try database.write { db in
            for (alert, key) in alerts {
                try db.execute(sql: "INSERT OR IGNORE INTO alerts (neuron, specialist, rule, raisedAt, alert, eventKey) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [alert.neuron, alert.specialist, alert.rule, alert.raisedAt.timeIntervalSince1970, alert.alert.serialized(), key])
            }
            try db.execute(sql: "INSERT OR REPLACE INTO inboxProgress (neuron, file, inode, offset, line) VALUES (?, ?, ?, ?, ?)",
                           arguments: [neuron, file, Int64(bitPattern: inode), Int64(offset), line])
        }
    }

    /// A file fed to its end and moved to done/: its progress is no longer needed.
    public func forgetInbox(neuron: String, file: String) throws {
        try database.write { try $0.execute(sql: "DELETE FROM inboxProgress WHERE neuron = ? AND file = ?", arguments: [neuron, file]) }
    }

    /// A neuron's alerts raised since `since`, oldest first.
    public func alerts(neuron: String, since: Date = .distantPast) throws -> [StoredAlert] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM alerts WHERE neuron = ? AND raisedAt >= ? ORDER BY id",
                             arguments: [neuron, since.timeIntervalSince1970])
        }.map { row in
            var alert = StoredAlert(neuron: row["neuron"], specialist: row["specialist"],
                                    raisedAt: Date(timeIntervalSince1970: row["raisedAt"]),
                                    alert: (try? JSONValue(parsing: Array((row["alert"] as String).utf8))) ?? .object([:]))
            alert.rule = row["rule"]
            return alert
        }
    }
}
