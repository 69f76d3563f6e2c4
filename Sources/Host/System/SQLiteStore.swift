import Foundation
import GRDB

/// Opens one of Brane's SQLite stores (registry, observations, usage) — the one way they are
/// opened. Two first commands at once do not both migrate it: opening and migrating are serialised by a lock
/// file of its own (opening and closing the database file here would drop SQLite's fcntl locks on
/// it), waited for at most 10 s. On a read-only home (a read-only mount, a backup) the store is a
/// private snapshot — its WAL folded in, opened read-only, unlinked at once (the open connection
/// keeps it) — because SQLite cannot open a WAL database where it cannot make its -shm file; reads
/// work, writes fail. Every error names the file.
enum SQLiteStore {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func open(_ path: String, configuration base: Configuration, migrator: DatabaseMigrator) throws(Failure) -> any DatabaseWriter {
        var configuration = base
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if access(directory, W_OK) != 0 && access(path, R_OK) == 0 {
            let copy = FileManager.default.temporaryDirectory.appendingPathComponent("brane-store-\(getpid())-\(UUID().uuidString.prefix(8))").path
            defer { try? FileManager.default.removeItem(atPath: copy) }
            do {
                try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
                for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: path + suffix) {
                    try FileManager.default.copyItem(atPath: path + suffix, toPath: "\(copy)/store.sqlite\(suffix)")
                }
                let folding = try DatabaseQueue(path: "\(copy)/store.sqlite")
                try folding.writeWithoutTransaction { try $0.execute(sql: "PRAGMA journal_mode = DELETE") }
                try folding.close()
                configuration.readonly = true
                let snapshot = try DatabaseQueue(path: "\(copy)/store.sqlite", configuration: configuration)
                _ = try snapshot.read { try $0.tableExists("grdb_migrations") }
                return snapshot
            } catch {
                throw Failure(description: "cannot read \(path) on a read-only home: \(error)")
            }
        }
        do {
            ensurePrivateFile(path)
            let lock = Glibc.open(path + ".migration-lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
            defer { if lock >= 0 { close(lock) } }
            let deadline = ContinuousClock.now + .seconds(10)
            while lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0 {
                guard ContinuousClock.now < deadline else { throw Failure(description: "another process has held \(path) for 10 s; try again") }
                usleep(5_000)
            }
            // Opened under the lock too: switching a new file to WAL takes a lock SQLite does not
            // wait for (SQLITE_BUSY at once) while another process migrates it.
            let database = try DatabasePool(path: path, configuration: configuration)
            try migrator.migrate(database)
            return database
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "cannot open \(path): \(error)")
        }
    }
}
