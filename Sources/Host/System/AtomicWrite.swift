import Glibc
import SystemPackage

/// Writes a file by rename from a temporary sibling, so a reader sees the old or the new bytes.
func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
    let temporary = "\(path).tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw MarketplaceError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    do { _ = try FileDescriptor(rawValue: fd).writeAll(bytes) } catch {
        throw MarketplaceError(.io, "cannot write \(temporary): \(error)")
    }
    fsync(fd)
    guard rename(temporary, path) == 0 else { throw MarketplaceError(.io, "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))") }
}

/// Makes `path` (created empty if absent) and its -wal and -shm siblings mode 0600, so the store
/// SQLite opens next is private to the host's user (new -wal/-shm files copy the mode):
/// `$BRANE_HOME` itself is traversable (0711) for the instances' own uids to reach installed trees.
func ensurePrivateFile(_ path: String) {
    for (file, create) in [(path, true), (path + "-wal", false), (path + "-shm", false)] {
        // O_NONBLOCK: a FIFO planted in $BRANE_HOME must not hang the host here.
        let fd = open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (create ? O_CREAT : 0), 0o600)
        if fd >= 0 {
            fchmod(fd, 0o600)
            close(fd)
        }
    }
}
