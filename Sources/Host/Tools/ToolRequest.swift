import Foundation

/// A `tools/call` the host has checked and may dispatch: the tool exists, the arguments match
/// its inputSchema, and every URL argument (`format: uri`) names a host and port the plugin's
/// manifest declares. The plugin is never called with a request that fails any of these.
public struct ToolRequest: Sendable {
    public let tool: ToolDeclaration
    public let arguments: JSONValue

    public enum Refusal: Error, Sendable, CustomStringConvertible {
        case unknownTool(plugin: String, tool: String, declared: [String])
        case invalidArguments(tool: String, [SchemaViolation])
        case undeclaredHost(plugin: String, path: String, url: String, declared: [String])

        public var description: String {
            switch self {
            case .unknownTool(let plugin, let tool, let declared):
                let hint = closestMatch(to: tool, in: declared).map { "; did you mean '\($0)'?" } ?? ""
                return "plugin \(plugin) has no tool '\(tool)'" + (declared.isEmpty ? "; it declares no tools" : "; it declares: \(declared.joined(separator: ", "))\(hint)")
            case .invalidArguments(let tool, let violations):
                return "invalid arguments for \(tool):\n" + violations.map { "  \($0)" }.joined(separator: "\n")
            case .undeclaredHost(let plugin, let path, let url, let declared):
                let allowed = declared.isEmpty ? "it declares no network endpoints" : "it declares \(declared.joined(separator: ", "))"
                return "\(path): \(url) is not a host:port that \(plugin) may reach; \(allowed) (network.connect in its manifest)"
            }
        }
    }

    public init(manifest: Manifest, tool name: String, arguments: JSONValue) throws(Refusal) {
        guard let tool = manifest.tool(named: name) else {
            throw .unknownTool(plugin: manifest.id, tool: name, declared: manifest.tools.map(\.name))
        }
        let violations = JSONSchema(tool.inputSchema).violations(of: arguments)
        guard violations.isEmpty else { throw .invalidArguments(tool: name, violations) }
        for (path, url) in Self.uriArguments(arguments, schema: tool.inputSchema, path: "arguments") {
            guard Self.declares(manifest.network, url: url) else {
                throw .undeclaredHost(plugin: manifest.id, path: path, url: url,
                                      declared: manifest.network.destinations)
            }
        }
        self.tool = tool
        self.arguments = arguments
    }

    /// The `tools/call` input the plugin receives.
    public var input: [UInt8] {
        Array(JSONValue.object(["name": .string(tool.name), "arguments": arguments]).serialized().utf8)
    }

    /// String arguments whose schema says `format: uri`, with their paths (top-level properties).
    static func uriArguments(_ arguments: JSONValue, schema: JSONValue, path: String) -> [(String, String)] {
        guard case .object(let properties)? = schema["properties"], case .object(let values) = arguments else { return [] }
        return properties.keys.sorted().compactMap { key in
            guard properties[key]?["format"] == .string("uri"), let url = values[key]?.stringValue else { return nil }
            return ("\(path).\(key)", url)
        }
    }

    /// Whether `url` is http(s) to a host:port the manifest declares (the port defaults by scheme).
    static func declares(_ network: NetworkAccess, url text: String) -> Bool {
        guard network.mode != .none, let url = URL(string: text), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host?.lowercased(), url.user == nil
        else { return false }
        let port = url.port ?? (scheme == "https" ? 443 : 80)
        return network.endpoint(host: host, port: port) != nil
    }
}
