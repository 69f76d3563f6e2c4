import Foundation

/// Stops sending to an endpoint that keeps failing: after `threshold` failures in a row it is
/// skipped for `cooldown` seconds (requests go to the fallback at once instead of waiting on a
/// dead server), then tried again; one success closes it.
final class CircuitBreaker: @unchecked Sendable {
    let threshold: Int
    let cooldown: TimeInterval
    private let lock = NSLock()
    private var failures = 0
    private var openedAt: Date?

    init(threshold: Int = 3, cooldown: TimeInterval = 30) {
        self.threshold = threshold
        self.cooldown = cooldown
    }

    /// Nil when the endpoint may be tried now; otherwise why it is skipped.
    func skipReason(now: Date = Date()) -> String? {
        lock.withLock {
            guard let openedAt, now.timeIntervalSince(openedAt) < cooldown else { return nil }
            let left = Int((cooldown - now.timeIntervalSince(openedAt)).rounded(.up))
            return "it failed \(failures) times in a row; retried in \(left) s"
        }
    }

    func succeeded() { lock.withLock { (failures, openedAt) = (0, nil) } }

    func failed(now: Date = Date()) {
        lock.withLock {
            failures += 1
            if failures >= threshold { openedAt = now }
        }
    }
}
