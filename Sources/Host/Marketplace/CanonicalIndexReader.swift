import CYaml
import Foundation

/// Reads an index written the way `MarketplaceIndex.yaml()` writes one straight from libyaml's
/// events into releases, with no tree in between: a 10,000-plugin index in a sixth of the time
/// the tree and its field reader take (architecture decision 32; docs/performance.md, "The CLI's
/// start-up and the index").
///
/// It accepts a strict subset of what that reader accepts — one document; no tags, anchors or
/// aliases; each known key at most once and no other; whole numbers in plain decimal; `true` and
/// `false` plain — and checks every value with the same functions. On anything else it
/// answers nil at once, and `MarketplaceIndex.parse` reads the text with the full reader, which
/// then either accepts it the same way or gives the diagnostics with their line, column and field.
/// A test compares the two readers on valid, varied and broken indexes.
struct CanonicalIndexReader {
    private let parser: UnsafeMutablePointer<yaml_parser_t>
    private var event = yaml_event_t()
    private var nodes = 0
    private let nodeLimit: Int

    /// The index, or nil when the text is not in the form this reader takes (or not valid).
    static func read(_ text: String, nodeLimit: Int) -> MarketplaceIndex? {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { return nil }
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        parser.initialize(to: yaml_parser_t())
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else { return nil }
        defer { yaml_parser_delete(parser) }
        return bytes.withUnsafeMutableBufferPointer { buffer in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var reader = CanonicalIndexReader(parser: parser, nodeLimit: nodeLimit)
            defer { yaml_event_delete(&reader.event) }
            return reader.stream()
        }
    }

    private init(parser: UnsafeMutablePointer<yaml_parser_t>, nodeLimit: Int) { (self.parser, self.nodeLimit) = (parser, nodeLimit) }

    // MARK: Events

    /// Moves to the next event; false on a syntax error or past the node bound.
    private mutating func advance() -> Bool {
        yaml_event_delete(&event)
        guard yaml_parser_parse(parser, &event) == 1 else { return false }
        switch event.type {
        case YAML_SCALAR_EVENT, YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            nodes += 1
            return nodes <= nodeLimit
        default: return true
        }
    }

    private mutating func advance(to type: yaml_event_type_t) -> Bool { advance() && event.type == type }

    /// The current event's scalar, if it is one with neither tag nor anchor.
    private var scalarBytes: UnsafeBufferPointer<UInt8>? {
        guard event.type == YAML_SCALAR_EVENT, event.data.scalar.tag == nil, event.data.scalar.anchor == nil else { return nil }
        return UnsafeBufferPointer(start: event.data.scalar.value, count: event.data.scalar.length)
    }

    private var isPlain: Bool { event.data.scalar.quoted_implicit == 0 }

    /// A collection start with neither tag nor anchor.
    private var isBareSequenceStart: Bool {
        event.type == YAML_SEQUENCE_START_EVENT && event.data.sequence_start.tag == nil && event.data.sequence_start.anchor == nil
    }

    private var isBareMappingStart: Bool {
        event.type == YAML_MAPPING_START_EVENT && event.data.mapping_start.tag == nil && event.data.mapping_start.anchor == nil
    }

    // MARK: Values, as the full reader takes them

    /// Any scalar but a null one (`YAMLFields.string`).
    private mutating func string() -> String? {
        guard advance() else { return nil }
        return scalarString
    }

    /// The current event's scalar as text, unless it is a null one.
    private var scalarString: String? {
        guard let bytes = scalarBytes else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        return !isPlain || !YAMLComposer.isImplicitNull(text) ? text : nil
    }

    /// A plain decimal whole number in `range`; other spellings YAML allows go to the full reader.
    private mutating func integer(in range: ClosedRange<Int>) -> Int? {
        guard advance(), let bytes = scalarBytes, isPlain, (1...18).contains(bytes.count),
              bytes.allSatisfy({ (0x30...0x39).contains($0) }), bytes.count == 1 || bytes[0] != 0x30 else { return nil }
        let value = bytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return range.contains(value) ? value : nil
    }

    private mutating func bool() -> Bool? {
        guard advance(), let bytes = scalarBytes, isPlain else { return nil }
        if bytes.elementsEqual("true".utf8) { return true }
        if bytes.elementsEqual("false".utf8) { return false }
        return nil
    }

    private mutating func stringList() -> [String]? {
        guard advance(), isBareSequenceStart else { return nil }
        var items: [String] = []
        while true {
            guard advance() else { return nil }
            if event.type == YAML_SEQUENCE_END_EVENT { return items }
            guard let text = scalarString else { return nil }
            items.append(text)
        }
    }

    /// Reads the members of the mapping whose start is the current event, each key one of `keys`
    /// (plain) at most once, calling `value` with the key's index to read what follows it; how
    /// many keys it held, or nil.
    private mutating func members(_ keys: [[UInt8]], _ value: (inout CanonicalIndexReader, Int) -> Bool) -> Int? {
        guard isBareMappingStart else { return nil }
        var seen: UInt64 = 0  // a bit per key
        while true {
            guard advance() else { return nil }
            if event.type == YAML_MAPPING_END_EVENT { return seen.nonzeroBitCount }
            guard let bytes = scalarBytes, isPlain,
                  let key = keys.firstIndex(where: { $0.count == bytes.count && memcmp($0, bytes.baseAddress!, bytes.count) == 0 }),  // keys are never empty
                  seen & 1 << key == 0, value(&self, key) else { return nil }
            seen |= 1 << key
        }
    }

    /// A sequence whose start is the next event, each item read by `item` from its first event.
    private mutating func items(_ item: (inout CanonicalIndexReader) -> Bool) -> Bool {
        guard advance(), isBareSequenceStart else { return false }
        while true {
            guard advance() else { return false }
            if event.type == YAML_SEQUENCE_END_EVENT { return true }
            guard item(&self) else { return false }
        }
    }

    // MARK: The index

    private static let indexKeys = ["apiVersion", "kind", "name", "version", "expires", "plugins"].map { Array($0.utf8) }
    private static let pluginKeys = ["id", "versions"].map { Array($0.utf8) }
    private static let releaseKeys = MarketplaceIndex.releaseKeys.map { Array($0.utf8) }
    private static let filesystemKeys = ["read", "write"].map { Array($0.utf8) }

    private mutating func stream() -> MarketplaceIndex? {
        guard advance(to: YAML_STREAM_START_EVENT), advance(to: YAML_DOCUMENT_START_EVENT), advance() else { return nil }
        var name: String?, version: Int?, expires: Date?, plugins: [MarketplaceIndex.Plugin] = []
        let seen = members(Self.indexKeys) { reader, key in
            switch key {
            case 0: return reader.string() == MarketplaceIndex.apiVersion
            case 1: return reader.string() == MarketplaceIndex.kind
            case 2: name = reader.string().flatMap { YAMLFields.isBlank($0) ? nil : $0 }; return name != nil
            case 3: version = reader.integer(in: 1...Int.max); return version != nil
            case 4: expires = reader.string().flatMap(Timestamp.date); return expires != nil
            default: return reader.items { reader in reader.plugin().map { plugins.append($0) } != nil }
            }
        }
        // Every key, one document, then the end of the stream.
        guard seen == Self.indexKeys.count, let name, let version, let expires,
              advance(to: YAML_DOCUMENT_END_EVENT), advance(to: YAML_STREAM_END_EVENT) else { return nil }
        return MarketplaceIndex(name: name, version: version, expires: expires, plugins: plugins)
    }

    /// The plugin whose mapping starts at the current event.
    private mutating func plugin() -> MarketplaceIndex.Plugin? {
        var id: String?, releases: [MarketplaceIndex.Release] = []
        let seen = members(Self.pluginKeys) { reader, key in
            if key == 0 {
                id = reader.string().flatMap { !YAMLFields.isBlank($0) && PluginID.problem($0) == nil ? $0 : nil }
                return id != nil
            }
            return reader.items { reader in reader.release().map { releases.append($0) } != nil }
        }
        guard seen == Self.pluginKeys.count, let id else { return nil }
        return MarketplaceIndex.Plugin(id: id, releases: releases)
    }

    /// The release whose mapping starts at the current event.
    private mutating func release() -> MarketplaceIndex.Release? {
        var version: SemanticVersion?, kind: PluginKind?, abi: ABIVersion?, tier: PrivacyTier?, description: String?
        var archive: String?, sha256: String?, size: UInt64?
        var tools: [String] = [], network: [String] = [], read: [String] = [], write: [String] = [], yanked = false
        func lines(_ list: [String]?, into target: inout [String]) -> Bool {
            guard let list, list.allSatisfy(UntrustedText.isPlainLine) else { return false }
            target = list
            return true
        }
        let seen = members(Self.releaseKeys) { reader, key in
            switch MarketplaceIndex.releaseKeys[key] {
            case "version": version = reader.string().flatMap(SemanticVersion.init); return version != nil
            case "kind": kind = reader.string().flatMap(PluginKind.init(rawValue:)); return kind != nil
            case "abi": abi = reader.string().flatMap(ABIVersion.init); return abi != nil
            case "tier": tier = reader.integer(in: 0...2).flatMap(PrivacyTier.init(rawValue:)); return tier != nil
            case "description": description = reader.string().flatMap { UntrustedText.isPlainLine($0) ? $0 : nil }; return description != nil
            case "tools":
                guard let names = reader.stringList(), names.allSatisfy({ ToolDeclaration.nameProblem($0) == nil }) else { return false }
                tools = names
                return true
            case "network": return lines(reader.stringList(), into: &network)
            case "filesystem":
                guard reader.advance() else { return false }
                return reader.members(Self.filesystemKeys) { reader, key in
                    key == 0 ? lines(reader.stringList(), into: &read) : lines(reader.stringList(), into: &write)
                } != nil
            case "archive":
                archive = reader.string().flatMap { !YAMLFields.isBlank($0) && ArchiveUnpacker.relativePath($0) != nil ? $0 : nil }
                return archive != nil
            case "sha256": sha256 = reader.string().flatMap { MarketplaceIndex.isDigest($0) ? $0 : nil }; return sha256 != nil
            case "size": size = reader.integer(in: 1...Int(MarketplaceIndex.archiveSizeLimit)).map(UInt64.init); return size != nil
            case "yanked":
                guard let flag = reader.bool() else { return false }
                yanked = flag
                return true
            default: return false
            }
        }
        guard seen != nil, let version, let kind, let abi, let tier, let description, let archive, let sha256, let size else { return nil }
        var release = MarketplaceIndex.Release(version: version, kind: kind, abi: abi, tier: tier, description: description, tools: tools,
                                               archive: archive, sha256: sha256, size: size, yanked: yanked)
        (release.network, release.read, release.write) = (network, read, write)
        return release
    }
}
