/// Decides whether a reading differs enough from the last stored one to be stored: a metric
/// that moved by at least its threshold, or any state that changed. Threshold names may end in
/// or contain `*` (`mount.*.usedPercent`), matching any run of characters.
public struct ChangeDetector: Sendable {
    public var thresholds: [String: Double]

    /// The host's defaults (CPU 5 points, memory 5 points, storage 1 point, network 10
    /// connections), under the manifest's, under the neuron's or the caller's.
    public static let defaults: [String: Double] = [
        "cpu.percent": 5, "memory.usedPercent": 5, "mount.*.usedPercent": 1, "tcp.connections": 10,
    ]

    public init(_ thresholds: [String: Double]...) {
        self.thresholds = thresholds.reduce(Self.defaults) { $0.merging($1) { _, new in new } }
    }

    /// What changed between `previous` (the last stored reading) and `current`; empty when nothing did.
    public func changes(from previous: SensorReading?, to current: SensorReading) -> [String] {
        guard let previous else { return ["first"] }
        var changed: [String] = []
        for (name, value) in current.metrics.sorted(by: { $0.key < $1.key }) {
            guard let threshold = threshold(for: name) else { continue }
            guard let before = previous.metrics[name] else { changed.append(name); continue }
            if abs(value - before) >= threshold { changed.append(name) }
        }
        for name in Set(current.states.keys).union(previous.states.keys).sorted() where current.states[name] != previous.states[name] {
            changed.append(name)
        }
        return changed
    }

    /// The threshold for a metric: an exact name first, then the first matching pattern; nil means untracked.
    func threshold(for name: String) -> Double? {
        if let exact = thresholds[name] { return exact }
        return thresholds.keys.sorted().first { $0.contains("*") && Self.matches(name, pattern: $0) }.flatMap { thresholds[$0] }
    }

    static func matches(_ name: String, pattern: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false)
        guard name.hasPrefix(parts.first!), name.hasSuffix(parts.last!), name.count >= parts.first!.count + parts.last!.count else { return false }
        var rest = name.dropFirst(parts.first!.count).dropLast(parts.last!.count)
        for middle in parts.dropFirst().dropLast() where !middle.isEmpty {
            guard let found = rest.range(of: middle) else { return false }
            rest = rest[found.upperBound...]
        }
        return true
    }
}
