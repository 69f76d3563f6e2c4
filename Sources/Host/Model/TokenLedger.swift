import Foundation
import GRDB

/// Tokens each neuron spent, per UTC day, in `$BRANE_HOME/usage.sqlite`; the daily budget
/// (`limits.dailyTokenBudget`) is checked against it before every model request.
public final class TokenLedger: @unchecked Sendable {
    private let database: any DatabaseWriter

    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "tokenUsage") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("neuron", .text).notNull()
                t.column("day", .text).notNull()        // UTC, yyyy-MM-dd
                t.column("at", .double).notNull()       // seconds since 1970
                t.column("endpoint", .text).notNull()
                t.column("promptTokens", .integer).notNull()
                t.column("completionTokens", .integer).notNull()
                t.column("estimated", .boolean).notNull()
            }
            try db.create(index: "token_usage_by_neuron_day", on: "tokenUsage", columns: ["neuron", "day"])
        }
        database = try SQLiteStore.open(path, configuration: configuration, migrator: migrator)
    }

    public convenience init(home: BraneHome = .current) throws {
        try home.prepare()
        try self.init(path: home.usage)
    }

    public static func day(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
    }

    public func record(neuron: String, endpoint: String, usage: TokenUsage, at date: Date = Date()) throws {
        try database.write { db in
            try db.execute(sql: """
                INSERT INTO tokenUsage (neuron, day, at, endpoint, promptTokens, completionTokens, estimated) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [neuron, Self.day(date), date.timeIntervalSince1970, endpoint, usage.promptTokens, usage.completionTokens, usage.estimated])
        }
    }

    /// Tokens `neuron` spent on the UTC day of `date`.
    public func spent(neuron: String, on date: Date = Date()) throws -> Int {
        try database.read { db in
            try Int.fetchOne(db, sql: "SELECT coalesce(sum(promptTokens + completionTokens), 0) FROM tokenUsage WHERE neuron = ? AND day = ?",
                             arguments: [neuron, Self.day(date)]) ?? 0
        }
    }
}
