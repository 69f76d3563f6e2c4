import Foundation
import GRDB

/// What Brane observed, in `$BRANE_HOME/observations.sqlite` (WAL): sensor readings kept when
/// they changed, the alerts specialists raised, and the asset catalog scanners build. Separate
/// from the registry so that a busy sensor never contends with an install.
public final class ObservationStore: @unchecked Sendable {
    let database: any DatabaseWriter

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        database = try SQLiteStore.open(path, configuration: configuration, migrator: Self.migrator)
    }

    /// Folds the WAL into the database and truncates it. SQLite's own checkpoints after each
    /// commit are passive and leave the file at its largest; a long run calls this now and then
    /// (and after each inbox file), so the WAL never holds more than a minute of writes.
    public func checkpoint() throws {
        try database.writeWithoutTransaction { try $0.checkpoint(.truncate) }
    }

    /// A table whose new rows a subscriber is told of, with who wrote each row: the sensor, the
    /// scanner, or for an alert its neuron and specialist (`neuron/specialist`).
    public enum Feed: String, Sendable, CaseIterable {
        case alerts = "neuron || '/' || specialist", readings = "sensor", scans = "scanner"
    }

    /// The id of `feed`'s newest row (0 when it has none).
    public func newestRowID(_ feed: Feed) throws -> Int64 {
        try database.read { try Int64.fetchOne($0, sql: "SELECT max(id) FROM \(feed)") } ?? 0
    }

    /// The rows of `feed` stored after `id`, oldest first, at most `limit`: each id and who wrote
    /// it (`Feed`). A range of the rowid, so a poll costs the same whatever the table holds.
    public func rows(_ feed: Feed, after id: Int64, limit: Int) throws -> [(id: Int64, by: String)] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT id, \(feed.rawValue) AS by FROM \(feed) WHERE id > ? ORDER BY id LIMIT ?", arguments: [id, limit])
        }.map { ($0.integer("id"), $0.text("by")) }
    }

    public convenience init(home: BraneHome = .current) throws {
        try home.prepare()
        try self.init(path: home.observations)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "readings") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("sensor", .text).notNull()
                t.column("takenAt", .double).notNull()  // seconds since 1970
                t.column("reading", .text).notNull()    // the sensor's JSON
                t.column("changed", .text).notNull()    // JSON array: what crossed a threshold
            }
            try db.create(index: "readings_by_sensor_time", on: "readings", columns: ["sensor", "takenAt"])
            try db.create(table: "assets") { t in
                t.primaryKey("id", .text)               // stable: scanner kind + natural key
                t.column("kind", .text).notNull()
                t.column("name", .text).notNull()
                t.column("scanner", .text).notNull()
                t.column("properties", .text).notNull()
                t.column("firstSeen", .double).notNull()
                t.column("lastSeen", .double).notNull()
                t.column("scanID", .integer).notNull()  // the last scan that saw it
                t.column("present", .boolean).notNull()  // false once a scan of its scanner no longer finds it
            }
            try db.create(table: "scans") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("scanner", .text).notNull()
                t.column("startedAt", .double).notNull()
                t.column("assets", .integer).notNull()
            }
            try db.create(table: "assetChanges") { t in
                t.column("scanID", .integer).notNull().references("scans")
                t.column("assetID", .text).notNull()
                t.column("change", .text).notNull()     // added | changed | removed
                t.column("detail", .text).notNull()     // JSON: changed properties, old → new
            }
            try db.create(index: "asset_changes_by_scan", on: "assetChanges", columns: ["scanID"])
        }
        migrator.registerMigration("v2: alerts") { db in
            try db.create(table: "alerts") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("neuron", .text).notNull()
                t.column("specialist", .text).notNull()
                t.column("rule", .text).notNull()
                t.column("raisedAt", .double).notNull()  // when the host received it, seconds since 1970
                t.column("alert", .text).notNull()       // the specialist's JSON (date, trigger, message…)
            }
            try db.create(index: "alerts_by_neuron_time", on: "alerts", columns: ["neuron", "raisedAt"])
        }
        migrator.registerMigration("v3: exactly-once inbox") { db in
            // An alert from an inbox line has a key (file, inode, line, specialist, index): fed again
            // after a kill, it is not stored twice.
            try db.alter(table: "alerts") { t in t.add(column: "eventKey", .text) }
            try db.create(index: "alerts_by_event_key", on: "alerts", columns: ["eventKey"], unique: true)
            try db.create(table: "inboxProgress") { t in
                t.column("neuron", .text).notNull()
                t.column("file", .text).notNull()
                t.column("inode", .integer).notNull()
                t.column("offset", .integer).notNull()   // bytes fed and stored
                t.column("line", .integer).notNull()     // lines fed and stored
                t.primaryKey(["neuron", "file"])
            }
        }
        migrator.registerMigration("v4: specialist windows") { db in
            // The latest events each specialist of a neuron was fed, up to its manifest's
            // `specialist.window`, replayed into every new instance of it.
            try db.create(table: "specialistEvents") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("neuron", .text).notNull()
                t.column("specialist", .text).notNull()
                t.column("event", .blob).notNull()      // the event's JSON, as fed
            }
            try db.create(index: "specialist_events_by_window", on: "specialistEvents", columns: ["neuron", "specialist", "seq"])
        }
        migrator.registerMigration("v5: inbox file generations") { db in
            // A file's alerts are keyed by a generation made when its feed begins, not by its inode:
            // a new file under a name and a recycled inode is new data, not a repeat.
            try db.alter(table: "inboxProgress") { t in t.add(column: "generation", .text).notNull().defaults(to: "") }
        }
        migrator.registerMigration("v6: indexes for host tools") { db in
            // Host tools ask for one specialist's newest alerts (`HostObservations`).
            try db.create(index: "alerts_by_specialist_time", on: "alerts", columns: ["neuron", "specialist", "raisedAt"])
            try db.create(index: "assets_by_scanner_kind", on: "assets", columns: ["scanner", "kind", "name"])
            try db.create(index: "scans_by_scanner", on: "scans", columns: ["scanner", "startedAt"])
        }
        return migrator
    }
}

/// Values of the observation store read leniently: the file is the user's, anyone who can write
/// it can put text where a number belongs or a blob where text does, and GRDB's typed subscript
/// traps on a value it cannot convert. A value of the wrong type reads as zero or empty.
extension Row {
    func number(_ column: String) -> Double { Double.fromDatabaseValue(self[column] as DatabaseValue) ?? 0 }
    func integer(_ column: String) -> Int64 { Int64.fromDatabaseValue(self[column] as DatabaseValue) ?? 0 }
    func text(_ column: String) -> String { String.fromDatabaseValue(self[column] as DatabaseValue) ?? "" }
    func flag(_ column: String) -> Bool { Bool.fromDatabaseValue(self[column] as DatabaseValue) ?? false }
    func date(_ column: String) -> Date { Date(timeIntervalSince1970: number(column)) }
}

/// How many rows `query` (`FROM … WHERE …`) yields, counted up to `limit`: a total past it reads
/// as `limit`, so an answer over a million rows costs no more than one over `limit`.
func countRows(_ db: Database, _ query: String, _ arguments: StatementArguments, upTo limit: Int) throws -> Int {
    try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT 1 \(query) LIMIT ?)", arguments: arguments + [limit]) ?? 0
}

/// `?, ?, ?` for an SQL `IN (…)` of `count` values.
func placeholders(_ count: Int) -> String {
    Array(repeating: "?", count: count).joined(separator: ", ")
}
