import Foundation
import SystemPackage

/// Unpacks a plugin archive into an empty directory, refusing anything that could reach outside
/// it: absolute paths, `..`, hard links, device files and FIFOs, and symbolic links whose target
/// leaves the directory. Files are created with O_EXCL|O_NOFOLLOW and no set-id bits; links are
/// made last, so no file is ever written through one.
public enum ArchiveUnpacker {
    /// Returns the relative paths written, in archive order.
    @discardableResult
    public static func unpack(_ entries: [TarEntry], into root: String, plugin: String) throws -> [String] {
        func refuse(_ entry: TarEntry, _ why: String) -> MarketplaceError {
            MarketplaceError(.unsafeArchive, "refused the archive of \(plugin): entry \"\(UntrustedText.sanitized(entry.path, limit: 200))\" \(why)")
        }
        var links = [(path: String, target: String)]()
        var written = [String]()
        // Names equal as text are one name: Swift compares Strings by canonical equivalence, so two
        // entries — or two directories on their way — that differ only in Unicode normalisation
        // (café, cafe + U+0301) meet here with different bytes.
        var seen = Set<String>()
        var spelling: [String: [UInt8]] = [:]
        for entry in entries {
            let path = try relativePath(entry.path) ?? { throw refuse(entry, "has an absolute path or a \"..\" component") }()
            if path.isEmpty { continue }
            guard seen.insert(path).inserted else {
                throw refuse(entry, "names a path another entry already has (the same text, or a Unicode normalisation of it)")
            }
            var prefix = ""
            for component in path.split(separator: "/") {
                prefix += (prefix.isEmpty ? "" : "/") + component
                let bytes = Array(prefix.utf8)
                if let known = spelling[prefix], known != bytes {
                    throw refuse(entry, "has a directory that another entry spells in another Unicode normalisation")
                }
                spelling[prefix] = bytes
            }
            switch entry.kind {
            case .directory:
                try makeDirectories(root, path)
            case .file:
                try makeDirectories(root, parent(of: path))
                // Readable by all: each instance runs under its own uid (code is not secret; stores are 0600).
                try writeFile("\(root)/\(path)", entry.contents, mode: entry.mode & 0o755 | 0o444, entry: entry.path)
                written.append(path)
            case .symlink(let target):
                // Without `..` a chain of links can only descend, so no chain can leave the root;
                // lexical checks of `..` are not enough once one link points at another.
                guard relativePath(target) != nil else {
                    throw refuse(entry, "is a link to \"\(target)\"; links must stay inside the plugin directory (relative, no \"..\")")
                }
                links.append((path, target))
            case .hardLink(let target):
                throw refuse(entry, "is a hard link (to \"\(target)\"); archives may hold files, directories and relative links only")
            case .device:
                throw refuse(entry, "is a device file")
            case .fifo:
                throw refuse(entry, "is a FIFO")
            case .other(let type):
                throw refuse(entry, "has the unsupported tar type '\(Character(UnicodeScalar(type)))'")
            }
        }
        for link in links {
            try makeDirectories(root, parent(of: link.path))
            guard symlink(link.target, "\(root)/\(link.path)") == 0 else {
                throw MarketplaceError(.unsafeArchive, "refused the archive of \(plugin): cannot create link \"\(link.path)\": \(String(cString: strerror(errno)))")
            }
            written.append(link.path)
        }
        return written
    }

    /// `a/./b/` → `a/b`; nil for an absolute path or any `..`.
    static func relativePath(_ raw: String) -> String? {
        guard !raw.hasPrefix("/"), !raw.utf8.contains(0) else { return nil }
        let parts = raw.split(separator: "/" as Character).filter { $0 != "." }
        guard !parts.contains("..") else { return nil }
        return parts.joined(separator: "/")
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    private static func makeDirectories(_ root: String, _ path: String) throws {
        var current = root
        for part in path.split(separator: "/") {
            current += "/\(part)"
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw MarketplaceError(.io, "cannot create \(current): \(String(cString: strerror(errno)))")
            }
            // An existing component must be a real directory, never a link made earlier.
            var info = stat()
            guard lstat(current, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
                throw MarketplaceError(.unsafeArchive, "\(current) is not a directory")
            }
        }
    }

    private static func writeFile(_ path: String, _ contents: [UInt8], mode: UInt32, entry: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(mode | 0o400))
        guard fd >= 0 else {
            throw MarketplaceError(.unsafeArchive, "cannot create \"\(entry)\": \(String(cString: strerror(errno))) (a duplicate entry?)")
        }
        defer { close(fd) }
        do { _ = try FileDescriptor(rawValue: fd).writeAll(contents) } catch {
            throw MarketplaceError(.io, "cannot write \(path): \(error)")
        }
        fsync(fd)
    }
}
