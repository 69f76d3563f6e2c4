import Foundation
import MCP

// The host's JSONValue as the SDK's Value (tool schemas for tools/list), converted directly:
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

