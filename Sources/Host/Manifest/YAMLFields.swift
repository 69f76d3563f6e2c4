import CYaml
import Foundation
import Yams

/// Reads typed fields out of a YAML node tree while collecting diagnostics that name the
/// file, line, column and field path of every problem. Readers return nil on a problem and
/// keep going, so one run reports every mistake in a file, not just the first.
struct YAMLFields {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    mutating func error(_ node: Node?, _ path: String, _ message: String) {
        report(.error, node, path, message)
    }

    /// Takes over the diagnostics of a failure found outside the tree (text that is not UTF-8).
    mutating func adopt(_ failure: ValidationFailure) {
        diagnostics += failure.diagnostics
    }

    mutating func warning(_ node: Node?, _ path: String, _ message: String) {
        report(.warning, node, path, message)
    }

    private mutating func report(_ severity: Diagnostic.Severity, _ node: Node?, _ path: String, _ message: String) {
        let mark = node?.mark
        diagnostics.append(Diagnostic(severity, file: file, line: mark?.line ?? 1, column: mark?.column ?? 1,
                                      path: path, message: message))
    }

    /// The most a document may hold once its aliases are expanded, and how deep it may nest:
    /// libyaml shares an anchored node, but everything that walks the tree pays for every copy.
    static let nodeLimit = 100_000
    static let depthLimit = 64
    /// The most alias uses a document may have: a configuration needs a handful.
    static let aliasLimit = 1_000
    /// The largest manifest, neuron file or host settings file.
    static let fileSizeLimit = 1 << 20

    /// A YAML file a person named: a regular file of at most `fileSizeLimit` bytes (a FIFO or a
    /// device must neither hang nor flood the reader), or a diagnostic saying why not.
    static func readFile(_ path: String) throws(ValidationFailure) -> String {
        guard let bytes = readRegularFile(path, limit: fileSizeLimit, followingLinks: true) else {
            let why = FileManager.default.fileExists(atPath: path) ? "it is not a regular file of at most \(fileSizeLimit >> 20) MiB" : "it does not exist"
            throw ValidationFailure(diagnostics: [Diagnostic(.error, file: path, line: 1, column: 1, path: "", message: "cannot read the file: \(why)")])
        }
        return try utf8Text(bytes, file: path)
    }

    /// `bytes` as text, or a diagnostic at the first byte that is not UTF-8 (its line and
    /// column, counted in characters as libyaml counts them) — never a lossy decoding.
    static func utf8Text(_ bytes: [UInt8], file: String) throws(ValidationFailure) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var (offset, line, column) = (0, 1, 1)
        var previous: UInt8 = 0
        while case .valid(let scalar) = parser.parseScalar(from: &iterator) {
            offset += scalar.count
            // Line breaks as libyaml counts them: LF, CR, and CRLF as one.
            let byte = scalar.count == 1 ? scalar.first! : 0
            if byte == UInt8(ascii: "\n") && previous == UInt8(ascii: "\r") {
                // the LF of a CRLF: the CR already began the line
            } else if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                (line, column) = (line + 1, 1)
            } else {
                column += 1
            }
            previous = byte
        }
        let byte = offset < bytes.count ? String(bytes[offset], radix: 16, uppercase: true) : "?"
        throw ValidationFailure(diagnostics: [Diagnostic(.error, file: file, line: line, column: column, path: "",
                                                         message: "not UTF-8: byte 0x\(byte) at offset \(offset)")])
    }

    /// Parses a whole document; a syntax error becomes a diagnostic at libyaml's position, and a
    /// document too large (aliases expanded) or too deep is refused before anything walks it.
    mutating func document(_ text: String, sizeLimit: Int = fileSizeLimit, nodeLimit: Int = nodeLimit) -> Node? {
        guard text.utf8.count <= sizeLimit else {
            error(nil, "", "the document is \(text.utf8.count) bytes; at most \(sizeLimit) are read")
            return nil
        }
        // Checked on the text, before libyaml composes it: Yams hashes every mapping key whole, so an
        // alias used as a key (an alias bomb there) would overflow the stack or run for hours
        // before any bound below could see it.
        // A second pass of libyaml, so only when it can matter: aliases need a '*'; a duplicate
        // key is looked for once Yams has found one.
        let scan = text.utf8.contains(UInt8(ascii: "*")) ? YAMLEventScan(text) : nil
        let aliases = scan?.aliases ?? []
        if let key = aliases.first(where: \.isKey) {
            diagnostics.append(Diagnostic(.error, file: file, line: key.line, column: key.column, path: "",
                                          message: "an alias is used as a mapping key; aliases may stand for values only"))
            return nil
        }
        guard aliases.count <= Self.aliasLimit else {
            error(nil, "", "the document uses \(aliases.count) aliases; at most \(Self.aliasLimit) are read")
            return nil
        }
        do {
            guard let node = try Yams.compose(yaml: text) else {
                error(nil, "", "the file is empty")
                return nil
            }
            var budget = nodeLimit
            guard Self.fits(node, depth: 0, budget: &budget) else {
                error(nil, "", "the document expands to more than \(nodeLimit) nodes or nests deeper than \(Self.depthLimit) levels "
                    + "(an alias bomb?); refused before reading it")
                return nil
            }
            return Self.markingAliasUses(node, aliases: aliases)
        } catch let yamlError as YamlError {
            switch yamlError {
            case .duplicatedKeysInMapping(let keys, let context):
                // Yams marks the first of the two and quotes the whole document: point at the
                // second, where the mistake is, and quote nothing.
                let found = (scan ?? YAMLEventScan(text)).duplicate
                    ?? (key: keys.first ?? "", line: context.mark.line, column: context.mark.column, firstLine: context.mark.line)
                diagnostics.append(Diagnostic(.error, file: file, line: found.line, column: found.column, path: "",
                                              message: "duplicate key '\(found.key.prefix(80))' (first at line \(found.firstLine)); a key may appear once in a mapping"))
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
                 .composer(_, let problem, let mark, _):
                diagnostics.append(Diagnostic(.error, file: file, line: mark.line, column: mark.column, path: "",
                                              message: "invalid YAML: \(problem)"))
            default:
                error(nil, "", "invalid YAML: \(yamlError)")
            }
        } catch {
            self.error(nil, "", "invalid YAML: \(error)")
        }
        return nil
    }

    /// libyaml composes an alias into the very node its anchor names, marked where the anchor
    /// stands, so a bad value reached through `*name` was reported at `&name`. A node met again
    /// in document order (same kind, same mark) is an alias use; the k-th use is re-marked at the
    /// k-th alias event libyaml reported, so diagnostics point at the use.
    static func markingAliasUses(_ root: Node, aliases: [YAMLEventScan.Alias]) -> Node {
        var tokens = aliases[...]
        guard !tokens.isEmpty else { return root }   // no alias: nothing to re-mark, no copy made
        struct Place: Hashable { var kind: Int, line: Int, column: Int }
        var seen: Set<Place> = []
        func visit(_ node: Node) -> Node {
            let kind = switch node { case .scalar: 0; case .mapping: 1; case .sequence: 2; case .alias: 3 }
            if let mark = node.mark, !seen.insert(Place(kind: kind, line: mark.line, column: mark.column)).inserted {
                guard let use = tokens.popFirst(), let placed = Self.mark(line: use.line, column: use.column) else { return node }
                return remarked(node, placed)
            }
            switch node {
            case .mapping(let mapping):
                return .mapping(Node.Mapping(mapping.map { (visit($0.key), visit($0.value)) }, mapping.tag, mapping.style, mapping.mark))
            case .sequence(let sequence):
                return .sequence(Node.Sequence(sequence.map(visit), sequence.tag, sequence.style, sequence.mark))
            case .scalar, .alias:
                return node
            }
        }
        return visit(root)
    }

    private static func remarked(_ node: Node, _ mark: Mark) -> Node {
        switch node {
        case .scalar(var scalar): scalar.mark = mark; return .scalar(scalar)
        case .mapping(var mapping): mapping.mark = mark; return .mapping(mapping)
        case .sequence(var sequence): sequence.mark = mark; return .sequence(sequence)
        case .alias: return node
        }
    }

    /// A `Mark` at `line`:`column`. Yams keeps Mark's initializer internal; Mark is two `Int`s
    /// (line, column), so one is made from that pair — checked, so a Yams that changed it gets
    /// no re-marking rather than a wrong one.
    private static func mark(line: Int, column: Int) -> Mark? {
        struct Pair { var line: Int, column: Int }
        guard MemoryLayout<Mark>.size == MemoryLayout<Pair>.size else { return nil }
        let mark = unsafeBitCast(Pair(line: line, column: column), to: Mark.self)
        return mark.line == line && mark.column == column ? mark : nil
    }

    /// Counts `node` and everything beneath it against `budget`, stopping as soon as it runs out.
    private static func fits(_ node: Node, depth: Int, budget: inout Int) -> Bool {
        budget -= 1
        guard budget >= 0, depth <= depthLimit else { return false }
        switch node {
        case .scalar: return true
        case .sequence(let items): return items.allSatisfy { fits($0, depth: depth + 1, budget: &budget) }
        case .mapping(let pairs): return pairs.allSatisfy { fits($0.key, depth: depth + 1, budget: &budget) && fits($0.value, depth: depth + 1, budget: &budget) }
        case .alias: return true
        }
    }

    /// The members of a mapping with only the known keys. Unknown keys warn (with a
    /// suggestion); an unknown key that is a likely misspelling of a missing required key
    /// is an error naming the intended key, in place of a bare "missing" error.
    mutating func mapping(_ node: Node, _ path: String, known: [String], required: Set<String> = [])
        -> [String: Node]?
    {
        guard let mapping = node.mapping else {
            error(node, path, "expected a mapping, found \(describe(node))")
            return nil
        }
        var members: [String: Node] = [:]
        var explained: Set<String> = []
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            let keyPath = join(path, key)
            if known.contains(key) {
                members[key] = value
                continue
            }
            let suggestion = closestMatch(to: key, in: known)
            if let suggestion, required.contains(suggestion), !mapping.keys.contains(where: { $0.string == suggestion }) {
                error(keyNode, keyPath, "unknown key '\(key)'; did you mean '\(suggestion)'?")
                explained.insert(suggestion)
            } else if let suggestion {
                warning(keyNode, keyPath, "unknown key '\(key)' is ignored; did you mean '\(suggestion)'?")
            } else {
                warning(keyNode, keyPath, "unknown key '\(key)' is ignored (known keys: \(known.joined(separator: ", ")))")
            }
        }
        for key in known where required.contains(key) && members[key] == nil && !explained.contains(key) {
            error(node, path, "missing required key '\(key)'")
        }
        return members
    }

    mutating func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node, node.tagName != .null else {
            error(node, path, "expected a string, found \(describe(node))")
            return nil
        }
        return scalar.string
    }

    mutating func nonEmptyString(_ node: Node, _ path: String) -> String? {
        guard let text = string(node, path) else { return nil }
        if text.trimmingCharacters(in: .whitespaces).isEmpty {
            error(node, path, "must not be empty")
            return nil
        }
        return text
    }

    mutating func integer(_ node: Node, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard let value = node.int, node.tagName == .int else {
            error(node, path, "expected a whole number, found \(describe(node))")
            return nil
        }
        guard range.contains(value) else {
            error(node, path, "\(value) is out of range; expected \(range.lowerBound)…\(range.upperBound)")
            return nil
        }
        return value
    }

    /// A finite number (`.inf`, `.nan` and `1e400` are not).
    mutating func number(_ node: Node, _ path: String) -> Double? {
        guard let value = node.float, node.tagName == .int || node.tagName == .float, value.isFinite else {
            error(node, path, "expected a finite number, found \(describe(node))")
            return nil
        }
        return value
    }

    /// A mapping of metric names to change thresholds (finite, not negative); each bad value is
    /// reported at its own path, and a name not in `known` (when given) with a did-you-mean.
    mutating func thresholds(_ node: Node, _ path: String, known: [String]? = nil) -> [String: Double] {
        guard let members = node.mapping else {
            error(node, path, "expected a mapping of metric names to numbers, found \(describe(node))")
            return [:]
        }
        var numbers: [String: Double] = [:]
        for (key, value) in members {
            let name = key.string ?? ""
            if let known, !known.contains(name) {
                let hint = closestMatch(to: name, in: known).map { "; did you mean '\($0)'?" } ?? ""
                error(key, "\(path).\(name)", "no threshold '\(UntrustedText.sanitized(name, limit: 80))' is declared by the sensor\(hint) (it declares: \(known.sorted().joined(separator: ", ")))")
                continue
            }
            guard let number = number(value, "\(path).\(name)") else { continue }
            guard number >= 0 else {
                error(value, "\(path).\(name)", "a threshold is a change that triggers a reading: not negative, found \(number)")
                continue
            }
            numbers[name] = number
        }
        return numbers
    }

    mutating func stringList(_ node: Node, _ path: String) -> [String]? {
        guard let sequence = node.sequence else {
            error(node, path, "expected a list of strings, found \(describe(node))")
            return nil
        }
        let items = sequence.enumerated().map { string($1, "\(path)[\($0)]") }
        return items.contains(nil) ? nil : items.compactMap { $0 }
    }

    /// "256MiB", "1GiB", "64KiB", "1MB" or a plain number of bytes.
    mutating func byteSize(_ node: Node, _ path: String) -> UInt64? {
        if node.tagName == .int, let bytes = node.int, bytes >= 0 { return UInt64(bytes) }
        let units: [(String, UInt64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
                                         ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        if let text = node.string?.trimmingCharacters(in: .whitespaces) {
            for (suffix, factor) in units where text.hasSuffix(suffix) {
                let number = text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
                if let value = UInt64(number), value <= UInt64.max / factor { return value * factor }
            }
        }
        error(node, path, "expected a size such as 256MiB, 1GiB or a number of bytes, found \(describe(node))")
        return nil
    }

    /// "5s", "250ms", "2m" (`DurationText`) or a plain number of milliseconds; returns milliseconds.
    mutating func duration(_ node: Node, _ path: String) -> Int? {
        if node.tagName == .int, let milliseconds = node.int, (0...DurationText.maximumMilliseconds).contains(milliseconds) { return milliseconds }
        if let text = node.string, let milliseconds = DurationText.milliseconds(text) { return milliseconds }
        error(node, path, "expected a duration such as 5s, 250ms or 2m (at most 100 years), found \(describe(node))")
        return nil
    }

    /// Converts a YAML subtree (a JSON Schema, a config) to JSON.
    mutating func json(_ node: Node, _ path: String) -> JSONValue? {
        switch node {
        case .scalar(let scalar):
            switch node.tagName {
            case .null: return .null
            case .bool: return node.bool.map(JSONValue.bool)
            case .int, .float: return node.float.map(JSONValue.number)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            var items: [JSONValue] = []
            for (index, item) in sequence.enumerated() {
                guard let value = json(item, "\(path)[\(index)]") else { return nil }
                items.append(value)
            }
            return .array(items)
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard let name = key.string else {
                    error(key, path, "JSON object keys must be strings")
                    return nil
                }
                guard let member = json(value, join(path, name)) else { return nil }
                members[name] = member
            }
            return .object(members)
        case .alias:
            error(node, path, "YAML aliases are not supported here")
            return nil
        }
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch node.tagName {
            case .null: return "nothing (null)"
            case .bool: return "a boolean (\(scalar.string))"
            case .int, .float: return "a number (\(scalar.string))"
            default: return "\"\(scalar.string.prefix(40))\""
            }
        }
    }

    func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}

extension Node {
    /// The node a relative field path (".properties.dose[0]") names, for pointing a diagnostic
    /// at the exact key; the deepest node found when the path leaves the tree.
    func descendant(at relativePath: Substring) -> Node {
        var node = self
        let components = relativePath.split(separator: ".")
        for (position, component) in components.enumerated() {
            var name = component
            var indices: [Int] = []
            while let open = name.lastIndex(of: "["), name.last == "]", let index = Int(name[name.index(after: open)..<name.index(before: name.endIndex)]) {
                indices.insert(index, at: 0)
                name = name[..<open]
            }
            guard let mapping = node.mapping, let key = mapping.keys.first(where: { $0.string == String(name) }) else { return node }
            let isLast = position == components.count - 1
            node = isLast && indices.isEmpty ? key : mapping[key]!
            for index in indices {
                guard let sequence = node.sequence, index < sequence.count else { return node }
                node = sequence[index]
            }
        }
        return node
    }

    /// The resolved tag (int, float, str, …) of a node; Yams keeps `Tag.name` internal.
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}

/// What libyaml's own event stream says about a document before it is composed: where each
/// alias is used (and whether as a mapping key), and the first scalar key that repeats in its
/// mapping — exact positions, from the parser itself, not from reading the text. Events are not
/// expanded, so a bomb costs its size here.
struct YAMLEventScan {
    struct Alias {
        var line: Int
        var column: Int
        var isKey: Bool
    }

    private(set) var aliases: [Alias] = []
    /// The second of two equal scalar keys in one mapping, and the line of the first.
    private(set) var duplicate: (key: String, line: Int, column: Int, firstLine: Int)?

    init(_ text: String) {
        // One frame per open collection: a mapping's keys so far and whether a key comes next.
        enum Frame {
            case mapping(keys: [String: Int], expectingKey: Bool)
            case sequence
        }
        var frames: [Frame] = []
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            /// Whether the node now starting is a mapping key.
            func isKey() -> Bool {
                if case .mapping(_, true)? = frames.last { return true }
                return false
            }
            /// A node of the innermost mapping is complete: a key is followed by its value, a value by the next key.
            func completed() {
                if case .mapping(let keys, let expectingKey)? = frames.last { frames[frames.count - 1] = .mapping(keys: keys, expectingKey: !expectingKey) }
            }
            var event = yaml_event_t()
            while yaml_parser_parse(&parser, &event) == 1 {
                defer { yaml_event_delete(&event) }
                let (line, column) = (Int(event.start_mark.line) + 1, Int(event.start_mark.column) + 1)
                switch event.type {
                case YAML_ALIAS_EVENT:
                    aliases.append(Alias(line: line, column: column, isKey: isKey()))
                    completed()
                case YAML_SCALAR_EVENT:
                    if isKey(), case .mapping(var keys, _)? = frames.last, let value = event.data.scalar.value {
                        let key = String(decoding: UnsafeBufferPointer(start: value, count: event.data.scalar.length), as: UTF8.self)
                        if let first = keys[key], duplicate == nil { duplicate = (key, line, column, first) }
                        keys[key] = keys[key] ?? line
                        frames[frames.count - 1] = .mapping(keys: keys, expectingKey: true)
                    }
                    completed()
                case YAML_MAPPING_START_EVENT: frames.append(.mapping(keys: [:], expectingKey: true))
                case YAML_SEQUENCE_START_EVENT: frames.append(.sequence)
                case YAML_MAPPING_END_EVENT, YAML_SEQUENCE_END_EVENT:
                    _ = frames.popLast()
                    completed()
                case YAML_STREAM_END_EVENT: return
                default: break
                }
            }
        }
    }
}

