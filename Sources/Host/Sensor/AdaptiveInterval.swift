/// How often to sample a sensor: its base interval, stretched while readings stay the same or
/// samples fail, and shortened when something changes.
public struct AdaptiveInterval: Sendable, Equatable {
    public let base: Double
    public private(set) var current: Double
    /// Bounds: half the base (but at least 0.5 s) when changing, 4× when stable, 8× after errors.
    public var fastest: Double { max(0.5, base / 2) }
    public var slowestStable: Double { base * 4 }
    public var slowestFailing: Double { base * 8 }

    public init(base: Double) {
        self.base = base
        current = base
    }

    public mutating func changed() { current = fastest }
    public mutating func stable() { current = min(slowestStable, max(base, current * 1.5)) }
    public mutating func failed() { current = min(slowestFailing, max(base, current * 2)) }
}
