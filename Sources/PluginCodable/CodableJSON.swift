@_exported import BranePluginKit
import FoundationEssentials

/// Codable helpers so a plugin's invoke is a decode, a computation and an encode.
/// They cost the plugin process Foundation's pages (about 3 MiB resident); plugins that must
/// stay small use `JSONValue` from BranePluginKit instead.
public func decodeJSON<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
    do {
        return try JSONDecoder().decode(type, from: Data(bytes))
    } catch {
        throw PluginError("invalid input: \(error)")
    }
}

public func encodeJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return Array(try encoder.encode(value))
}
