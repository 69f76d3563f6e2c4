import Foundation

/// One entry of a ustar archive. Brane's archives use only regular files, directories and
/// symbolic links; the reader reports every other type so the unpacker can refuse it by name.
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file, directory, symlink(target: String)
        case hardLink(target: String), device, fifo, other(UInt8)
    }
    public var path: String
    public var kind: Kind
    public var mode: UInt32
    /// The entry's bytes, for files.
    public var contents: [UInt8]

    public init(path: String, kind: Kind, mode: UInt32, contents: [UInt8] = []) {
        self.path = path
        self.kind = kind
        self.mode = mode
        self.contents = contents
    }
}

public struct TarError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// POSIX ustar, written deterministically (uid/gid 0, mtime 0) so that packing the same plugin
/// twice gives the same bytes and the same SHA-256.
public enum Tar {
    static let block = 512

    public static func write(_ entries: [TarEntry]) throws -> [UInt8] {
        var out = [UInt8]()
        for entry in entries {
            var header = [UInt8](repeating: 0, count: block)
            let (prefix, name) = try split(entry.path)
            put(name, &header, at: 0, width: 100)
            put(octal(UInt64(entry.mode & 0o7777), width: 8), &header, at: 100, width: 8)
            put(octal(0, width: 8), &header, at: 108, width: 8)
            put(octal(0, width: 8), &header, at: 116, width: 8)
            let size = entry.kind == .file ? entry.contents.count : 0
            put(octal(UInt64(size), width: 12), &header, at: 124, width: 12)
            put(octal(0, width: 12), &header, at: 136, width: 12)
            let (type, link): (UInt8, String) = switch entry.kind {
            case .file: (UInt8(ascii: "0"), "")
            case .directory: (UInt8(ascii: "5"), "")
            case .symlink(let target): (UInt8(ascii: "2"), target)
            case .hardLink(let target): (UInt8(ascii: "1"), target)
            case .device: (UInt8(ascii: "3"), "")
            case .fifo: (UInt8(ascii: "6"), "")
            case .other(let code): (code, "")
            }
            header[156] = type
            guard link.utf8.count <= 100 else { throw TarError(description: "\(entry.path): link target longer than 100 bytes") }
            put(link, &header, at: 157, width: 100)
            put("ustar\u{0}00", &header, at: 257, width: 8)
            put(prefix, &header, at: 345, width: 155)
            for i in 148..<156 { header[i] = UInt8(ascii: " ") }
            let sum = header.reduce(0) { $0 + Int($1) }
            put(octal(UInt64(sum), width: 7), &header, at: 148, width: 7)
            out += header
            if size > 0 {
                out += entry.contents
                out += [UInt8](repeating: 0, count: (block - size % block) % block)
            }
        }
        out += [UInt8](repeating: 0, count: 2 * block)
        return out
    }

    /// Reads every entry; throws on a damaged header or an entry that runs past the end.
    public static func read(_ bytes: [UInt8]) throws -> [TarEntry] {
        var entries = [TarEntry]()
        var offset = 0
        while offset + block <= bytes.count {
            let header = bytes[offset..<offset + block]
            if header.allSatisfy({ $0 == 0 }) { return entries }
            let at = "at byte \(offset)"
            guard let storedSum = number(header, 148, 8) else { throw TarError(description: "damaged header \(at)") }
            let sum = header.enumerated().reduce(0) { $0 + Int((148..<156).contains($1.offset) ? UInt8(ascii: " ") : $1.element) }
            guard UInt64(sum) == storedSum else { throw TarError(description: "header checksum mismatch \(at)") }
            guard let size = number(header, 124, 12), let mode = number(header, 100, 8) else {
                throw TarError(description: "damaged size or mode \(at)")
            }
            // POSIX ustar only: GNU tar reads a v7 or old-GNU header's prefix field differently.
            guard header[(header.startIndex + 257)..<(header.startIndex + 265)].elementsEqual(Array("ustar\u{0}00".utf8)) else {
                throw TarError(description: "not a POSIX ustar header \(at); GNU tar could list this archive differently")
            }
            guard let prefix = utf8(header, 345, 155), let name = utf8(header, 0, 100) else {
                throw TarError(description: "an entry's name is not UTF-8 \(at)")
            }
            let path = prefix.isEmpty ? name : "\(prefix)/\(name)"
            let link = text(header, 157, 100)
            let type = header[header.startIndex + 156]
            let kind: TarEntry.Kind = switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): .file
            case UInt8(ascii: "5"): .directory
            case UInt8(ascii: "2"): .symlink(target: link)
            case UInt8(ascii: "1"): .hardLink(target: link)
            case UInt8(ascii: "3"), UInt8(ascii: "4"): .device
            case UInt8(ascii: "6"): .fifo
            default: .other(type)
            }
            offset += block
            // Only a file has data: any other entry with a size would hide the blocks after it from
            // `tar tf`, which skips them, while another reader might take them for an entry.
            // A file whose name ends in "/" is a directory to GNU tar.
            guard kind != .file || !path.hasSuffix("/") else {
                throw TarError(description: "\(path): a file entry named like a directory; GNU tar would list this archive differently")
            }
            guard kind == .file || size == 0 else {
                throw TarError(description: "\(path): a \(kind) entry with \(size) bytes of data; GNU tar would list this archive differently")
            }
            let dataSize = kind == .file ? Int(size) : 0
            guard size <= UInt64(bytes.count - offset), dataSize <= bytes.count - offset else {
                throw TarError(description: "\(path): entry of \(size) bytes runs past the end of the archive")
            }
            entries.append(TarEntry(path: path, kind: kind, mode: UInt32(mode),
                                    contents: Array(bytes[offset..<offset + dataSize])))
            offset += (dataSize + block - 1) / block * block
        }
        throw TarError(description: "archive ends without its end-of-archive blocks")
    }

    private static func split(_ path: String) throws -> (prefix: String, name: String) {
        let bytes = Array(path.utf8)
        if bytes.count <= 100 { return ("", path) }
        // ustar stores long paths as prefix "/" name, split at a slash.
        for cut in stride(from: min(bytes.count - 1, 155), to: 0, by: -1) where bytes[cut] == UInt8(ascii: "/") {
            if bytes.count - cut - 1 <= 100 {
                return (String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[(cut + 1)...], as: UTF8.self))
            }
        }
        throw TarError(description: "\(path): path too long for ustar")
    }

    private static func put(_ value: String, _ header: inout [UInt8], at offset: Int, width: Int) {
        for (i, byte) in value.utf8.prefix(width).enumerated() { header[offset + i] = byte }
    }

    private static func octal(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 8)
        return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
    }

    private static func number(_ header: ArraySlice<UInt8>, _ offset: Int, _ width: Int) -> UInt64? {
        let field = text(header, offset, width).trimmingCharacters(in: .whitespaces)
        return field.isEmpty ? 0 : UInt64(field, radix: 8)
    }

    private static func utf8(_ header: ArraySlice<UInt8>, _ offset: Int, _ width: Int) -> String? {
        let start = header.startIndex + offset
        return String(validating: header[start..<start + width].prefix { $0 != 0 }, as: UTF8.self)
    }

    private static func text(_ header: ArraySlice<UInt8>, _ offset: Int, _ width: Int) -> String {
        let start = header.startIndex + offset
        let field = header[start..<start + width]
        return String(decoding: field.prefix { $0 != 0 }, as: UTF8.self)
    }
}
