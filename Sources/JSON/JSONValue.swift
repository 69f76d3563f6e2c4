/// A JSON document as plain data: tool arguments, schemas, plugin configs and answers.
///
/// One type for the host and for plugins, parsed and written without Foundation: linking
/// Foundation costs every plugin process about 3 MiB of resident pages, which sensors (one
/// process each, sampled every second) cannot afford (docs/performance.md).
public enum JSONValue: Equatable, Hashable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Where and why a document is not JSON.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var offset: Int
        public var problem: String
        public var description: String { "invalid JSON at byte \(offset): \(problem)" }
    }

    /// Parses a whole document (RFC 8259); throws `ParseError`.
    public init(parsing bytes: some Collection<UInt8>) throws {
        var parser = Parser(bytes: Array(bytes))
        self = try parser.document()
    }

    public init(parsing text: String) throws { try self.init(parsing: Array(text.utf8)) }

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { members[key] } else { nil }
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var numberValue: Double? { if case .number(let n) = self { n } else { nil } }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }

    /// The JSON Schema type name (`integer` for whole numbers JSON can carry exactly).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number(let n): Self.isExactInteger(n) ? "integer" : "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    static func isExactInteger(_ n: Double) -> Bool { n.rounded() == n && abs(n) < 9_007_199_254_740_992 }

    /// `patch` applied as a JSON Merge Patch (RFC 7386): objects merge key by key, recursively;
    /// a null removes the key; anything else replaces. How a neuron adjusts a plugin's config.
    public func merging(_ patch: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        var members = objectValue ?? [:]
        for (key, change) in changes {
            members[key] = change == .null ? nil : (members[key] ?? .null).merging(change)
        }
        return .object(members)
    }

    /// Compact UTF-8 with object keys sorted, so equal values give equal bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        write(into: &out, indent: nil)
        return out
    }

    /// The same as text; `pretty` indents by two spaces for people.
    public func serialized(pretty: Bool = false) -> String {
        var out: [UInt8] = []
        write(into: &out, indent: pretty ? 0 : nil)
        return String(decoding: out, as: UTF8.self)
    }

    /// Whole numbers print without a fraction; NaN and infinities, which JSON lacks, as null.
    private func write(into out: inout [UInt8], indent: Int?) {
        func newline(_ level: Int) {
            out.append(UInt8(ascii: "\n"))
            out += Array(repeating: UInt8(ascii: " "), count: level * 2)
        }
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let b): out += Array((b ? "true" : "false").utf8)
        case .number(let n):
            if !n.isFinite { out += Array("null".utf8) }
            else if Self.isExactInteger(n) { out += Array(String(Int64(n)).utf8) }
            else { out += Array(n.description.utf8) }
        case .string(let s): Self.quote(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if let indent { newline(indent + 1) }
                item.write(into: &out, indent: indent.map { $0 + 1 })
            }
            if let indent, !items.isEmpty { newline(indent) }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                if let indent { newline(indent + 1) }
                Self.quote(key, into: &out)
                out += indent == nil ? [UInt8(ascii: ":")] : Array(": ".utf8)
                members[key]!.write(into: &out, indent: indent.map { $0 + 1 })
            }
            if let indent, !members.isEmpty { newline(indent) }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Escapes what JSON requires and, beyond it, DEL, the C1 controls (U+0080–U+009F, among them
    /// the 8-bit CSI) and U+2028/2029, so printed JSON carries no byte a terminal would act on.
    private static func quote(_ text: String, into out: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        func escape(_ code: UInt32) {
            out += Array(#"\u"#.utf8) + (0..<4).reversed().map { hex[Int((code >> (4 * UInt32($0))) & 0xf)] }
        }
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            var at = 0
            while at < bytes.count {
                let byte = bytes[at]
                at += 1
                switch byte {
                case UInt8(ascii: "\""): out += Array(#"\""#.utf8)
                case UInt8(ascii: "\\"): out += Array(#"\\"#.utf8)
                case UInt8(ascii: "\n"): out += Array(#"\n"#.utf8)
                case UInt8(ascii: "\r"): out += Array(#"\r"#.utf8)
                case UInt8(ascii: "\t"): out += Array(#"\t"#.utf8)
                case 0..<0x20, 0x7f: escape(UInt32(byte))
                case 0xc2 where at < bytes.count && (0x80...0x9f).contains(bytes[at]):
                    escape(UInt32(bytes[at]))
                    at += 1
                case 0xe2 where at + 1 < bytes.count && bytes[at] == 0x80 && (bytes[at + 1] == 0xa8 || bytes[at + 1] == 0xa9):
                    escape(bytes[at + 1] == 0xa8 ? 0x2028 : 0x2029)
                    at += 2
                default: out.append(byte)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSONValue: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let array = try? container.decode([JSONValue].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n): if Self.isExactInteger(n) { try container.encode(Int64(n)) } else { try container.encode(n) }
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}

/// RFC 8259, recursive descent over the bytes.
private struct Parser {
    let bytes: [UInt8]
    var at = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func document() throws -> JSONValue {
        let value = try self.value()
        skipSpace()
        guard at == bytes.count else { throw fail("unexpected text after the JSON value") }
        return value
    }

    func fail(_ what: String) -> JSONValue.ParseError { JSONValue.ParseError(offset: at, problem: what) }

    mutating func skipSpace() {
        while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x0a || bytes[at] == 0x0d || bytes[at] == 0x09 { at += 1 }
    }

    mutating func expect(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard bytes.count - at >= count,
              word.withUTF8Buffer({ $0.elementsEqual(bytes[at..<at + count]) }) else { throw fail("expected \(word)") }
        at += count
    }

    mutating func value() throws -> JSONValue {
        skipSpace()
        guard at < bytes.count else { throw fail("unexpected end") }
        switch bytes[at] {
        case UInt8(ascii: "{"): return try nested { try $0.object() }
        case UInt8(ascii: "["): return try nested { try $0.array() }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default: return .number(try number())
        }
    }

    /// Bounds nesting so a hostile document cannot exhaust the stack.
    mutating func nested(_ parse: (inout Parser) throws -> JSONValue) throws -> JSONValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= 256 else { throw fail("nested deeper than 256 levels") }
        return try parse(&self)
    }

    mutating func object() throws -> JSONValue {
        at += 1
        var members: [String: JSONValue] = [:]
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
        while true {
            skipSpace()
            guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw fail("expected a quoted key") }
            let keyStart = at
            let key = try string()
            // Two readers of one document must never disagree on which value a key has.
            guard members[key] == nil else {
                at = keyStart
                throw fail("duplicate key")
            }
            skipSpace()
            try expect(":")
            members[key] = try value()
            skipSpace()
            guard at < bytes.count else { throw fail("unterminated object") }
            at += 1
            if bytes[at - 1] == UInt8(ascii: "}") { return .object(members) }
            guard bytes[at - 1] == UInt8(ascii: ",") else { at -= 1; throw fail("expected , or }") }
        }
    }

    mutating func array() throws -> JSONValue {
        at += 1
        var items: [JSONValue] = []
        skipSpace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
        while true {
            items.append(try value())
            skipSpace()
            guard at < bytes.count else { throw fail("unterminated array") }
            at += 1
            if bytes[at - 1] == UInt8(ascii: "]") { return .array(items) }
            guard bytes[at - 1] == UInt8(ascii: ",") else { at -= 1; throw fail("expected , or ]") }
        }
    }

    /// Collects the string's UTF-8 bytes, decoding escapes as it goes.
    mutating func string() throws -> String {
        at += 1
        var utf8: [UInt8] = []
        while at < bytes.count {
            let byte = bytes[at]
            at += 1
            if byte == UInt8(ascii: "\"") {
                guard let text = String(validating: utf8, as: UTF8.self) else { throw fail("string is not UTF-8") }
                return text
            }
            guard byte >= 0x20 else { at -= 1; throw fail("control character in string") }
            guard byte == UInt8(ascii: "\\") else { utf8.append(byte); continue }
            guard at < bytes.count else { break }
            let escape = bytes[at]
            at += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escape)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code) {  // a surrogate pair spells one scalar
                    guard bytes[at...].starts(with: Array("\\u".utf8)) else { throw fail("unpaired surrogate") }
                    at += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw fail((0xDC00..<0xE000).contains(code) ? "unpaired surrogate" : "invalid \\u escape") }
                utf8 += Array(String(Character(scalar)).utf8)
            default: throw fail("invalid escape")
            }
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard bytes.count - at >= 4 else { throw fail("short \\u escape") }
        var code: UInt32 = 0
        for byte in bytes[at..<at + 4] {
            guard let digit = Int(String(UnicodeScalar(byte)), radix: 16) else { throw fail("invalid \\u escape") }
            code = code << 4 | UInt32(digit)
        }
        at += 4
        return code
    }

    /// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, checked before Swift converts it.
    mutating func number() throws -> Double {
        let start = at
        func digits() -> Int {
            let from = at
            while at < bytes.count, (0x30...0x39).contains(bytes[at]) { at += 1 }
            return at - from
        }
        func take(_ characters: String) -> Bool {
            guard at < bytes.count, characters.utf8.contains(bytes[at]) else { return false }
            at += 1
            return true
        }
        _ = take("-")
        let leadingZero = at < bytes.count && bytes[at] == UInt8(ascii: "0")
        let whole = digits()
        var valid = whole > 0 && !(leadingZero && whole > 1)
        if valid, take(".") { valid = digits() > 0 }
        if valid, take("eE") { _ = take("+-"); valid = digits() > 0 }
        guard valid, let value = Double(String(decoding: bytes[start..<at], as: UTF8.self)) else {
            at = start
            throw fail("expected a value")
        }
        guard value.isFinite else {
            at = start
            throw fail("number out of range")
        }
        return value
    }
}
