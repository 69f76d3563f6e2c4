import CBraneSystem
import Foundation

/// Cancels one call from another thread (an MCP client's `notifications/cancelled`): before it
/// starts, the call is not made; while it runs, the instance serving it is killed through its
/// pidfd and replaced for the next call, and the death is reported as a cancellation — not
/// counted by the circuit breaker, not audited as a plugin failure.
public final class CallCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    private var serving: PluginInstance?
    private var hooks: [@Sendable () -> Void] = []

    public init() {}

    public var isCancelled: Bool { lock.withLock { cancelled } }

    public func cancel() {
        let hooks = lock.withLock { () -> [@Sendable () -> Void] in
            cancelled = true
            serving?.interrupt()
            defer { self.hooks = [] }
            return self.hooks
        }
        for hook in hooks { hook() }
    }

    /// Runs `hook` when the call is cancelled (at once if it already is): a queue drops the call
    /// it still holds, so a cancelled call frees its place without waiting for a worker.
    func whenCancelled(_ hook: @escaping @Sendable () -> Void) {
        let now = lock.withLock { () -> Bool in
            if !cancelled { hooks.append(hook) }
            return cancelled
        }
        if now { hook() }
    }

    /// Runs `body` as the call on `instance`; false (and `body` not run) when already cancelled.
    func during<T>(_ instance: PluginInstance, _ body: () throws(PluginDeath) -> T) throws(PluginDeath) -> T? {
        let go = lock.withLock { () -> Bool in
            guard !cancelled else { return false }
            serving = instance
            return true
        }
        guard go else { return nil }
        defer { lock.withLock { serving = nil } }
        return try body()
    }
}
