@_exported import BranePluginKit

/// Codable helpers so a plugin's invoke is a decode, a computation and an encode.
///
/// They code through the kit's `JSONValue`, not Foundation's `JSONEncoder`/`JSONDecoder`, so a
/// plugin on them loads libswiftCore alone and idles as small as one on `JSONValue` (Foundation
/// cost every instance 0.7 MiB idle and 2.7 MiB once it had decoded: docs/performance.md).
/// Numbers are JSON's doubles: an integer beyond ±2^53 is refused, not rounded.
public func decodeJSON<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
    do {
        return try ValueDecoder.decode(type, from: try JSONValue(parsing: bytes), at: [])
    } catch let error as JSONValue.ParseError {
        throw PluginError("invalid input: \(error)")
    } catch let error as DecodingError {
        throw PluginError("invalid input: \(describe(error))")
    }
}

/// Compact UTF-8 with object keys sorted, so equal values give equal bytes.
public func encodeJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
    try ValueEncoder.encode(value).bytes
}

/// "readings[2].rmssd: expected a number, found a string": where, then what.
private func describe(_ error: DecodingError) -> String {
    let context: DecodingError.Context
    switch error {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): context = c
    @unknown default: return "\(error)"
    }
    return context.codingPath.isEmpty ? context.debugDescription : "\(pathText(context.codingPath)): \(context.debugDescription)"
}

func pathText(_ path: [CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue, key.stringValue == "\(index)" { text += "[\(index)]" }
        else { text += (text.isEmpty ? "" : ".") + key.stringValue }
    }
    return text
}

/// The key of an array element in a coding path.
struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { "\(intValue!)" }
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

/// The largest magnitude below which every integer is a double exactly.
let exactIntegerLimit = 9_007_199_254_740_992.0
