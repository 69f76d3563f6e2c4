import Foundation

/// Which neurons are running, and with which plugin versions: `$BRANE_HOME/run/<pid>.json`, one
/// per `neuron run` or `mcp serve`, exclusively flocked for as long as its process lives (the
/// kernel drops the lock when it dies, however it dies). `plugin upgrade` and `remove` read them
/// to warn, and keep a version's files while a running neuron uses them, so it goes on serving
/// the version it started with until it reloads.
public enum RunningNeurons {
    public struct Record: Codable, Sendable, Equatable {
        public struct Plugin: Codable, Sendable, Equatable {
            public var id: String
            public var version: String
            public var directory: String
        }

        public var pid: Int32
        public var neuron: String
        public var command: String
        public var plugins: [Plugin]
    }

    /// A running neuron's own record, held until it is released (or the process ends).
    public final class Registration: @unchecked Sendable {
        private let fd: Int32
        private let path: String
        private let command: String

        fileprivate init(fd: Int32, path: String, command: String) { (self.fd, self.path, self.command) = (fd, path, command) }

        /// Says which plugins the neuron runs now (after a reload, the new ones).
        public func update(_ neuron: ResolvedNeuron) {
            let record = Record(pid: getpid(), neuron: neuron.config.id, command: command,
                                plugins: neuron.bundles.values.sorted { $0.manifest.id < $1.manifest.id }.map {
                                    Record.Plugin(id: $0.manifest.id, version: $0.manifest.version.description, directory: $0.directory)
                                })
            guard let bytes = try? JSONEncoder().encode(record) else { return }
            _ = ftruncate(fd, 0)
            _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }

        deinit {
            unlink(path)
            close(fd)
        }
    }

    static func directory(_ home: BraneHome) -> String { "\(home.root)/run" }

    /// An exclusive flock on `$BRANE_HOME/locks/neuron-<hash of id>.lock`, released by the kernel when its holder dies.
    public final class RunLock: Sendable {
        private let fd: Int32
        init(fd: Int32) { self.fd = fd }
        deinit { close(fd) }
    }

    /// One `neuron run` per neuron and home at a time — whatever inbox each names, both would
    /// feed the one window and alerts in the store: a second is refused, naming the process that
    /// holds the lock.
    public static func lockForOneRun(neuron: String, home: BraneHome = .current) throws -> RunLock {
        try home.prepare()
        let path = "\(home.locks)/neuron-\(SHA256.hash(Array(neuron.utf8)).prefix(16)).lock"
        let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MarketplaceError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var holder = [UInt8](repeating: 0, count: 32)
            let count = holder.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            close(fd)
            let pid = String(decoding: holder.prefix(max(0, count)).filter { (0x30...0x39).contains($0) }, as: UTF8.self)
            throw MarketplaceError(.busy, "neuron \(UntrustedText.sanitized(neuron, limit: 80)) is already running\(pid.isEmpty ? "" : " (pid \(pid))"): "
                + "a second run would feed the same store; stop that one first")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return RunLock(fd: fd)
    }

    /// Records `neuron` as running in this process. Created under a temporary name and locked
    /// before it is renamed in, so a reader never takes a fresh record for a dead one's.
    public static func register(_ neuron: ResolvedNeuron, command: String, home: BraneHome = .current) throws -> Registration {
        let directory = directory(home)
        try? home.prepare()  // a home that does not exist yet is made as every command makes it
        _ = mkdir(directory, 0o700)
        guard BraneHome.isOwnDirectory(directory) else {
            throw MarketplaceError(.io, "\(directory) is not a directory of this user's alone (a symbolic link, or writable by others): refused; move it aside")
        }
        let path = "\(directory)/\(getpid()).json", temporary = "\(directory)/.\(getpid()).json"
        unlink(temporary)
        let fd = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MarketplaceError(.io, "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, rename(temporary, path) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            unlink(temporary)
            throw MarketplaceError(.io, "cannot record the running neuron in \(path): \(why)")
        }
        let registration = Registration(fd: fd, path: path, command: command)
        registration.update(neuron)
        return registration
    }

    /// Warnings for `plugin upgrade`/`remove` of `id`: each running neuron that uses it, and what happens to it.
    public static func warnings(using id: String, removed: Bool, home: BraneHome = .current) -> [String] {
        live(home: home).compactMap { record in
            guard let plugin = record.plugins.first(where: { $0.id == id }) else { return nil }
            let next = removed ? "a reload keeps its running configuration, since the plugin is gone"
                : "it moves to the new version when it reloads (SIGHUP) or restarts"
            return "neuron \(record.neuron) (pid \(record.pid), `brane \(record.command)`) is running \(id) \(plugin.version): "
                + "it keeps serving that version, whose files stay until it stops; \(next)"
        }
    }

    /// The plugin directories running neurons use (standardized, as bundles name them): an
    /// upgrade or remove leaves them in place.
    static func directoriesInUse(home: BraneHome) -> Set<String> {
        Set(live(home: home).flatMap(\.plugins).map { standardized($0.directory) })
    }

    static func standardized(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    /// The neurons running now. A record whose process is gone (its lock free) is removed.
    public static func live(home: BraneHome = .current) -> [Record] {
        let directory = directory(home)
        // A link planted as run/ would carry the clean-up below to wherever it points.
        guard BraneHome.isOwnDirectory(directory) else { return [] }
        var records: [Record] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        where name.hasSuffix(".json") && Int32(name.dropLast(5)) != nil {   // <pid>.json, and nothing else
            let path = "\(directory)/\(name)"
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size <= 1 << 20 else { continue }
            if flock(fd, LOCK_SH | LOCK_NB) == 0 {
                unlink(path)   // its holder is gone
                continue
            }
            // A record being rewritten (a reload) may read short for a moment: read it again.
            var record: Record?
            for attempt in 0..<3 where record == nil {
                if attempt > 0 { usleep(10_000) }
                record = readRegularFile(path, limit: 1 << 20, followingLinks: false).flatMap { try? JSONDecoder().decode(Record.self, from: Data($0)) }
            }
            records.append(record ?? Record(pid: Int32(name.dropLast(5)) ?? 0, neuron: "?", command: "?", plugins: []))
        }
        return records.sorted { $0.pid < $1.pid }
    }
}
