import Foundation

/// What an operator must be able to find later: every plugin death, every start under the
/// development opt-out, every connection a plugin asked for, and every data flow refused at
/// run time. The CLI installs a sink that
/// warns on the terminal and writes the audit log; a library user may install its own.
public enum SandboxEvent: Sendable {
    case death(PluginDeath, neuron: String?)
    case weakerStart(pluginID: String, neuron: String?, shortfalls: [SandboxPlan.Shortfall], source: String)
    case connection(ConnectionBroker.Attempt, pluginID: String, neuron: String?)
    /// Data held back from `destination` (a plugin, a host tool, a model endpoint) by `DataFlow`.
    case flowRefused(destination: String, neuron: String?, refusal: String)
}

public enum SandboxEvents {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var sink: (@Sendable (SandboxEvent) -> Void)?

    public static func install(_ handler: @escaping @Sendable (SandboxEvent) -> Void) {
        lock.withLock { sink = handler }
    }

    static func report(_ event: SandboxEvent) {
        lock.withLock { sink }?(event)
    }
}
