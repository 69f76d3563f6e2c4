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
