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
