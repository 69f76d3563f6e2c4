/// Encodable into a `JSONValue`, as strict as Foundation's `JSONEncoder`: NaN, infinities and
/// integers a double cannot hold exactly are refused, and a value that encodes nothing is an error.
struct ValueEncoder: Encoder {
    let node: Node
    let codingPath: [CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let root = Node()
        try root.encode(value, at: [])
        guard let json = root.json else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "\(T.self) encoded no value"))
        }
        return json
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.becomeObject()
        return KeyedEncodingContainer(KeyedWriter(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> UnkeyedEncodingContainer {
        node.becomeArray()
        return UnkeyedWriter(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> SingleValueEncodingContainer { SingleValueWriter(node: node, codingPath: codingPath) }
}

/// What is being written at one place. A reference, because Encodable hands out containers that
/// write into it after the call that made them has returned.
final class Node {
    private var scalar: JSONValue?
    private var members: [String: Node]?
    private var items: [Node]?

    /// The value written here; nil if nothing was. A member or element that wrote nothing is `{}`,
    /// as Foundation writes it.
    var json: JSONValue? {
        if let scalar { return scalar }
        if let members { return .object(members.mapValues { $0.json ?? .object([:]) }) }
        if let items { return .array(items.map { $0.json ?? .object([:]) }) }
        return nil
    }

    func becomeObject() {
        guard members == nil else { return }  // a second keyed container adds to the same object
        (scalar, items, members) = (nil, nil, [:])
    }

    func becomeArray() {
        guard items == nil else { return }
        (scalar, members, items) = (nil, nil, [])
    }

    /// (A container kept after its value was overwritten through another starts the shape anew.)
    func member(_ key: String) -> Node {
        becomeObject()
        let node = Node()
        members![key] = node
        return node
    }

    func appended() -> Node {
        becomeArray()
        let node = Node()
        items!.append(node)
        return node
    }

    func set(_ value: JSONValue) { (scalar, members, items) = (value, nil, nil) }

    /// The one place a Swift value becomes JSON: scalars here, the rest by their own
    /// `encode(to:)` into this node.
    func encode<T: Encodable>(_ value: T, at path: [CodingKey]) throws {
        func refuse(_ why: String) -> EncodingError { .invalidValue(value, .init(codingPath: path, debugDescription: why)) }
        switch value {
        case let json as JSONValue:
            guard json.isFinite else { throw refuse("a JSONValue holding NaN or an infinity is not JSON") }
            set(json)
        case let text as String: set(.string(text))
        case let flag as Bool: set(.bool(flag))
        case let number as Double:
            guard number.isFinite else { throw refuse("\(number) is not a JSON number") }
            set(.number(number))
        case let number as Float:
            guard number.isFinite else { throw refuse("\(number) is not a JSON number") }
            set(.number(Double("\(number)")!))  // 0.1 as the Float prints it, not as 0.10000000149011612
        case let integer as any FixedWidthInteger:
            guard let number = Double(exactly: integer), abs(number) < exactIntegerLimit else {
                throw refuse("\(integer) is beyond ±2^53, past which a JSON number does not carry an integer exactly")
            }
            set(.number(number))
        default:
            try value.encode(to: ValueEncoder(node: self, codingPath: path))
        }
    }
}

private extension JSONValue {
    var isFinite: Bool {
        switch self {
        case .number(let n): n.isFinite
        case .array(let items): items.allSatisfy(\.isFinite)
        case .object(let members): members.values.allSatisfy(\.isFinite)
        case .null, .bool, .string: true
        }
    }
}

private struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    let codingPath: [CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.member(key.stringValue).set(.null) }

    /// Serves every `encode` requirement, the scalar ones included.
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try node.member(key.stringValue).encode(value, at: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        ValueEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer {
        ValueEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> Encoder { ValueEncoder(node: node.member("super"), codingPath: codingPath + [NamedKey("super")]) }

    mutating func superEncoder(forKey key: Key) -> Encoder {
        ValueEncoder(node: node.member(key.stringValue), codingPath: codingPath + [key])
    }
}

private struct UnkeyedWriter: UnkeyedEncodingContainer {
    let node: Node
    let codingPath: [CodingKey]
    private(set) var count = 0

    init(node: Node, codingPath: [CodingKey]) {
        self.node = node
        self.codingPath = codingPath
    }

    private mutating func next() -> (Node, [CodingKey]) {
        defer { count += 1 }
        return (node.appended(), codingPath + [IndexKey(intValue: count)])
    }

    mutating func encodeNil() throws { next().0.set(.null) }

    /// Serves every `encode` requirement, the scalar ones included.
    mutating func encode<T: Encodable>(_ value: T) throws {
        let (element, path) = next()
        try element.encode(value, at: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let (element, path) = next()
        return ValueEncoder(node: element, codingPath: path).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer {
        let (element, path) = next()
        return ValueEncoder(node: element, codingPath: path).unkeyedContainer()
    }

    mutating func superEncoder() -> Encoder {
        let (element, path) = next()
        return ValueEncoder(node: element, codingPath: path)
    }
}

private struct SingleValueWriter: SingleValueEncodingContainer {
    let node: Node
    let codingPath: [CodingKey]

    mutating func encodeNil() throws { node.set(.null) }

    /// Serves every `encode` requirement, the scalar ones included.
    mutating func encode<T: Encodable>(_ value: T) throws { try node.encode(value, at: codingPath) }
}
