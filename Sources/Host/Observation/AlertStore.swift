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

    /// Where feeding an inbox file stopped (bytes and lines stored) and the generation its alerts
    /// are keyed by, for the file with this inode; nil when its feed has not begun.
    public func inboxProgress(neuron: String, file: String, inode: UInt64) throws -> (offset: UInt64, line: Int, generation: String)? {
        try database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT inode, offset, line, generation FROM inboxProgress WHERE neuron = ? AND file = ?", arguments: [neuron, file]),
                  row.integer("inode") == Int64(bitPattern: inode) else { return nil }
            return (UInt64(clamping: row.integer("offset")), Int(row.integer("line")), row.text("generation"))
        }
    }

    /// The progress of a feed of the file with this inode under another name (a failed file
    /// dropped in again renamed): its path and where it stopped.
    public func inboxProgress(neuron: String, inode: UInt64) throws -> (file: String, offset: UInt64, line: Int, generation: String)? {
        try database.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT file, offset, line, generation FROM inboxProgress WHERE neuron = ? AND inode = ?",
                                             arguments: [neuron, Int64(bitPattern: inode)]) else { return nil }
            return (row.text("file"), UInt64(clamping: row.integer("offset")), Int(row.integer("line")), row.text("generation"))
        }
    }

    /// What one batch of an inbox file stored: its alerts (each with its key, stored at most once)
    /// and, for each specialist that keeps a window, the events it took.
    public struct InboxBatch {
        public var alerts: [(StoredAlert, key: String)] = []
        public var events: [(specialist: String, event: [UInt8])] = []
        /// Specialist → its window: how many of its latest events are kept.
        public var windows: [String: Int] = [:]

        public init(alerts: [(StoredAlert, key: String)] = [], events: [(specialist: String, event: [UInt8])] = [], windows: [String: Int] = [:]) {
            (self.alerts, self.events, self.windows) = (alerts, events, windows)
        }
    }

    /// One batch of an inbox file and how far the file is fed, in one transaction: a kill at any
    /// point leaves the alerts, the specialists' windows and the offset all moved on, or none.
    public func commitInbox(neuron: String, file: String, inode: UInt64, generation: String, offset: UInt64, line: Int, batch: InboxBatch) throws {
        try database.write { db in
            for (alert, key) in batch.alerts {
                try db.execute(sql: "INSERT OR IGNORE INTO alerts (neuron, specialist, rule, raisedAt, alert, eventKey) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [alert.neuron, alert.specialist, alert.rule, alert.raisedAt.timeIntervalSince1970, alert.alert.serialized(), key])
            }
            for (specialist, event) in batch.events {
                try db.execute(sql: "INSERT INTO specialistEvents (neuron, specialist, event) VALUES (?, ?, ?)",
                               arguments: [neuron, specialist, Data(event)])
            }
            for (specialist, window) in batch.windows {
                try db.execute(sql: """
                    DELETE FROM specialistEvents WHERE neuron = ?1 AND specialist = ?2 AND seq < COALESCE(
                        (SELECT seq FROM specialistEvents WHERE neuron = ?1 AND specialist = ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3 - 1), 0)
                    """, arguments: [neuron, specialist, window])
            }
            try db.execute(sql: "INSERT OR REPLACE INTO inboxProgress (neuron, file, inode, offset, line, generation) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [neuron, file, Int64(bitPattern: inode), Int64(offset), line, generation])
        }
    }

    /// The latest `limit` events a neuron's specialist took, oldest first: what a new instance is replayed.
    public func specialistWindow(neuron: String, specialist: String, limit: Int) throws -> [[UInt8]] {
        try database.read { db in
            try Data.fetchAll(db, sql: "SELECT event FROM specialistEvents WHERE neuron = ? AND specialist = ? ORDER BY seq DESC LIMIT ?",
                              arguments: [neuron, specialist, limit])
        }.reversed().map { Array($0) }
    }

    /// A file fed to its end and moved to done/: its progress is no longer needed.
    public func forgetInbox(neuron: String, file: String) throws {
        try database.write { try $0.execute(sql: "DELETE FROM inboxProgress WHERE neuron = ? AND file = ?", arguments: [neuron, file]) }
    }

    /// The newest `limit` alerts of `specialists` in a neuron raised since `since`, oldest
    /// first, and how many there are in all, counted up to `countLimit`: a count past it is
    /// reported as that, so an answer over a million alerts costs no more than one over ten
    /// thousand. Only the specialists named: an alert stored under the neuron's id by one it does
    /// not enable (another file of the same id, a hand-written row) is not its data.
    public func newestAlerts(neuron: String, specialists: [String], since: Date, limit: Int,
                             countLimit: Int = 10_000) throws -> (alerts: [StoredAlert], total: Int) {
        guard !specialists.isEmpty else { return ([], 0) }
        let filter = "neuron = ? AND specialist IN (\(placeholders(specialists.count))) AND raisedAt >= ?"
        let arguments = [neuron] + StatementArguments(specialists) + [since.timeIntervalSince1970]
        return try database.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM alerts WHERE \(filter) ORDER BY raisedAt DESC, id DESC LIMIT ?",
                                        arguments: arguments + [limit])
            let total = try countRows(db, "FROM alerts WHERE \(filter)", arguments, upTo: countLimit)
            return (rows.reversed().map(Self.alert), total)
        }
    }

    /// A neuron's alerts raised since `since`, oldest first.
    public func alerts(neuron: String, since: Date = .distantPast) throws -> [StoredAlert] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM alerts WHERE neuron = ? AND raisedAt >= ? ORDER BY id",
                             arguments: [neuron, since.timeIntervalSince1970])
        }.map(Self.alert)
    }

    private static func alert(_ row: Row) -> StoredAlert {
        var alert = StoredAlert(neuron: row.text("neuron"), specialist: row.text("specialist"), raisedAt: row.date("raisedAt"),
                                alert: (try? JSONValue(parsing: Array(row.text("alert").utf8))) ?? .object([:]))
        alert.rule = row.text("rule")
        return alert
    }
}
