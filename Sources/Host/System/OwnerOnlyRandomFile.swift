import Foundation
import SystemPackage

/// A secret only this host holds, a file of its home (mode 0600): the audit log's key, the MCP
/// HTTP bearer token. Read when it exists; made on first use from OpenSSL's CSPRNG, written whole
/// to a private temporary file and linked into place — link never replaces, so of two first
/// commands one secret wins and neither ever reads a half-written one. A file there that is not
/// such a secret, or that its group or others may read, is an error naming it and the fix: a new
/// secret would silently orphan what the old one signed, and a shared one is no secret.
enum OwnerOnlyRandomFile {
    /// The `length`-byte secret at `path`; `name` says what it is, `ifDamaged` what a damaged one costs and how to recover.
    static func readOrCreate(_ path: String, length: Int, name: String, ifDamaged: String) throws -> [UInt8] {
        if let existing = try read(path, length: length, name: name, ifDamaged: ifDamaged) { return existing }
        let fresh = try secureRandomBytes(length)
        let temporary = "\(path).\(getpid()).\(UUID().uuidString.prefix(8))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MarketplaceError(.io, "cannot create the \(name) \(path): \(String(cString: strerror(errno)))") }
        defer { unlink(temporary) }
        let written = (try? FileDescriptor(rawValue: fd).writeAll(fresh)) == fresh.count && fsync(fd) == 0
        close(fd)
        guard written else { throw MarketplaceError(.io, "cannot write the \(name) \(path)") }
        if link(temporary, path) == 0 { return fresh }
        if errno == EEXIST, let raced = try read(path, length: length, name: name, ifDamaged: ifDamaged) {
            return raced   // another brane process linked its secret first
        }
        throw MarketplaceError(.io, "cannot create the \(name) \(path): \(String(cString: strerror(errno)))")
    }

    private static func read(_ path: String, length: Int, name: String, ifDamaged: String) throws -> [UInt8]? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        guard info.st_mode & S_IFMT == S_IFREG, let bytes = readRegularFile(path, limit: 2 * length), bytes.count == length else {
            throw MarketplaceError(.io, "the \(name) \(path) is damaged (\(info.st_mode & S_IFMT == S_IFREG ? "\(info.st_size) bytes, expected \(length)" : "not a regular file")); \(ifDamaged)")
        }
        guard info.st_uid == geteuid(), info.st_mode & 0o077 == 0 else {
            throw MarketplaceError(.io, "the \(name) \(path) is \(info.st_uid == geteuid() ? "readable by its group or others (mode \(String(info.st_mode & 0o7777, radix: 8)))" : "owned by uid \(info.st_uid), not this user"): "
                + "anyone who can read it holds the secret; `chmod 600 \(path)` if it never left this user, or move it aside for a new one")
        }
        return bytes
    }
}
