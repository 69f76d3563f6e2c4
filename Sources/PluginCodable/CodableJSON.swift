@_exported import BranePluginKit

/// Codable helpers so a plugin's invoke is a decode, a computation and an encode.
///
/// They code through the kit's `JSONValue`, not Foundation's `JSONEncoder`/`JSONDecoder`, so a
/// plugin on them loads libswiftCore alone and idles as small as one on `JSONValue` (Foundation
/// cost every instance 0.7 MiB idle and 2.7 MiB once it had decoded: docs/performance.md).
/// Numbers are JSON's doubles: an integer beyond ±2^53 is refused, not rounded.
public func decodeJSON<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
    let value: JSONValue
    do { value = try JSONValue(parsing: bytes) } catch { throw PluginError("invalid input: \(error)") }
    return try decodeJSON(type, from: value)
}

/// The same from a parsed value: one element of a list, say, so a bad one can be skipped alone.
public func decodeJSON<T: Decodable>(_ type: T.Type, from value: JSONValue) throws -> T {
    do {
        return try ValueDecoder.decode(type, from: value, at: [])
    } catch let error as DecodingError {
        throw PluginError("invalid input: \(describe(error))")
    }
}

/// Compact UTF-8 with object keys sorted, so equal values give equal bytes.
public func encodeJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
    do {
        return try ValueEncoder.encode(value).bytes
    } catch let error as EncodingError {
        guard case .invalidValue(_, let context) = error else { throw error }
        throw PluginError("cannot write the answer: \(describe(context.codingPath, context.debugDescription))")
    }
}

private func describe(_ error: DecodingError) -> String {
    switch error {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): describe(c.codingPath, c.debugDescription)
    @unknown default: "\(error)"
    }
}

/// "readings[2].rmssd: expected a number, found a string": where, then what.
private func describe(_ path: [CodingKey], _ problem: String) -> String {
    path.isEmpty ? problem : "\(pathText(path)): \(problem)"
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
