/// Decodable over a parsed `JSONValue`, strict as Foundation's `JSONDecoder`: no conversions
/// between types, a missing key is `keyNotFound`, a null where a value must be `valueNotFound`.
struct ValueDecoder: Decoder {
    let value: JSONValue
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// The one place a JSON value becomes a Swift value: scalars here, the rest by their own
    /// `init(from:)` over this decoder.
    static func decode<T: Decodable>(_ type: T.Type, from value: JSONValue, at path: [CodingKey]) throws -> T {
        func mismatch(_ expected: String) -> DecodingError { ValueDecoder.mismatch(T.self, expected: expected, value, at: path) }
        if T.self == JSONValue.self { return value as! T }
        if T.self == String.self {
            guard case .string(let text) = value else { throw mismatch("a string") }
            return text as! T
        }
        if T.self == Bool.self {
            guard case .bool(let flag) = value else { throw mismatch("true or false") }
            return flag as! T
        }
        if T.self == Double.self {
            guard case .number(let number) = value else { throw mismatch("a number") }
            return number as! T
        }
        if T.self == Float.self {
            guard case .number(let number) = value else { throw mismatch("a number") }
            guard abs(number) <= Double(Float.greatestFiniteMagnitude) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(wholeOrDecimal(number)) does not fit a Float"))
            }
            return Float(number) as! T
        }
        if let integer = T.self as? any FixedWidthInteger.Type {
            guard case .number(let number) = value else { throw mismatch("an integer") }
            guard abs(number) < exactIntegerLimit, let exact = integer.init(exactly: number) else {
                let problem = number.rounded() != number ? "is not a whole number"
                    : abs(number) >= exactIntegerLimit ? "is beyond ±2^53, past which a JSON number does not carry an integer exactly"
                    : "does not fit \(integer)"
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "\(wholeOrDecimal(number)) \(problem)"))
            }
            return exact as! T
        }
        return try T(from: ValueDecoder(value: value, codingPath: path))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw Self.mismatch([String: JSONValue].self, expected: "an object", value, at: codingPath) }
        return KeyedDecodingContainer(KeyedReader(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw Self.mismatch([JSONValue].self, expected: "an array", value, at: codingPath) }
        return UnkeyedReader(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { SingleValueReader(value: value, codingPath: codingPath) }

    /// A null where a value must be is `valueNotFound`, as Foundation has it; Optional's own
    /// `init(from:)` takes the null before it gets here.
    private static func mismatch(_ type: Any.Type, expected: String, _ value: JSONValue, at path: [CodingKey]) -> DecodingError {
        let context = DecodingError.Context(codingPath: path, debugDescription: "expected \(expected), found \(found(value))")
        return value == .null ? .valueNotFound(type, context) : .typeMismatch(type, context)
    }
}

/// A number as the caller would have written it: 9007199254740992, not 9.007199254740992e+15.
private func wholeOrDecimal(_ number: Double) -> String {
    number.rounded() == number && abs(number) < 1e18 ? String(Int64(number)) : "\(number)"
}

/// The kind of value found, never the value: it may be long, and it is the caller's text.
private func found(_ value: JSONValue) -> String {
    value == .null ? "null" : (value.typeName.first.map { "aeiou".contains($0) } == true ? "an " : "a ") + value.typeName
}

private struct KeyedReader<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func member(_ key: Key) throws -> JSONValue {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "missing \"\(key.stringValue)\""))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try member(key) == .null }

    /// Serves every `decode` requirement, the scalar ones included.
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try ValueDecoder.decode(type, from: try member(key), at: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        try ValueDecoder(value: try member(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> Decoder { try superDecoder(named: "super") }
    func superDecoder(forKey key: Key) throws -> Decoder { try superDecoder(named: key.stringValue) }

    private func superDecoder(named name: String) throws -> Decoder {
        let key = NamedKey(name)
        return ValueDecoder(value: members[name] ?? .null, codingPath: codingPath + [key])
    }
}

/// A key by name alone, for `superDecoder` and `superEncoder`.
struct NamedKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

private struct UnkeyedReader: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let codingPath: [CodingKey]
    var currentIndex = 0

    init(items: [JSONValue], codingPath: [CodingKey]) {
        self.items = items
        self.codingPath = codingPath
    }

    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    private mutating func next<T>(_ type: T.Type) throws -> (JSONValue, [CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [IndexKey(intValue: currentIndex)],
                                                          debugDescription: "the array ends after \(items.count) elements"))
        }
        defer { currentIndex += 1 }
        return (items[currentIndex], codingPath + [IndexKey(intValue: currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    /// Serves every `decode` requirement, the scalar ones included.
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, path) = try next(type)
        return try ValueDecoder.decode(type, from: value, at: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (value, path) = try next([String: JSONValue].self)
        return try ValueDecoder(value: value, codingPath: path).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer {
        let (value, path) = try next([JSONValue].self)
        return try ValueDecoder(value: value, codingPath: path).unkeyedContainer()
    }

    mutating func superDecoder() throws -> Decoder {
        let (value, path) = try next(JSONValue.self)
        return ValueDecoder(value: value, codingPath: path)
    }
}

private struct SingleValueReader: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [CodingKey]

    func decodeNil() -> Bool { value == .null }

    /// Serves every `decode` requirement, the scalar ones included.
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try ValueDecoder.decode(type, from: value, at: codingPath) }
}
