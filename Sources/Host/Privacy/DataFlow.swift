/// The one rule about where data may go: from a plugin at one privacy tier to another only
/// when the receiver's tier is the same or lower, so data never gains network reach on the way.
/// Tier-0 output therefore reaches only tier-0 plugins.
public enum DataFlow {
    public struct End: Sendable, CustomStringConvertible {
        public var id: String
        public var tier: PrivacyTier
        public init(id: String, tier: PrivacyTier) {
            self.id = id
            self.tier = tier
        }
        public var description: String { "\(id) (tier \(tier.rawValue))" }
    }

    public static let rule = "data may only flow to a plugin or model endpoint of the same or a lower privacy tier (a local endpoint counts as tier 0, any other as tier 2)"

    /// Why `what` may not pass from `source` to `destination`, naming both ends and the rule; nil when it may.
    public static func refusal(_ what: String, from source: End, to destination: End) -> String? {
        guard destination.tier > source.tier else { return nil }
        return "\(what) of \(source) may not reach \(destination): \(rule)"
    }

    /// `refusal`, at run time: data about to move. A refusal here is also reported
    /// (`SandboxEvent.flowRefused`, which the CLI writes to the audit log): a configuration that
    /// validated tried to move data against the rule.
    static func enforce(_ what: String, from source: End, to destination: End, neuron: String?) -> String? {
        guard let refusal = refusal(what, from: source, to: destination) else { return nil }
        SandboxEvents.report(.flowRefused(destination: destination.id, neuron: neuron, refusal: refusal))
        return refusal
    }
}
