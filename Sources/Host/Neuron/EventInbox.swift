import Foundation

/// Where events for a running neuron's specialists arrive: `<root>/<neuron>/<event kind>/*.jsonl`,
/// one JSON event per line. A file is read once, then moved to `done/` beside it (or `failed/`
/// when a specialist died on it, so it can be dropped in again). Writers should create the file
/// under another name (a dotfile or `*.tmp`) and rename it in, so a half-written file is never read.
public struct EventInbox: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: String

    /// The root as the kernel names it (links and `..` resolved): a file's progress and its alerts'
    /// keys go by its path, so two spellings of one inbox must be one path.
    public init(root: String, neuron: String) {
        var resolved = root
        if let real = realpath(root, nil) {
            resolved = String(cString: real)
            free(real)
        }
        directory = "\(resolved)/\(neuron)"
    }

    public func folder(_ kind: String) -> String { "\(directory)/\(kind)" }

    /// Creates a folder for every kind, so users see where to put files.
    public func prepare(kinds: [String]) throws {
        for kind in kinds { try FileManager.default.createDirectory(atPath: folder(kind), withIntermediateDirectories: true) }
    }

    /// Files waiting for `kind`, oldest name first.
    public func pending(_ kind: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder(kind))) ?? []
        return names.filter { $0.hasSuffix(".jsonl") && !$0.hasPrefix(".") }.sorted().map { "\(folder(kind))/\($0)" }
    }

    /// Moves a read file to `done/` (or `failed/`), replacing an older one of the same name —
    /// only while `file` is still the file that was read (`inode`): one renamed in under its name
    /// meanwhile is new data and stays, to be fed.
    public func finish(_ file: String, inode: UInt64, failed: Bool = false) throws {
        var read = stat()
        guard lstat(file, &read) == 0, UInt64(read.st_ino) == inode else { return }
        let url = URL(fileURLWithPath: file)
        let target = url.deletingLastPathComponent().appendingPathComponent(failed ? "failed" : "done")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        // A link planted as done/ would carry inbox files to wherever it points.
        var folder = stat()
        guard lstat(target.path, &folder) == 0, folder.st_mode & S_IFMT == S_IFDIR else {
            throw Failure(description: "\(target.path) is not a directory (a symbolic link?): \(file) stays in the inbox; move it aside")
        }
        let destination = target.appendingPathComponent(url.lastPathComponent).path
        guard rename(file, destination) == 0 else {
            throw Failure(description: "cannot move \(file) to \(destination): \(String(cString: strerror(errno)))")
        }
    }

    /// The longest line an inbox file may hold; a longer one is skipped, never buffered whole.
    public static let lineLimit = 1 << 20

    /// Reads a file's lines from `offset` in bounded memory: LF or CRLF, each with its number and
    /// the byte offset just past it; a line past `lineLimit` or not UTF-8 comes as a problem.
    public struct Lines {
        public enum Line {
            case text(String)
            case problem(String)
        }
        private let fd: Int32
        private var buffer = [UInt8]()
        private var start = 0
        private var discarding = false
        private var atEnd = false
        public private(set) var offset: UInt64 = 0
        public private(set) var number = 0
        /// The opened file's inode and size: what it is, read once from the descriptor that reads it.
        public let inode: UInt64
        public let size: UInt64

        /// A regular file at `path` (not followed if a link), opened once for everything the feed
        /// reads of it; nil for anything else (a link, a FIFO, a device, a directory).
        public init?(_ path: String) {
            fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)
            var info = stat()
            guard fd >= 0, fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                if fd >= 0 { Glibc.close(fd) }
                return nil
            }
            (inode, size) = (UInt64(info.st_ino), UInt64(info.st_size))
        }

        /// Continues where an earlier feed stopped; before the first line is read.
        public mutating func resume(at offset: UInt64, line: Int) -> Bool {
            guard lseek(fd, off_t(offset), SEEK_SET) == off_t(offset) else { return false }
            (self.offset, number) = (offset, line)
            return true
        }

        /// The SHA-256 of the file's first `length` bytes, nil when it is shorter.
        public func digestOfFirst(_ length: Int) -> String? {
            var bytes = [UInt8](repeating: 0, count: length)
            let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, 0) }
            return count == length ? SHA256.hash(bytes) : nil
        }

        public func close() { Glibc.close(fd) }

        /// The next line, or nil at the end of the file (a last line without LF counts).
        public mutating func next() -> Line? {
            while true {
                if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    let raw = buffer[start..<newline]
                    offset += UInt64(newline - start + 1)
                    start = newline + 1
                    number += 1
                    if discarding || raw.count - (raw.last == UInt8(ascii: "\r") ? 1 : 0) > EventInbox.lineLimit {
                        discarding = false
                        return .problem("longer than \(EventInbox.lineLimit) bytes; skipped")
                    }
                    return Self.decode(raw, number)
                }
                if atEnd {
                    guard start < buffer.count || discarding else { return nil }
                    let raw = buffer[start...]
                    offset += UInt64(buffer.count - start)
                    start = buffer.count
                    number += 1
                    if discarding {
                        discarding = false
                        return .problem("longer than \(EventInbox.lineLimit) bytes; skipped")
                    }
                    return Self.decode(raw, number)
                }
                if start > 0 {
                    buffer.removeFirst(start)
                    start = 0
                }
                if buffer.count > EventInbox.lineLimit {
                    // Past the limit without a newline: drop what is held and skip to the next LF.
                    offset += UInt64(buffer.count)
                    buffer.removeAll(keepingCapacity: true)
                    discarding = true
                }
                var chunk = [UInt8](repeating: 0, count: 65536)
                let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 {
                    atEnd = true
                    continue
                }
                buffer += chunk[..<count]
            }
        }

        private static func decode(_ raw: ArraySlice<UInt8>, _ number: Int) -> Line {
            let bytes = raw.last == UInt8(ascii: "\r") ? raw.dropLast() : raw
            guard let text = String(validating: bytes, as: UTF8.self) else { return .problem("not UTF-8; skipped") }
            return .text(text)
        }
    }
}
