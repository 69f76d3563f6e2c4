import Foundation
import GRDB

/// Sensor readings in the observation store: only readings that changed are recorded.
extension ObservationStore {
    public func record(_ stored: StoredReading) throws {
        try record(readings: [stored])
    }

    /// Records `readings` in one transaction: all or none.
    public func record(readings: [StoredReading]) throws {
        try database.write { db in
            for stored in readings {
                let changed = JSONValue.array(stored.changed.map(JSONValue.string)).serialized()
                try db.execute(sql: "INSERT INTO readings (sensor, takenAt, reading, changed) VALUES (?, ?, ?, ?)",
                               arguments: [stored.sensor, stored.takenAt.timeIntervalSince1970, stored.reading.json.serialized(), changed])
            }
        }
    }

    /// Removes readings older than `age` seconds; returns how many.
    @discardableResult
    public func prune(olderThan age: Double, now: Date = Date()) throws -> Int {
        try database.write { db in
            try db.execute(sql: "DELETE FROM readings WHERE takenAt < ?", arguments: [now.timeIntervalSince1970 - age])
            return db.changesCount
        }
    }

    public func latestReading(_ sensor: String) throws -> StoredReading? {
        try database.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM readings WHERE sensor = ? ORDER BY takenAt DESC, id DESC LIMIT 1", arguments: [sensor])
        }.map(Self.reading)
    }

    /// The newest reading of every sensor that has one, by sensor id.
    public func latestReadings() throws -> [StoredReading] {
        try database.read { db in
            try Row.fetchAll(db, sql: """
                SELECT r.* FROM readings r
                JOIN (SELECT sensor, max(id) AS id FROM readings GROUP BY sensor) newest ON newest.id = r.id
                ORDER BY r.sensor
                """)
        }.map(Self.reading)
    }

    public func history(_ sensor: String, since: Date) throws -> [StoredReading] {
        try database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM readings WHERE sensor = ? AND takenAt >= ? ORDER BY takenAt, id",
                             arguments: [sensor, since.timeIntervalSince1970])
        }.map(Self.reading)
    }

    /// The readings of `sensor` taken in `range`, at most `points` of them: all when they are
    /// that few, otherwise the first of each of `points` equal slices of the time they span — one
    /// index seek per slice, so 100,000 stored readings cost no more than a hundred. Also how
    /// many the range holds, counted up to `countLimit` (as alerts are).
    public func sampledHistory(_ sensor: String, in range: ClosedRange<Date>, points: Int,
                               countLimit: Int = 10_000) throws -> (readings: [StoredReading], inRange: Int) {
        let (from, to) = (range.lowerBound.timeIntervalSince1970, range.upperBound.timeIntervalSince1970)
        return try database.read { db in
            let inRange = try countRows(db, "FROM readings WHERE sensor = ? AND takenAt BETWEEN ? AND ?", [sensor, from, to],
                                    upTo: max(countLimit, points + 1))
            if inRange <= points {
                let rows = try Row.fetchAll(db, sql: "SELECT * FROM readings WHERE sensor = ? AND takenAt BETWEEN ? AND ? ORDER BY takenAt, id",
                                            arguments: [sensor, from, to])
                return (rows.map(Self.reading), inRange)
            }
            // From the first reading to the last in the range: a week of readings asked for over a month still gets every point.
            // One aggregate a query: SQLite answers a lone min() or max() from the index, both together by a scan.
            func end(_ aggregate: String) throws -> Double? {
                try Row.fetchOne(db, sql: "SELECT \(aggregate)(takenAt) AS t FROM readings WHERE sensor = ? AND takenAt BETWEEN ? AND ?",
                                 arguments: [sensor, from, to]).map { $0.number("t") }
            }
            let (from, to) = (try end("min") ?? from, try end("max") ?? to)
            let slice = (to - from) / Double(points)
            let statement = try db.cachedStatement(sql: "SELECT * FROM readings WHERE sensor = ? AND takenAt >= ? AND takenAt < ? ORDER BY takenAt, id LIMIT 1")
            var sampled: [StoredReading] = []
            for index in 0..<points {
                let start = from + Double(index) * slice
                let end = index == points - 1 ? to.nextUp : start + slice
                if let row = try Row.fetchOne(statement, arguments: [sensor, start, end]) { sampled.append(Self.reading(row)) }
            }
            return (sampled, inRange)
        }
    }

    private static func reading(_ row: Row) -> StoredReading {
        let json = (try? JSONValue(parsing: Array(row.text("reading").utf8))) ?? .object([:])
        let changed = (try? JSONValue(parsing: Array(row.text("changed").utf8)))?.arrayValue?.compactMap(\.stringValue) ?? []
        return StoredReading(sensor: row.text("sensor"), takenAt: row.date("takenAt"),
                             reading: SensorReading(json: json), changed: changed)
    }
}
