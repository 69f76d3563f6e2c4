import Foundation
import MCP

// The host's JSONValue and the SDK's Value (tool schemas, a batch's call arguments), converted directly:
// going through Codable costs a regular-expression match per string, since the SDK's Value
// decoder checks every string for a data: URL.

extension Value {
    init(_ json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let n): self = n == n.rounded() && abs(n) < 9e15 ? .int(Int(n)) : .double(n)
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(Value.init))
        case .object(let members): self = .object(members.mapValues(Value.init))
        }
    }
}

extension JSONValue {
    /// The SDK's Value as the host's JSONValue (a batch's tools/call arguments). Binary data,
    /// which JSON lacks, becomes its data: URL text, as the SDK encodes it.
    init(_ value: MCP.Value) {
        switch value {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .number(Double(i))
        case .double(let d): self = .number(d)
        case .string(let s): self = .string(s)
        case .data(let mimeType, let data): self = .string("data:\(mimeType ?? "application/octet-stream");base64,\(data.base64EncodedString())")
        case .array(let items): self = .array(items.map(JSONValue.init))
        case .object(let members): self = .object(members.mapValues(JSONValue.init))
        }
    }
}
