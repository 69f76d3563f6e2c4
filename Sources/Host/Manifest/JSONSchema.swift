import Foundation

/// The JSON Schema subset MCP tool schemas use (draft 2020-12 keywords): type, properties,
/// required, additionalProperties, items, enum, const, numeric and length bounds, pattern,
/// allOf/anyOf/oneOf/not. The host checks tool arguments with it before a plugin sees them.
public struct JSONSchema: Sendable {
    public let root: JSONValue

    public init(_ root: JSONValue) { self.root = root }

    /// What is wrong with `instance`, each with the path of the offending value
    /// (`arguments.dose.unit`); empty when it conforms.
    public func violations(of instance: JSONValue, at path: String = "arguments") -> [SchemaViolation] {
        var found: [SchemaViolation] = []
        check(instance, against: root, path: path, into: &found)
        return found
    }

    static let annotationKeywords: Set<String> = ["$schema", "$id", "$comment", "title", "description", "default",
                                                  "examples", "format", "readOnly", "writeOnly", "deprecated"]
    static let assertionKeywords: Set<String> = ["type", "properties", "required", "additionalProperties", "items",
                                                 "enum", "const", "minimum", "maximum", "exclusiveMinimum",
                                                 "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems",
                                                 "maxItems", "uniqueItems", "minProperties", "maxProperties",
                                                 "allOf", "anyOf", "oneOf", "not", "multipleOf"]
    static let typeNames: Set<String> = ["null", "boolean", "number", "integer", "string", "array", "object"]

    /// Problems in a schema itself: keywords this validator cannot enforce are errors (a schema
    /// that silently validates less than it says is worse than none), misspelled ones come with a suggestion.
    public static func problems(in schema: JSONValue, at path: String) -> [SchemaViolation] {
        guard case .object(let keywords) = schema else {
            if case .bool = schema { return [] }
            return [SchemaViolation(path: path, message: "expected a schema object, found \(schema.typeName)")]
        }
        var found: [SchemaViolation] = []
        for (keyword, value) in keywords.sorted(by: { $0.key < $1.key }) {
            let here = "\(path).\(keyword)"
            if annotationKeywords.contains(keyword) { continue }
            guard assertionKeywords.contains(keyword) else {
                let hint = closestMatch(to: keyword, in: assertionKeywords.union(annotationKeywords)).map { "; did you mean '\($0)'?" }
                found.append(SchemaViolation(path: here, message: "unsupported schema keyword '\(keyword)'\(hint ?? "")"))
                continue
            }
            switch keyword {
            case "type":
                let names = value.arrayValue?.compactMap(\.stringValue) ?? value.stringValue.map { [$0] } ?? []
                if names.isEmpty || names.contains(where: { !typeNames.contains($0) }) {
                    found.append(SchemaViolation(path: here, message: "expected one of \(typeNames.sorted().joined(separator: ", ")) (or a list of them)"))
                }
            case "properties":
                guard case .object(let properties) = value else {
                    found.append(SchemaViolation(path: here, message: "expected an object of schemas")); continue
                }
                for (name, property) in properties.sorted(by: { $0.key < $1.key }) {
                    found += problems(in: property, at: "\(here).\(name)")
                }
            case "items", "additionalProperties", "not":
                found += problems(in: value, at: here)
            case "allOf", "anyOf", "oneOf":
                guard let schemas = value.arrayValue, !schemas.isEmpty else {
                    found.append(SchemaViolation(path: here, message: "expected a non-empty list of schemas")); continue
                }
                for (index, item) in schemas.enumerated() { found += problems(in: item, at: "\(here)[\(index)]") }
            case "required":
                if value.arrayValue?.allSatisfy({ $0.stringValue != nil }) != true {
                    found.append(SchemaViolation(path: here, message: "expected a list of property names"))
                }
            case "enum":
                if value.arrayValue == nil { found.append(SchemaViolation(path: here, message: "expected a list")) }
            case "pattern":
                if let pattern = value.stringValue {
                    if (try? NSRegularExpression(pattern: pattern)) == nil {
                        found.append(SchemaViolation(path: here, message: "not a valid regular expression"))
                    }
                } else {
                    found.append(SchemaViolation(path: here, message: "expected a string"))
                }
            case "uniqueItems":
                if case .bool = value {} else { found.append(SchemaViolation(path: here, message: "expected true or false")) }
            case "const":
                break
            default:  // numeric bounds
                if value.numberValue == nil { found.append(SchemaViolation(path: here, message: "expected a number")) }
            }
        }
        return found
    }

    private func check(_ value: JSONValue, against schema: JSONValue, path: String, into found: inout [SchemaViolation]) {
        if case .bool(let accepts) = schema {
            if !accepts { found.append(SchemaViolation(path: path, message: "no value is allowed here")) }
            return
        }
        guard case .object(let s) = schema else { return }
        func fail(_ message: String) { found.append(SchemaViolation(path: path, message: message)) }

        if let type = s["type"] {
            let allowed = type.arrayValue?.compactMap(\.stringValue) ?? type.stringValue.map { [$0] } ?? []
            let actual = value.typeName
            let matches = allowed.contains(actual) || (actual == "integer" && allowed.contains("number"))
            if !matches {
                fail("expected \(allowed.joined(separator: " or ")), found \(actual)\(describeBriefly(value))")
                return  // the other keywords would only repeat the type mismatch
            }
        }
        if let options = s["enum"]?.arrayValue, !options.contains(value) {
            let listed = options.map { $0.serialized() }.joined(separator: ", ")
            let hint = value.stringValue.flatMap { closestMatch(to: $0, in: options.compactMap(\.stringValue)) }
            fail("\(Self.echo(value)) is not one of \(listed)" + (hint.map { "; did you mean \"\($0)\"?" } ?? ""))
        }
        if let constant = s["const"], constant != value { fail("expected \(constant.serialized()), found \(Self.echo(value))") }

        switch value {
        case .number(let n):
            if let min = s["minimum"]?.numberValue, n < min { fail("\(format(n)) is less than the minimum \(format(min))") }
            if let max = s["maximum"]?.numberValue, n > max { fail("\(format(n)) is greater than the maximum \(format(max))") }
            if let min = s["exclusiveMinimum"]?.numberValue, n <= min { fail("\(format(n)) must be greater than \(format(min))") }
            if let max = s["exclusiveMaximum"]?.numberValue, n >= max { fail("\(format(n)) must be less than \(format(max))") }
            if let step = s["multipleOf"]?.numberValue, step > 0, (n / step).rounded() != n / step {
                fail("\(format(n)) is not a multiple of \(format(step))")
            }
        case .string(let text):
            let length = text.unicodeScalars.count
            if let min = s["minLength"]?.numberValue, Double(length) < min { fail("is \(length) characters long, shorter than \(format(min))") }
            if let max = s["maxLength"]?.numberValue, Double(length) > max { fail("is \(length) characters long, longer than \(format(max))") }
            if let pattern = s["pattern"]?.stringValue, let regex = try? NSRegularExpression(pattern: pattern),
               regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil {
                fail("\"\(text)\" does not match the pattern \(pattern)")
            }
        case .array(let items):
            if let min = s["minItems"]?.numberValue, Double(items.count) < min { fail("has \(items.count) items, fewer than \(format(min))") }
            if let max = s["maxItems"]?.numberValue, Double(items.count) > max { fail("has \(items.count) items, more than \(format(max))") }
            if s["uniqueItems"] == .bool(true), Set(items).count != items.count { fail("items must be unique") }
            if let itemSchema = s["items"] {
                for (index, item) in items.enumerated() { check(item, against: itemSchema, path: "\(path)[\(index)]", into: &found) }
            }
        case .object(let members):
            let properties = s["properties"]?.objectValue ?? [:]
            for name in s["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where members[name] == nil {
                fail("missing required property '\(UntrustedText.sanitized(name, limit: 64))'")
            }
            if let min = s["minProperties"]?.numberValue, Double(members.count) < min { fail("has fewer than \(format(min)) properties") }
            if let max = s["maxProperties"]?.numberValue, Double(members.count) > max { fail("has more than \(format(max)) properties") }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let propertySchema = properties[name] {
                    check(member, against: propertySchema, path: "\(path).\(name)", into: &found)
                } else if let additional = s["additionalProperties"] {
                    if additional == .bool(false) {
                        let hint = closestMatch(to: name, in: properties.keys).map { "; did you mean '\($0)'?" } ?? ""
                        let shown = UntrustedText.sanitized(name, limit: 64)   // the caller's text, in a message
                        found.append(SchemaViolation(path: "\(path).\(shown)", message: "unexpected property '\(shown)'\(hint)"))
                    } else {
                        check(member, against: additional, path: "\(path).\(name)", into: &found)
                    }
                }
            }
        default:
            break
        }

        for sub in s["allOf"]?.arrayValue ?? [] { check(value, against: sub, path: path, into: &found) }
        if let options = s["anyOf"]?.arrayValue, !options.contains(where: { conforms(value, $0, path) }) {
            fail("matches none of the anyOf alternatives")
        }
        if let options = s["oneOf"]?.arrayValue {
            let matching = options.filter { conforms(value, $0, path) }.count
            if matching != 1 { fail("matches \(matching) of the oneOf alternatives, expected exactly 1") }
        }
        if let negated = s["not"], conforms(value, negated, path) { fail("matches a schema it must not match") }
    }

    private func conforms(_ value: JSONValue, _ schema: JSONValue, _ path: String) -> Bool {
        var scratch: [SchemaViolation] = []
        check(value, against: schema, path: path, into: &scratch)
        return scratch.isEmpty
    }

    private func format(_ n: Double) -> String { JSONValue.number(n).serialized() }

    /// A value as a message shows it: at most 120 bytes of it, cut with a marker.
    static func echo(_ value: JSONValue) -> String { UntrustedText.sanitized(value.serialized(), limit: 120) }

    private func describeBriefly(_ value: JSONValue) -> String {
        switch value {
        case .string, .number, .bool: " \(value.serialized().prefix(40))"
        default: ""
        }
    }
}

public struct SchemaViolation: Equatable, Sendable, Codable, CustomStringConvertible {
    public var path: String
    public var message: String
    public var description: String { "\(path): \(message)" }
}
