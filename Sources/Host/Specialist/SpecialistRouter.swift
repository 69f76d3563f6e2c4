import Foundation

/// Runs specialists and routes their consults of each other (specialist → host → specialist).
/// A consult is allowed only when the caller's manifest lists the target under
/// `specialist.consults`, the target is a specialist, data may flow both ways between their
/// tiers (`DataFlow`), and the target is not already answering in the same chain (a cycle
/// would wait on itself).
public final class SpecialistRouter: @unchecked Sendable {
    private let locator: PluginLocator
    private let runner: String
    private let onLog: @Sendable (String, PluginLogLine) -> Void
    private let plan: @Sendable (PluginBundle) throws -> SandboxPlan
    private let window: Window?
    private let lock = NSLock()
    private var plugins: [String: SupervisedPlugin] = [:]
    private static let chainKey = "brane.consultChain"

    /// The events a new instance of a specialist is replayed (its `specialist.window`, oldest first).
    public typealias Window = @Sendable (Manifest) throws -> [[UInt8]]

    /// The neuron whose specialists these are, named in what is reported (a refused consult).
    private let neuron: String?

    /// `plan` builds each specialist's sandbox (a neuron overlays its config and caps call time);
    /// `window`, when given, is replayed into every new instance before its first call, so its
    /// rules start from the state a long-lived instance would have; `neuron` names their neuron.
    public init(locator: PluginLocator, runner: String, onLog: @escaping @Sendable (String, PluginLogLine) -> Void = { _, _ in },
                plan: @escaping @Sendable (PluginBundle) throws -> SandboxPlan = { try SandboxPlan(bundle: $0) },
                window: Window? = nil, neuron: String? = nil) {
        self.neuron = neuron
        self.locator = locator
        self.plan = plan
        self.window = window
        self.runner = runner
        self.onLog = onLog
    }

    /// The supervised specialist `id`, started on first use.
    public func plugin(_ id: String) throws -> SupervisedPlugin {
        try lock.withLock {
            if let plugin = plugins[id] { return plugin }
            let plan = try plan(try locator.bundle(id))
            let plugin = SupervisedPlugin(plan: plan, runner: runner, onLog: onLog,
                                          consultant: { [unowned self] caller, request in consult(caller: caller, request) },
                                          prime: window.map { Self.replaying($0, plan.bundle.manifest) })
            plugins[id] = plugin
            return plugin
        }
    }

    /// Calls `method` on specialist `id`; consults it makes are routed by this router.
    public func call(_ id: String, method: String, input: [UInt8], cancellation: CallCancellation? = nil) throws -> PluginInstance.CallOutcome {
        let plugin = try plugin(id)
        return try inChain(id) { try plugin.call(method: method, input: input, cancellation: cancellation) }
    }

    /// Replays a specialist's window into a new instance. What its rules answered then is stored
    /// already; only the state they rebuild is wanted.
    private static func replaying(_ window: @escaping Window, _ manifest: Manifest) -> SupervisedPlugin.Prime {
        { instance in
            for event in try window(manifest) { _ = try instance.call(method: "specialist/event", input: event) }
        }
    }

    /// The specialists started so far.
    public var running: [SupervisedPlugin] { lock.withLock { Array(plugins.values) } }

    public func stopAll() {
        lock.withLock {
            for plugin in plugins.values { plugin.stop() }
            plugins = [:]
        }
    }

    func consult(caller: Manifest, _ request: ConsultRequest) -> PluginInstance.CallOutcome {
        let target = request.specialistID
        guard caller.specialist?.consults.contains(target) == true else {
            return .refusal("\(caller.id) may not consult \(target): it is not listed under specialist.consults in \(caller.id)'s manifest")
        }
        if Self.chain.contains(target) {
            return .refusal("\(caller.id) may not consult \(target): \(target) is already answering in this consult chain (\(Self.chain.joined(separator: " → ")))")
        }
        let plugin: SupervisedPlugin
        do { plugin = try self.plugin(target) } catch { return .refusal("\(caller.id) cannot consult \(target): \(error)") }
        let manifest = plugin.plan.bundle.manifest
        guard manifest.kind == .specialist else {
            return .refusal("\(caller.id) may not consult \(target): it is a \(manifest.kind.rawValue), not a specialist")
        }
        let from = DataFlow.End(id: caller.id, tier: caller.tier), to = DataFlow.End(id: manifest.id, tier: manifest.tier)
        if let refusal = DataFlow.enforce("the consult input", from: from, to: to, neuron: neuron) ?? DataFlow.enforce("the answer", from: to, to: from, neuron: neuron) {
            return .refusal("consult refused: \(refusal)")
        }
        do {
            return try inChain(target) { try plugin.call(method: "specialist/consult", input: request.input) }
        } catch {
            return .refusal("consulted specialist \(target) failed: \(error)")
        }
    }

    /// Consult chains run on the caller's thread, so the chain is thread-local.
    private static var chain: [String] {
        get { Thread.current.threadDictionary[chainKey] as? [String] ?? [] }
        set { Thread.current.threadDictionary[chainKey] = newValue }
    }

    private func inChain<T>(_ id: String, _ body: () throws -> T) rethrows -> T {
        Self.chain.append(id)
        defer { Self.chain.removeLast() }
        return try body()
    }
}
