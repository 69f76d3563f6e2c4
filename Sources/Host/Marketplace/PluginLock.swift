import Foundation

/// An exclusive, non-blocking flock on `locks/<id>.lock`: one change of a plugin at a time
/// across processes. The kernel drops it when the holder dies, so a killed install never
/// leaves a stale lock.
final class PluginLock {
    private let fd: Int32

    init(home: BraneHome, plugin: String) throws {
        // The id becomes a path here first; the callers checked it, and so does the lock itself.
        if let problem = PluginID.problem(plugin) { throw MarketplaceError(.usage, problem) }
        let path = "\(home.locks)/\(plugin).lock"
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MarketplaceError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw MarketplaceError(.busy, "another brane process is changing \(plugin) right now (lock \(path)); try again when it has finished")
        }
    }

    deinit { close(fd) }
}
