import Foundation

/// One tool a neuron offers to its model and to MCP clients.
public struct ExposedTool: Sendable {
    public enum Target: Sendable, Equatable {
        /// A tool of a synapse plugin.
        case tool(String)
        /// `consult_<id>`: the whole arguments object is the specialist's request.
        case consult
    }

    public var name: String
    public var description: String
    public var inputSchema: JSONValue
    public var use: PluginUse
    public var tier: PrivacyTier
    public var target: Target

    /// Tool names allow letters, digits, `_` and `-` in every client, so the id's dots become `_`.
    public static func consultName(_ id: String) -> String { "consult_" + id.replacingOccurrences(of: ".", with: "_") }

    public static let consultSchema: JSONValue = .object([
        "type": .string("object"),
        "description": .string("The specialist's request, e.g. {\"readings\": [{\"date\": \"2026-03-01\", \"rmssd\": 52.9, …}]}"),
    ])
}

/// What a tool call produced, as the model and MCP clients see it.
public struct ToolResult: Sendable, Equatable {
    public var isError: Bool
    /// The plugin's JSON answer, or a sentence saying what went wrong.
    public var text: String
    /// The answer as JSON when it is a JSON object.
    public var structured: JSONValue?
    /// The tier of the plugin that produced it: the data now carries this sensitivity.
    public var tier: PrivacyTier

    static func refused(_ message: String, tier: PrivacyTier = .external) -> ToolResult {
        ToolResult(isError: true, text: message, structured: nil, tier: tier)
    }
}

/// Dispatches a neuron's tool calls to sandboxed plugins: checks the tool and its arguments
/// first (the plugin never sees a call that fails them), enforces where data may flow, and turns
/// a crash or timeout into an error result. Blocking; safe to call from many threads at once —
/// each tool plugin has a pool of `pool` instances, specialists one each.
public final class ToolDispatcher: @unchecked Sendable {
    public let neuron: ResolvedNeuron
    public let tools: [ExposedTool]
    private let pools: [String: PluginPool]
    private let specialists: SpecialistRouter
    private let tallyLock = NSLock()
    private var callTally = (calls: 0, errors: 0)

    /// Calls answered so far, and how many of them were errors (refusals, crashes, timeouts).
    public var tally: (calls: Int, errors: Int) { tallyLock.withLock { callTally } }

    public init(neuron: ResolvedNeuron, runner: String, onLog: @escaping @Sendable (String, PluginLogLine) -> Void = { _, _ in }) throws {
        self.neuron = neuron
        tools = neuron.exposedTools
        var pools: [String: PluginPool] = [:]
        for use in neuron.config.tools {
            pools[use.id] = PluginPool(plan: try neuron.plan(for: use), size: use.pool, runner: runner, onLog: onLog)
        }
        self.pools = pools
        // Specialists and the ones they consult: the neuron's own bundles first, then installed ones.
        let explicit = neuron.bundles.mapValues(\.directory)
        specialists = SpecialistRouter(locator: .includingInstalled(explicit: explicit),
                                       runner: runner, onLog: onLog, plan: neuron.plan(for:))
    }

    public func tool(named name: String) -> ExposedTool? { tools.first { $0.name == name } }

    /// Calls tool `name`. `dataTier` is the most sensitive tier of the data the arguments may
    /// carry (a chat's conversation so far); a tool of a higher tier is refused. MCP clients pass
    /// nil: what they send is theirs.
    public func call(_ name: String, arguments: JSONValue, dataTier: PrivacyTier? = nil) -> ToolResult {
        let result = dispatch(name, arguments: arguments, dataTier: dataTier)
        tallyLock.withLock {
            callTally.calls += 1
            if result.isError { callTally.errors += 1 }
        }
        return result
    }

    private func dispatch(_ name: String, arguments: JSONValue, dataTier: PrivacyTier?) -> ToolResult {
        guard let tool = tool(named: name) else {
            let names = tools.map(\.name)
            let hint = closestMatch(to: name, in: names).map { "; did you mean '\($0)'?" } ?? ""
            return .refused("neuron \(neuron.config.id) has no tool '\(name)'\(hint) (it offers: \(names.joined(separator: ", ")))")
        }
        if let dataTier, let refusal = DataFlow.refusal("data", from: .init(id: "the conversation of neuron \(neuron.config.id)", tier: dataTier),
                                                         to: .init(id: tool.use.id, tier: tool.tier)) {
            return .refused("\(name) refused: \(refusal)", tier: dataTier)
        }
        let method: String, input: [UInt8]
        switch tool.target {
        case .tool(let toolName):
            do {
                input = try ToolRequest(manifest: neuron.bundle(tool.use.id).manifest, tool: toolName, arguments: arguments).input
            } catch {
                return .refused("\(error)")
            }
            method = "tools/call"
        case .consult:
            guard case .object = arguments else { return .refused("\(name): the arguments must be a JSON object (the specialist's request)") }
            input = Array(arguments.serialized().utf8)
            method = "specialist/consult"
        }
        do {
            let outcome = switch tool.target {
            case .tool: try pools[tool.use.id]!.call(method: method, input: input)
            case .consult: try specialists.call(tool.use.id, method: method, input: input)
            }
            return Self.result(outcome, tier: tool.tier)
        } catch {
            return ToolResult(isError: true, text: "\(tool.use.id) failed: \(error); the neuron keeps serving", structured: nil, tier: tool.tier)
        }
    }

    static func result(_ outcome: PluginInstance.CallOutcome, tier: PrivacyTier) -> ToolResult {
        switch outcome {
        case .result(let bytes):
            let json = try? JSONValue(parsing: bytes)
            let structured = if case .object? = json { json } else { JSONValue?.none }
            return ToolResult(isError: false, text: String(decoding: bytes, as: UTF8.self), structured: structured, tier: tier)
        case .pluginError(let bytes):
            let message = PluginInstance.CallOutcome.errorMessage(bytes)
            return ToolResult(isError: true, text: message, structured: nil, tier: tier)
        }
    }

    /// Every plugin instance it has (specialists once started), for reports.
    public var plugins: [SupervisedPlugin] { pools.values.flatMap(\.all) + specialists.running }

    public func stop() {
        for pool in pools.values { pool.stop() }
        specialists.stopAll()
    }

    deinit { stop() }
}

/// Up to `size` supervised instances of one plugin; a call takes a free one or waits for one.
final class PluginPool: @unchecked Sendable {
    private let condition = NSCondition()
    private var idle: [SupervisedPlugin]
    let all: [SupervisedPlugin]

    init(plan: SandboxPlan, size: Int, runner: String, onLog: @escaping @Sendable (String, PluginLogLine) -> Void) {
        all = (0..<size).map { _ in SupervisedPlugin(plan: plan, runner: runner, onLog: onLog) }
        idle = all
    }

    func call(method: String, input: [UInt8]) throws -> PluginInstance.CallOutcome {
        condition.lock()
        while idle.isEmpty { condition.wait() }
        let plugin = idle.removeLast()
        condition.unlock()
        defer {
            condition.lock()
            idle.append(plugin)
            condition.signal()
            condition.unlock()
        }
        return try plugin.call(method: method, input: input)
    }

    func stop() { all.forEach { $0.stop() } }
}
