import Foundation

/// An agent a user runs: a model, the plugins it may use, and the privacy tier that bounds both.
/// Written as YAML (docs/neurons.md, docs/schemas/neuron.schema.json); `NeuronLoader` reads it.
public struct NeuronConfig: Sendable, Codable, Equatable {
    public static let apiVersion = "brane.dev/v1"

    public var id: String
    public var name: String
    public var description: String
    public var privacyTier: PrivacyTier
    public var model: ModelSettings
    public var instructions: String
    public var tools: [PluginUse]
    public var specialists: [PluginUse]
    public var sensors: [SensorUse]
    public var scanners: [PluginUse]
    public var limits: Limits
    public var memory: Memory
    /// What the host itself serves from the neuron's observations.
    public var host: HostAccess

    /// Every plugin the neuron enables, tools first, in file order.
    public var allPlugins: [PluginUse] { tools + specialists + sensors.map(\.plugin) + scanners }
}

public struct ModelSettings: Sendable, Codable, Equatable {
    public enum Provider: String, Sendable, Codable, CaseIterable {
        case openAICompatible = "openai-compatible"
        case ollama
    }

    /// Native: the API's tool-calling fields. Prompt: tools described in the system prompt and
    /// requested as a JSON line in the answer, for models without native tool calling.
    public enum ToolCalling: String, Sendable, Codable, CaseIterable { case native, prompt }

    public var provider: Provider
    public var model: String
    public var endpoint: ModelEndpoint
    public var fallbackEndpoint: ModelEndpoint?
    /// The environment variable holding the API key; keys are never written in the file.
    public var apiKeyEnv: String?
    public var toolCalling: ToolCalling
    public var timeoutMilliseconds: Int
}

/// Where a model answers: an http(s) URL, or `unix:///path.sock` for a server on a unix socket.
public struct ModelEndpoint: Sendable, Codable, Equatable, CustomStringConvertible {
    public var url: String

    public init?(_ text: String) {
        guard let parsed = URL(string: text), let scheme = parsed.scheme?.lowercased() else { return nil }
        switch scheme {
        case "http", "https": guard parsed.host?.isEmpty == false else { return nil }
        case "unix": guard !parsed.path.isEmpty else { return nil }
        default: return nil
        }
        url = text
    }

    /// The socket path of a `unix://` endpoint.
    public var unixSocketPath: String? {
        guard let parsed = URL(string: url), parsed.scheme?.lowercased() == "unix" else { return nil }
        return parsed.path
    }

    /// On this machine: a unix socket or a loopback address. Only these may see tier-0 data.
    public var isLocal: Bool {
        if unixSocketPath != nil { return true }
        guard let host = URL(string: url)?.host?.lowercased() else { return false }
        return NetworkAccess.isLoopback(host)
    }

    /// The tier a destination counts as for `DataFlow`: a local endpoint keeps data on the
    /// machine (tier 0 may reach it); any other can send it anywhere (tier 2).
    public var tier: PrivacyTier { isLocal ? .sensitive : .external }

    public var description: String { url }
}

/// One plugin a neuron enables, with the neuron's settings for it.
public struct PluginUse: Sendable, Codable, Equatable {
    public var id: String
    /// For tools: the tools the model may call (nil: every tool the plugin declares).
    public var allowedTools: [String]?
    /// Merged into the manifest's `config` as a JSON Merge Patch (RFC 7386).
    public var config: JSONValue?
    /// Instances kept for concurrent calls (MCP serving).
    public var pool: Int
    /// For sensors, overrides the manifest's sampling interval; for scanners, how often
    /// `neuron run` rescans (nil: once at start).
    public var intervalSeconds: Double?

    public init(id: String, allowedTools: [String]? = nil, config: JSONValue? = nil, pool: Int = 1, intervalSeconds: Double? = nil) {
        self.id = id
        self.allowedTools = allowedTools
        self.config = config
        self.pool = pool
        self.intervalSeconds = intervalSeconds
    }
}

public struct SensorUse: Sendable, Codable, Equatable {
    public var plugin: PluginUse
    /// Overlaid on the manifest's thresholds.
    public var thresholds: [String: Double]
}

public struct Limits: Sendable, Codable, Equatable {
    /// Model round trips in one answer (each tool-call loop counts one).
    public var maxTurns = 8
    /// Caps every plugin call's wall time (a plugin's own shorter callTimeout still applies).
    public var callTimeoutMilliseconds: Int?
    /// Tokens (prompt + completion) the neuron may spend per UTC day; nil: unlimited.
    public var dailyTokenBudget: Int?

    public init() {}
}

/// The `host:` section: the read-only tools the host answers itself from the neuron's own
/// readings, assets and alerts (`HostTool`), and whether MCP clients may read and subscribe to
/// them as resources. Nothing is offered unless listed: a neuron written before this section
/// existed exposes no more than it did.
public struct HostAccess: Sendable, Codable, Equatable {
    public var tools: [HostTool] = []
    public var resources = false

    /// Whether serving the neuron reads its observation store.
    public var readsObservations: Bool { !tools.isEmpty || resources }

    public init(tools: [HostTool] = [], resources: Bool = false) {
        self.tools = tools
        self.resources = resources
    }
}

public struct Memory: Sendable, Codable, Equatable {
    /// Messages of the conversation kept in the model's context (the system prompt is always kept).
    public var keepMessages = 40

    public init() {}
}
