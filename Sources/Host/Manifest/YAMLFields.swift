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
    /// The largest manifest or neuron file (host settings: `SandboxSettings.hostSettingsSizeLimit`).
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

    /// Parses a whole document (YAMLComposer); a syntax error, a duplicate key, an alias used as
    /// a key, and a document too large (aliases counted out) or too deep become a diagnostic at
    /// libyaml's position, before anything walks the tree.
    mutating func document(_ text: String, sizeLimit: Int = fileSizeLimit, nodeLimit: Int = nodeLimit) -> Node? {
        guard text.utf8.count <= sizeLimit else {
            error(nil, "", "the document is \(text.utf8.count) bytes; at most \(sizeLimit) are read")
            return nil
        }
        do throws(YAMLComposer.Problem) {
            let composer = YAMLComposer(nodeLimit: nodeLimit, depthLimit: Self.depthLimit, aliasLimit: Self.aliasLimit, byteLimit: sizeLimit)
            guard let node = try composer.compose(text) else {
                error(nil, "", "the file is empty")
                return nil
            }
            return node
        } catch {
            diagnostics.append(Diagnostic(.error, file: file, line: max(error.line, 1), column: max(error.column, 1), path: "", message: error.message))
            return nil
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
        if Self.isBlank(text) {
            error(node, path, "must not be empty")
            return nil
        }
        return text
    }

    /// Nothing but spaces and tabs (Unicode's too); a printable ASCII first byte answers at once.
    static func isBlank(_ text: String) -> Bool {
        if let first = text.utf8.first, first > 0x20, first < 0x7F { return false }
        return text.trimmingCharacters(in: .whitespaces).isEmpty
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
            case .bool:
                guard let flag = node.bool else {
                    error(node, path, "expected true or false, found '\(UntrustedText.sanitized(scalar.string, limit: 40))' tagged a boolean")
                    return nil
                }
                return .bool(flag)
            case .int, .float:
                guard let number = node.float, number.isFinite else {
                    error(node, path, "expected a finite number, found '\(UntrustedText.sanitized(scalar.string, limit: 40))' (quote it to mean text)")
                    return nil
                }
                return .number(number)
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
