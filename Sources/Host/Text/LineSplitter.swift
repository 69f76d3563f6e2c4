/// Cuts a byte stream into LF-terminated lines, for every line-based peer: MCP clients on
/// standard input, a model's JSON lines and server-sent events. Each byte is looked at once, so a
/// long line arriving in many pieces costs linear time, and a line past `limit` is never held
/// whole: only its first `limit` bytes are kept (enough to read an id from) and it comes out as
/// `.tooLong` with its real length.
public struct LineSplitter: Sendable {
    public enum Line: Sendable, Equatable {
        case complete([UInt8])
        case tooLong(prefix: [UInt8], length: Int)

        /// A complete line as text, without the CR of a CRLF; nil for a line too long.
        var text: String? {
            guard case .complete(let bytes) = self else { return nil }
            return String(decoding: bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes[...], as: UTF8.self)
        }
    }

    public let limit: Int
    private var line: [UInt8] = []
    private var length = 0

    public init(limit: Int) { self.limit = limit }

    /// The lines `bytes` completes.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [Line] {
        var lines: [Line] = []
        var rest = bytes[...]
        while let newline = rest.firstIndex(of: UInt8(ascii: "\n")) {
            keep(rest[..<newline])
            lines.append(take())
            rest = rest[rest.index(after: newline)...]
        }
        keep(rest)
        return lines
    }

    /// What followed the last newline, if anything.
    public mutating func rest() -> Line? {
        length == 0 ? nil : take()
    }

    private mutating func keep(_ bytes: some Collection<UInt8>) {
        if line.count < limit { line += bytes.prefix(limit - line.count) }
        length += bytes.count
    }

    private mutating func take() -> Line {
        defer {
            line.removeAll(keepingCapacity: line.capacity <= 1 << 20)
            length = 0
        }
        return length > limit ? .tooLong(prefix: line, length: length) : .complete(line)
    }
}
