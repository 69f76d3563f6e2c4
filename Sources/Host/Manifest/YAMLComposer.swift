import CYaml
import Yams

/// Composes one YAML document into Yams nodes straight from libyaml's events, in one pass, with
/// every bound checked on the way in, so nothing unbounded is ever built or walked:
///
/// - an alias used as a mapping key, more than `aliasLimit` alias uses, more than `nodeLimit`
///   nodes or `byteLimit` bytes of scalars once aliases are counted out;
/// - nesting deeper than `depthLimit`: reading stops there at once, because libyaml's scanner
///   checks every open flow level at every token and so costs the square of the depth (20,000
///   open `[` took 0.5 s, a 1 MiB file of them minutes), while its events come lazily (the first
///   100 levels of 200,000 arrive in a millisecond);
/// - a duplicate key (scalar keys compared by their text, whatever their tags), reported at the
///   second key with the line of the first;
/// - a syntax error, at libyaml's position.
///
/// A value reached through an alias is marked where the alias is written, so a diagnostic
/// about it points at the use, not at the anchor.
///
/// Why not `Yams.compose`: it resolves every plain scalar's tag with up to seven
/// NSRegularExpressions and hashes every mapping's keys whole. That cost 1.2 s for a
/// 10,000-plugin index. It also needed a second libyaml pass for exact positions. Here a plain
/// scalar's tag is decided by `implicitTag`, which follows the same YAML 1.1 rules as Yams's
/// default resolver (a test compares the two), and set explicitly, so Yams never resolves it.
struct YAMLComposer {
    struct Problem: Error {
        /// 0 when the problem has no position (the document as a whole).
        var line: Int
        var column: Int
        var message: String
    }

    let nodeLimit: Int
    let depthLimit: Int
    let aliasLimit: Int
    /// Scalar bytes once aliases are counted out: 999 aliases of a 980 KiB string made 2 GB.
    var byteLimit = Int.max

    /// The document's root, nil for a stream without a document; throws the first problem by
    /// precedence: an alias used as a key, too many aliases, a syntax error, a duplicate key,
    /// then size and depth. Those found by reading events are looked for in the whole text even
    /// after composing has stopped.
    func compose(_ text: String) throws(Problem) -> Node? {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0A] }  // libyaml takes no empty buffer
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        parser.initialize(to: yaml_parser_t())
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { throw Problem(line: 0, column: 0, message: "libyaml could not start") }
        defer { yaml_parser_delete(parser) }
        return try bytes.withUnsafeBufferPointer { buffer throws(Problem) in
            // The text is UTF-8 already (YAMLFields.utf8Text); libyaml detects it and skips a BOM.
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var run = Run(limits: self, parser: parser, text: bytes)
            let root = run.stream()
            if let problem = run.firstProblem { throw problem }
            return root
        }
    }

    /// The tag YAML 1.1's implicit rules give a plain scalar, as Yams's default resolver decides
    /// it (bool, int, float, merge, null, timestamp, value, in that order; otherwise str).
    static func implicitTag(_ text: String) -> Tag.Name {
        let b = Array(text.utf8)
        if ["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
            "on", "On", "ON", "off", "Off", "OFF"].contains(text) { return .bool }
        if isInt(b) { return .int }
        if isFloat(b) { return .float }
        if text == "<<" { return .merge }
        if isImplicitNull(text) { return .null }
        if isTimestamp(b) { return .timestamp }
        if text == "=" { return .value }
        return .str
    }

    /// Whether a plain scalar is null: none of these is a bool, a number or a merge key, so this
    /// alone answers `implicitTag(text) == .null`.
    static func isImplicitNull(_ text: String) -> Bool {
        text.utf8.count <= 4 && ["~", "null", "Null", "NULL", ""].contains(text)
    }

    // MARK: - One composition

    private struct Run {
        let limits: YAMLComposer
        let parser: UnsafeMutablePointer<yaml_parser_t>
        let text: [UInt8]
        var anchors: [String: (node: Node, size: Int, bytes: Int, height: Int)] = [:]
        var nodes = 0, bytes = 0
        var aliasUses = 0
        /// Reading stops for good (nesting past the bound): no event after it is asked for.
        var halted = false
        /// Composing stops at the first of these; reading events goes on to the end.
        var composing = true
        var aliasKey: Problem?, syntax: Problem?, duplicate: Problem?, bound: Problem?

        init(limits: YAMLComposer, parser: UnsafeMutablePointer<yaml_parser_t>, text: [UInt8]) { (self.limits, self.parser, self.text) = (limits, parser, text) }

        /// Line and column (in characters) of the byte at `offset`, counting LF, CR and CRLF as one break.
        static func position(ofByte offset: Int, in text: [UInt8]) -> (Int, Int) {
            var line = 1, column = 1
            for index in 0..<min(offset, text.count) {
                let byte = text[index]
                if byte == 0x0A && index > 0 && text[index - 1] == 0x0D { continue }
                if byte == 0x0A || byte == 0x0D { (line, column) = (line + 1, 1) } else if byte & 0xC0 != 0x80 { column += 1 }
            }
            return (line, column)
        }

        var firstProblem: Problem? {
            if let aliasKey { return aliasKey }
            if aliasUses > limits.aliasLimit {
                return Problem(line: 0, column: 0, message: "the document uses \(aliasUses) aliases; at most \(limits.aliasLimit) are read")
            }
            return syntax ?? duplicate ?? bound
        }

        /// The next event, or nil at the end of the stream or on a syntax error (recorded).
        mutating func next() -> Event? {
            guard !halted else { return nil }
            var event = yaml_event_t()
            guard yaml_parser_parse(parser, &event) == 1 else {
                let problem = parser.pointee.problem.map { String(cString: $0) } ?? "unreadable"
                // A reader error (a control character, say) has an offset, not a mark.
                let (line, column) = parser.pointee.error == YAML_READER_ERROR
                    ? Self.position(ofByte: Int(parser.pointee.problem_offset), in: text)
                    : (Int(parser.pointee.problem_mark.line) + 1, Int(parser.pointee.problem_mark.column) + 1)
                syntax = Problem(line: line, column: column, message: "invalid YAML: \(problem)")
                composing = false
                return nil
            }
            let wrapped = Event(event)
            // After the end of the stream libyaml answers "no event" for ever.
            return wrapped.type == YAML_STREAM_END_EVENT || wrapped.type == YAML_NO_EVENT ? nil : wrapped
        }

        mutating func stream() -> Node? {
            var root: Node?
            var documents = 0
            while let event = next() {
                switch event.type {
                case YAML_DOCUMENT_START_EVENT:
                    documents += 1
                    if documents == 2 {
                        syntax = syntax ?? Problem(line: event.line, column: event.column,
                                                   message: "invalid YAML: a second document begins here; the file may hold one")
                        composing = false
                    }
                case YAML_DOCUMENT_END_EVENT, YAML_STREAM_START_EVENT:
                    break
                default:
                    let node = self.node(event, depth: 0, isKey: false)?.node
                    if documents == 1 { root = node }
                }
            }
            return composing ? root : nil
        }

        /// The node `event` begins, with how far its subtree reaches below it, its events read to
        /// its end; nil once composing has stopped (what follows is then only scanned: `skip`).
        mutating func node(_ event: Event, depth: Int, isKey: Bool) -> (node: Node, height: Int)? {
            switch event.type {
            case YAML_ALIAS_EVENT:
                aliasUse(event, isKey: isKey)
                guard composing else { return nil }
                guard let anchored = anchors[event.anchor ?? ""] else {
                    syntax = Problem(line: event.line, column: event.column, message: "invalid YAML: found undefined alias")
                    composing = false
                    return nil
                }
                count(anchored.size, bytes: anchored.bytes, depth: depth + anchored.height)
                return composing ? (Self.marked(anchored.node, event.mark), anchored.height) : nil
            case YAML_SCALAR_EVENT:
                let length = event.scalarLength
                count(1, bytes: length, depth: depth)
                guard composing else { return nil }
                let node = Node.scalar(Node.Scalar(event.scalarValue, tag(event.scalarTag), event.scalarStyle, event.mark))
                if let anchor = event.anchor { anchors[anchor] = (node, 1, length, 0) }
                return (node, 0)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                guard composing else { skip(event); return nil }
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                let (before, bytesBefore) = (nodes, bytes)
                count(1, bytes: 0, depth: depth)
                var items: [Node] = [], pairs: [(Node, Node)] = []
                // A scalar key by its text alone, whatever its tag: the readers look keys up by text,
                // so `!x tier: 2` after `tier: 0` must not pass as another key (Yams would let it).
                var scalarKeys: [String: Int] = [:], otherKeys: [Node: Int] = [:]
                var height = 0
                var pendingKey: Node?, expectingKey = isMapping
                while let child = next(), child.type != YAML_SEQUENCE_END_EVENT, child.type != YAML_MAPPING_END_EVENT {
                    let childIsKey = isMapping && expectingKey
                    if isMapping { expectingKey.toggle() }
                    guard let (built, below) = node(child, depth: depth + 1, isKey: childIsKey), composing else { continue }
                    height = max(height, 1 + below)
                    if !isMapping {
                        items.append(built)
                    } else if childIsKey {
                        let first: Int?
                        if case .scalar(let scalar) = built {
                            first = scalarKeys[scalar.string]
                            if first == nil { scalarKeys[scalar.string] = child.line }
                        } else {
                            first = otherKeys[built]
                            if first == nil { otherKeys[built] = child.line }
                        }
                        if let first {
                            duplicate = duplicate ?? Problem(line: child.line, column: child.column,
                                                             message: "duplicate key '\((built.string ?? "…").prefix(80))' (first at line \(first)); a key may appear once in a mapping")
                            composing = false
                        }
                        pendingKey = built
                    } else if let key = pendingKey {
                        pairs.append((key, built))
                    }
                }
                guard composing else { return nil }
                let tag = self.tag(event.collectionTag ?? (isMapping ? .map : .seq))
                let node: Node = isMapping ? .mapping(Node.Mapping(pairs, tag, event.mappingStyle, event.mark))
                                           : .sequence(Node.Sequence(items, tag, event.sequenceStyle, event.mark))
                if let anchor = event.anchor { anchors[anchor] = (node, nodes - before, bytes - bytesBefore, height) }
                return (node, height)
            default:
                return nil
            }
        }

        /// One `Tag` per name for the document: Yams builds its default constructor's tables anew
        /// for every Tag made (a third of composing a large index), and a Tag with a name never
        /// changes (only implicit ones resolve).
        var tags: [Tag.Name: Tag] = [:]
        mutating func tag(_ name: Tag.Name) -> Tag {
            if let tag = tags[name] { return tag }
            let tag = Tag(name)
            tags[name] = tag
            return tag
        }

        mutating func aliasUse(_ event: Event, isKey: Bool) {
            aliasUses += 1
            if isKey && aliasKey == nil {
                aliasKey = Problem(line: event.line, column: event.column, message: "an alias is used as a mapping key; aliases may stand for values only")
                composing = false
            }
            if aliasUses > limits.aliasLimit { composing = false }
        }

        /// Reads the collection `start` begins to its end without building it, iteratively, so
        /// nesting past every bound costs no stack; aliases are still counted and checked.
        mutating func skip(_ start: Event) {
            // Per open collection: nil for a sequence, else whether a key comes next.
            var open: [Bool?] = [start.type == YAML_MAPPING_START_EVENT ? true : nil]
            func completed(_ open: inout [Bool?]) { if let expectingKey = open.last ?? nil { open[open.count - 1] = !expectingKey } }
            while let event = next() {
                switch event.type {
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    open.removeLast()
                    if open.isEmpty { return }
                    completed(&open)
                case YAML_ALIAS_EVENT:
                    aliasUse(event, isKey: (open.last ?? nil) == true)
                    completed(&open)
                case YAML_SCALAR_EVENT: completed(&open)
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    open.append(event.type == YAML_MAPPING_START_EVENT ? true : nil)
                    if open.count > limits.depthLimit {  // deeper than any document may be: stop reading
                        bound = bound ?? Problem(line: 0, column: 0, message: "the document nests deeper than \(limits.depthLimit) levels; refused before reading it")
                        halted = true
                        return
                    }
                default: break
                }
            }
        }

        /// Counts `size` more nodes and `length` more scalar bytes, reaching `depth`; past a bound,
        /// composing stops, and past the depth bound reading stops too.
        mutating func count(_ size: Int, bytes length: Int, depth: Int) {
            nodes += size
            bytes += length
            if depth > limits.depthLimit { halted = true }
            guard composing, nodes > limits.nodeLimit || bytes > limits.byteLimit || depth > limits.depthLimit else { return }
            bound = Problem(line: 0, column: 0, message: "the document expands to more than \(limits.nodeLimit) nodes or \(limits.byteLimit) bytes, "
                + "or nests deeper than \(limits.depthLimit) levels (an alias bomb?); refused before reading it")
            composing = false
        }

        /// `node` marked at `mark`: where an alias stands for it.
        static func marked(_ node: Node, _ mark: Mark?) -> Node {
            switch node {
            case .scalar(var scalar): scalar.mark = mark; return .scalar(scalar)
            case .mapping(var mapping): mapping.mark = mark; return .mapping(mapping)
            case .sequence(var sequence): sequence.mark = mark; return .sequence(sequence)
            case .alias: return node
            }
        }
    }

    /// One libyaml event, freed with its wrapper.
    private final class Event {
        var event: yaml_event_t
        init(_ event: yaml_event_t) { self.event = event }
        deinit { yaml_event_delete(&event) }

        var type: yaml_event_type_t { event.type }
        var line: Int { Int(event.start_mark.line) + 1 }
        var column: Int { Int(event.start_mark.column) + 1 }
        var mark: Mark? { YAMLComposer.mark(line: line, column: column) }

        var anchor: String? {
            let pointer: UnsafeMutablePointer<UInt8>? = switch event.type {
            case YAML_ALIAS_EVENT: event.data.alias.anchor
            case YAML_SCALAR_EVENT: event.data.scalar.anchor
            case YAML_SEQUENCE_START_EVENT: event.data.sequence_start.anchor
            case YAML_MAPPING_START_EVENT: event.data.mapping_start.anchor
            default: nil
            }
            return pointer.map { String(cString: $0) }
        }

        var scalarLength: Int { event.data.scalar.length }
        var scalarValue: String {
            String(decoding: UnsafeBufferPointer(start: event.data.scalar.value, count: event.data.scalar.length), as: UTF8.self)
        }

        /// A quoted or block scalar is a string; a plain one takes its implicit tag; "!" is a
        /// string; any other tag is the document's own.
        var scalarTag: Tag.Name {
            if event.data.scalar.quoted_implicit == 1 { return .str }
            guard let tag = event.data.scalar.tag.map({ String(cString: $0) }) else { return YAMLComposer.implicitTag(scalarValue) }
            return tag == "!" ? .str : Tag.Name(rawValue: tag)
        }
        var scalarStyle: Node.Scalar.Style { Node.Scalar.Style(rawValue: numericCast(event.data.scalar.style.rawValue)) ?? .any }

        var collectionTag: Tag.Name? {
            let (implicit, tag) = event.type == YAML_MAPPING_START_EVENT
                ? (event.data.mapping_start.implicit, event.data.mapping_start.tag) : (event.data.sequence_start.implicit, event.data.sequence_start.tag)
            guard implicit == 0, let tag, String(cString: tag) != "!" else { return nil }
            return Tag.Name(rawValue: String(cString: tag))
        }
        var mappingStyle: Node.Mapping.Style { Node.Mapping.Style(rawValue: numericCast(event.data.mapping_start.style.rawValue)) ?? .any }
        var sequenceStyle: Node.Sequence.Style { Node.Sequence.Style(rawValue: numericCast(event.data.sequence_start.style.rawValue)) ?? .any }
    }

    /// A `Mark` at `line`:`column`. Yams keeps Mark's initializer internal; Mark is two `Int`s
    /// (line, column), so one is made from that pair — checked, so a Yams that changed it gets
    /// no mark rather than a wrong one.
    static func mark(line: Int, column: Int) -> Mark? {
        struct Pair { var line: Int, column: Int }
        guard MemoryLayout<Mark>.size == MemoryLayout<Pair>.size else { return nil }
        let mark = unsafeBitCast(Pair(line: line, column: column), to: Mark.self)
        return mark.line == line && mark.column == column ? mark : nil
    }

    // MARK: - YAML 1.1 implicit numbers and times, byte by byte (Yams's resolver patterns)

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// `[-+]?0b[0-1_]+ | [-+]?0o?[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ | [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`
    static func isInt(_ b: [UInt8]) -> Bool {
        var s = b[...]
        if let first = s.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") { s = s.dropFirst() }
        func all(_ rest: ArraySlice<UInt8>, _ allowed: (UInt8) -> Bool) -> Bool { !rest.isEmpty && rest.allSatisfy(allowed) }
        let underscore = UInt8(ascii: "_")
        if s.starts(with: Array("0b".utf8)) { return all(s.dropFirst(2)) { $0 == 0x30 || $0 == 0x31 || $0 == underscore } }
        if s.starts(with: Array("0x".utf8)) { return all(s.dropFirst(2)) { isDigit($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) || $0 == underscore } }
        if s.first == 0x30 {
            let octal = s.dropFirst().first == UInt8(ascii: "o") ? s.dropFirst(2) : s.dropFirst()
            if all(octal, { (0x30...0x37).contains($0) || $0 == underscore }) { return true }
            return s.count == 1
        }
        guard let first = s.first, (0x31...0x39).contains(first) else { return false }
        if s.allSatisfy({ isDigit($0) || $0 == underscore }) { return true }
        return isSexagesimal(s, fraction: false)
    }

    /// `[-+]?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)? | \.[0-9_]+([eE][-+][0-9]+)? |
    /// [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)`
    static func isFloat(_ b: [UInt8]) -> Bool {
        let text = String(decoding: b, as: UTF8.self)
        if [".nan", ".NaN", ".NAN"].contains(text) { return true }
        var s = b[...]
        let signed = s.first == UInt8(ascii: "-") || s.first == UInt8(ascii: "+")
        if signed { s = s.dropFirst() }
        if [".inf", ".Inf", ".INF"].contains(String(decoding: s, as: UTF8.self)) { return true }
        let underscore = UInt8(ascii: "_"), dot = UInt8(ascii: ".")
        func digitsOrUnderscores(_ t: inout ArraySlice<UInt8>) { while let c = t.first, isDigit(c) || c == underscore { t = t.dropFirst() } }
        func exponent(_ t: ArraySlice<UInt8>, signRequired: Bool) -> Bool {
            var t = t
            guard t.first == UInt8(ascii: "e") || t.first == UInt8(ascii: "E") else { return false }
            t = t.dropFirst()
            if t.first == UInt8(ascii: "-") || t.first == UInt8(ascii: "+") { t = t.dropFirst() } else if signRequired { return false }
            return !t.isEmpty && t.allSatisfy(isDigit)
        }
        if s.first == dot && !signed {
            var t = s.dropFirst()
            let start = t.count
            digitsOrUnderscores(&t)
            if t.count < start && (t.isEmpty || exponent(t, signRequired: true)) { return true }
        }
        guard let first = s.first, isDigit(first) else { return false }
        var t = s.dropFirst()
        digitsOrUnderscores(&t)
        var u = t
        if u.first == dot { u = u.dropFirst(); digitsOrUnderscores(&u) }
        if u.isEmpty || exponent(u, signRequired: false) { return true }
        return isSexagesimal(s, fraction: true)
    }

    /// `[0-9][0-9_]*(:[0-5]?[0-9])+` and, with `fraction`, `\.[0-9_]*` after it. The int form
    /// requires a first digit 1-9, which the caller has checked.
    private static func isSexagesimal(_ s: ArraySlice<UInt8>, fraction: Bool) -> Bool {
        var t = s
        guard let first = t.first, isDigit(first) else { return false }
        t = t.dropFirst()
        while let c = t.first, isDigit(c) || c == UInt8(ascii: "_") { t = t.dropFirst() }
        var groups = 0
        while t.first == UInt8(ascii: ":") {
            t = t.dropFirst()
            let digits = t.prefix { isDigit($0) }
            // [0-5]?[0-9]: one digit, or two with the first 0-5
            guard digits.count == 1 || (digits.count >= 2 && (0x30...0x35).contains(digits.first!)) else { return false }
            t = t.dropFirst(min(digits.count, 2))
            groups += 1
        }
        guard groups > 0 else { return false }
        if !fraction { return t.isEmpty }
        guard t.first == UInt8(ascii: ".") else { return false }
        return t.dropFirst().allSatisfy { isDigit($0) || $0 == UInt8(ascii: "_") }
    }

    /// `YYYY-MM-DD`, or `YYYY-M?M-D?D([Tt]|[ \t]+)H?H:MM:SS(\.[0-9]*)?([ \t]*(Z|[-+]H?H(:MM)?))?`
    static func isTimestamp(_ b: [UInt8]) -> Bool {
        var t = b[...]
        func digits(_ minimum: Int, _ maximum: Int) -> Bool {
            let run = t.prefix(maximum).prefix { isDigit($0) }
            guard run.count >= minimum else { return false }
            t = t.dropFirst(run.count)
            return true
        }
        func literal(_ c: Character) -> Bool {
            guard t.first == c.asciiValue else { return false }
            t = t.dropFirst()
            return true
        }
        guard digits(4, 4), literal("-") else { return false }
        let afterYear = t
        if digits(2, 2), literal("-"), digits(2, 2), t.isEmpty { return true }
        t = afterYear
        guard digits(1, 2), literal("-"), digits(1, 2) else { return false }
        if t.first == UInt8(ascii: "T") || t.first == UInt8(ascii: "t") {
            t = t.dropFirst()
        } else {
            let spaces = t.prefix { $0 == 0x20 || $0 == 0x09 }
            guard !spaces.isEmpty else { return false }
            t = t.dropFirst(spaces.count)
        }
        guard digits(1, 2), literal(":"), digits(2, 2), literal(":"), digits(2, 2) else { return false }
        if literal(".") { while let c = t.first, isDigit(c) { t = t.dropFirst() } }
        if t.isEmpty { return true }
        t = t.drop { $0 == 0x20 || $0 == 0x09 }  // only before a zone
        if literal("Z") { return t.isEmpty }
        guard literal("-") || literal("+"), digits(1, 2) else { return false }
        if literal(":") { guard digits(2, 2) else { return false } }
        return t.isEmpty
    }
}
