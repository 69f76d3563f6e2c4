/// The one sanitiser for text that came from outside — plugin logs, answers and error
/// messages, alert texts, metric names, index and manifest strings — on its way to a
/// terminal, a log line or an audit row. A plugin must not be able to move the cursor,
/// retitle the window, ring the bell, overwrite a line with CR, or print a line that looks
/// like Brane's own; so every control character becomes a visible escape:
/// C0 (ESC, BEL, CR, …), DEL, C1 (U+0080–U+009F, including the 8-bit CSI U+009B), the Unicode
/// line and paragraph separators, and the bidirectional overrides that reorder what a reader sees.
public enum UntrustedText {
    /// `singleLine` escapes newlines and tabs too: a field shown on one line stays on one line.
    public static func sanitized(_ text: String, singleLine: Bool = true) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0, singleLine: singleLine) }) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars { append(scalar, to: &out, singleLine: singleLine) }
        return String(decoding: out, as: UTF8.self)
    }

    /// `sanitized`, cut to at most `limit` UTF-8 bytes (between scalars) with a marker saying
    /// how many bytes of `text` were left out. Linear, and it stops reading at the limit: a
    /// megabyte of escapes costs no more than `limit` of them.
    public static func sanitized(_ text: String, limit: Int) -> String {
        var out: [UInt8] = [], piece: [UInt8] = [], consumed = 0
        for scalar in text.unicodeScalars {
            piece.removeAll(keepingCapacity: true)
            append(scalar, to: &piece, singleLine: true)
            guard out.count + piece.count <= limit else {
                return String(decoding: out, as: UTF8.self) + "… [\(text.utf8.count - consumed) bytes cut]"
            }
            out += piece
            consumed += UTF8.width(scalar)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// One scalar as it is shown: itself, or a visible escape — JSON's own, so text that is JSON
    /// (a --json envelope) stays valid JSON.
    private static func append(_ scalar: Unicode.Scalar, to out: inout [UInt8], singleLine: Bool) {
        guard needsEscape(scalar, singleLine: singleLine) else {
            UTF8.encode(scalar) { out.append($0) }
            return
        }
        let escape: String = switch scalar {
        case "\n": "\\n"
        case "\r": "\\r"
        case "\t": "\\t"
        default: "\\u" + hex(scalar.value, digits: 4)
        }
        out.append(contentsOf: escape.utf8)
    }

    /// True when `text` would print as itself on one line: no control, separator or bidi character.
    public static func isPlainLine(_ text: String) -> Bool {
        !text.unicodeScalars.contains { needsEscape($0, singleLine: true) }
    }

    static func needsEscape(_ scalar: Unicode.Scalar, singleLine: Bool) -> Bool {
        switch scalar.value {
        case 0x0a, 0x09: return singleLine
        case 0..<0x20, 0x7f, 0x80...0x9f: return true
        case 0x2028, 0x2029, 0x202a...0x202e, 0x2066...0x2069, 0x200e, 0x200f, 0x061c: return true
        default: return false
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
