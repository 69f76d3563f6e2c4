import Foundation

/// One tool a neuron offers to its model and to MCP clients.
public struct ExposedTool: Sendable {
    public enum Target: Sendable, Equatable {
        /// A tool of a synapse plugin.
        case tool(String)
        /// `consult_<id>`: the whole arguments object is the specialist's request.
        case consult
        /// Answered by the host from the neuron's observations (`HostObservations`), no plugin involved.
        case host(HostTool)
    }

    public var name: String
    public var description: String
    public var inputSchema: JSONValue
    public var use: PluginUse
    public var tier: PrivacyTier
    public var target: Target

    /// Tool names allow letters, digits, `_` and `-` in every client, so the id's dots become `_`.
    public static func consultName(_ id: String) -> String { "consult_" + id.replacingOccurrences(of: ".", with: "_") }

    /// The tier of what receives its arguments: its plugin's; a host tool's arguments stay in
    /// the host, on this machine, like a tier-0 plugin's.
    public var receivingTier: PrivacyTier {
        if case .host = target { .sensitive } else { tier }
    }

    /// Who answers it, as a refusal names it: the plugin, or the host.
    public var owner: String {
        if case .host = target { "host tool \(name)" } else { use.id }
    }

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
/// first (the plugin never sees a call that fails them, and such a call never waits), enforces
/// where data may flow, and turns a crash or timeout into an error result. Each plugin has its
/// own `CallQueue` — a tool plugin's served by its pool of `pool` instances, a specialist's by
/// one — so calls to one never wait behind another's.
public final class ToolDispatcher: @unchecked Sendable {
    public let neuron: ResolvedNeuron
    public let tools: [ExposedTool]
    private let queues: [String: CallQueue]
    private let specialists: SpecialistRouter
    /// The host tools' answers, and the one queue they are read on (bounded like a plugin's).
    private let observations: HostObservations?
    private let hostQueue = DispatchQueue(label: "brane.host-tools")
    private var hostWaiting = 0
    public static let hostQueueLimit = 256
    private let tallyLock = NSLock()
    private var callTally = (calls: 0, errors: 0)

    /// Calls answered so far, and how many of them were errors (refusals, crashes, timeouts).
    public var tally: (calls: Int, errors: Int) { tallyLock.withLock { callTally } }

    /// `observations` is the store the neuron's host tools read; it is required when its `host:`
    /// section lists any.
    public init(neuron: ResolvedNeuron, runner: String, observations: ObservationStore? = nil,
                onLog: @escaping @Sendable (String, PluginLogLine) -> Void = { _, _ in }) throws {
        self.neuron = neuron
        tools = neuron.exposedTools
        if !neuron.config.host.tools.isEmpty && observations == nil {
            throw HostObservations.Refusal(description: "neuron \(neuron.config.id) lists host tools but no observation store was opened for them")
        }
        self.observations = observations.map { HostObservations(neuron: neuron, store: $0) }
        // Specialists and the ones they consult: the neuron's own bundles first, then installed ones.
        let explicit = neuron.bundles.mapValues(\.directory)
        specialists = SpecialistRouter(locator: .includingInstalled(explicit: explicit),
                                       runner: runner, onLog: onLog, plan: neuron.plan(for:), neuron: neuron.config.id)
        var queues: [String: CallQueue] = [:]
        for use in neuron.config.tools {
            let plan = try neuron.plan(for: use)
            queues[use.id] = CallQueue(pluginID: use.id, instances: (0..<use.pool).map { _ in SupervisedPlugin(plan: plan, runner: runner, onLog: onLog) })
        }
        for tool in tools where tool.target == .consult {
            queues[tool.use.id] = CallQueue(pluginID: tool.use.id, instances: [try specialists.plugin(tool.use.id)])
        }
        self.queues = queues
    }

    public func tool(named name: String) -> ExposedTool? { tools.first { $0.name == name } }

    /// Calls tool `name` and waits for its answer. `dataTier` is the most sensitive tier of the
    /// data the arguments may carry (a chat's conversation so far); a tool of a higher tier is
    /// refused. MCP clients pass nil: what they send is theirs.
    public func call(_ name: String, arguments: JSONValue, dataTier: PrivacyTier? = nil) -> ToolResult {
        let answered = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: ToolResult?
        submit(name, arguments: arguments, dataTier: dataTier) {
            result = $0
            answered.signal()
        }
        answered.wait()
        return result!
    }

    /// Queues a call to tool `name` behind the other calls to its plugin; `finish` gets the answer
    /// exactly once, on another thread or (refused before it queued) on this one. A call
    /// `cancellation` stops is answered "cancelled" and its plugin instance replaced.
    public func submit(_ name: String, arguments: JSONValue, dataTier: PrivacyTier? = nil,
                       cancellation: CallCancellation = CallCancellation(), finish: @escaping @Sendable (ToolResult) -> Void) {
        let counted: @Sendable (ToolResult) -> Void = { [self] result in
            tallyLock.withLock {
                callTally.calls += 1
                if result.isError { callTally.errors += 1 }
            }
            finish(result)
        }
        let call: PreparedCall
        switch prepare(name, arguments: arguments, dataTier: dataTier) {
        case .failure(let refusal): return counted(refusal.result)
        case .success(let prepared): call = prepared
        }
        if case .host(let tool) = call.tool.target { return submitHost(tool, call.arguments, cancellation, counted) }
        let queue = queues[call.tool.use.id]!
        let job = CallQueue.Job(cancellation: cancellation, run: { [specialists] plugin, cancellation in
            do {
                let outcome = call.tool.target == .consult
                    ? try specialists.call(call.tool.use.id, method: call.method, input: call.input, cancellation: cancellation)
                    : try plugin.call(method: call.method, input: call.input, cancellation: cancellation)
                return Self.result(outcome, tier: call.tool.tier)
            } catch SupervisedPlugin.CallError.cancelled {
                return CallQueue.cancelled
            } catch {
                return ToolResult(isError: true, text: "\(call.tool.use.id) failed: \(error); the neuron keeps serving", structured: nil, tier: call.tool.tier)
            }
        }, finish: counted)
        guard queue.submit(job) else {
            return counted(.refused("\(call.tool.use.id) is busy: \(queue.limit) calls are waiting for it; try again later", tier: call.tool.tier))
        }
    }

    /// A host tool's call, read from the store on the host tools' queue: its answer never waits
    /// behind a plugin, and past `hostQueueLimit` waiting calls a new one is refused at once.
    private func submitHost(_ tool: HostTool, _ arguments: JSONValue, _ cancellation: CallCancellation,
                            _ finish: @escaping @Sendable (ToolResult) -> Void) {
        let observations = observations!
        let admitted = tallyLock.withLock { () -> Bool in
            guard hostWaiting < Self.hostQueueLimit else { return false }
            hostWaiting += 1
            return true
        }
        guard admitted else {
            return finish(.refused("the host tools are busy: \(Self.hostQueueLimit) calls are waiting; try again later",
                                   tier: HostObservations.tier(of: tool, in: neuron)))
        }
        hostQueue.async { [self] in
            tallyLock.withLock { hostWaiting -= 1 }
            finish(cancellation.isCancelled ? CallQueue.cancelled : observations.answer(tool, arguments: arguments))
        }
    }

    /// A call that passed every check, ready for its plugin.
    private struct PreparedCall: Sendable {
        var tool: ExposedTool
        var method: String
        var input: [UInt8]
        /// The checked arguments (what a host tool reads).
        var arguments: JSONValue
    }

    private struct Refusal: Error {
        var result: ToolResult
    }

    private func prepare(_ name: String, arguments: JSONValue, dataTier: PrivacyTier?) -> Result<PreparedCall, Refusal> {
        guard let tool = tool(named: name) else {
            let names = tools.map(\.name)
            let hint = closestMatch(to: name, in: names).map { "; did you mean '\($0)'?" } ?? ""
            return .failure(Refusal(result: .refused("neuron \(neuron.config.id) has no tool '\(name)'\(hint) (it offers: \(names.joined(separator: ", ")))")))
        }
        if let dataTier, let refusal = DataFlow.enforce("data", from: .init(id: "the conversation of neuron \(neuron.config.id)", tier: dataTier),
                                                         to: .init(id: tool.owner, tier: tool.receivingTier), neuron: neuron.config.id) {
            return .failure(Refusal(result: .refused("\(name) refused: \(refusal)", tier: dataTier)))
        }
        switch tool.target {
        case .tool(let toolName):
            do {
                let input = try ToolRequest(manifest: neuron.bundle(tool.use.id).manifest, tool: toolName, arguments: arguments).input
                return .success(PreparedCall(tool: tool, method: "tools/call", input: input, arguments: arguments))
            } catch {
                return .failure(Refusal(result: .refused("\(error)")))
            }
        case .consult:
            guard case .object = arguments else {
                return .failure(Refusal(result: .refused("\(name): the arguments must be a JSON object (the specialist's request)")))
            }
            return .success(PreparedCall(tool: tool, method: "specialist/consult", input: Array(arguments.serialized().utf8), arguments: arguments))
        case .host:
            let violations = JSONSchema(tool.inputSchema).violations(of: arguments)
            guard violations.isEmpty else {
                return .failure(Refusal(result: .refused(ToolRequest.Refusal.invalidArguments(tool: name, violations).description, tier: tool.tier)))
            }
            return .success(PreparedCall(tool: tool, method: "", input: [], arguments: arguments))
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
    public var plugins: [SupervisedPlugin] {
        let tools = neuron.config.tools.flatMap { queues[$0.id]?.instances ?? [] }
        return tools + specialists.running
    }

    public func stop() {
        for queue in queues.values { queue.stop() }
        specialists.stopAll()
    }

    deinit { stop() }
}
