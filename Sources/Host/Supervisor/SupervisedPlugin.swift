import Foundation

/// Keeps one plugin available: starts an instance on demand, replaces it after a death
/// with exponential backoff, and opens a circuit after repeated failures so a broken
/// plugin stops costing spawns. Calls are serialised; one instance serves one call at a time.
public final class SupervisedPlugin: @unchecked Sendable {
    public struct Policy: Sendable {
        /// Delay before the first restart; doubles with each consecutive failure.
        public var initialBackoff: Duration = .milliseconds(100)
        public var maximumBackoff: Duration = .seconds(5)
        /// Consecutive failures that open the circuit.
        public var failureThreshold = 5
        /// How long an open circuit refuses calls before one trial start (half-open).
        public var openDuration: Duration = .seconds(30)

        public init() {}
    }

    public enum CallError: Error, Sendable, CustomStringConvertible {
        /// The instance died during (or while starting for) this call.
        case died(PluginDeath)
        /// Too many consecutive failures; no start is attempted until `retryAfter`.
        case circuitOpen(pluginID: String, retryAfter: Duration, lastDeath: PluginDeath?)
        /// The host could not start the runner at all (missing runner, bad profile, …).
        case hostFailure(String)
        /// The caller cancelled it (`CallCancellation`); no answer is due.
        case cancelled

        public var description: String {
            switch self {
            case .died(let death): "\(death)"
            case .circuitOpen(let id, let retry, let last):
                "plugin \(id) is disabled after repeated failures; retry in \(retry.formatted(.units(allowed: [.seconds, .milliseconds])))"
                    + (last.map { " (last: \($0.cause))" } ?? "")
            case .hostFailure(let why): why
            case .cancelled: "the call was cancelled"
            }
        }
    }

    public let plan: SandboxPlan
    public let policy: Policy
    public private(set) var deaths: [PluginDeath] = []
    private let runner: String
    private let onLog: @Sendable (String, PluginLogLine) -> Void
    private let consultant: PluginInstance.Consultant?
    private let prime: Prime?
    private let lock = NSLock()
    private var instance: PluginInstance?
    private var consecutiveFailures = 0
    private var nextStart: ContinuousClock.Instant = .now
    private var circuitOpenUntil: ContinuousClock.Instant?

    /// Run on every new instance before its first call (a specialist is replayed its window);
    /// a death during it counts as a failed start, any other error is the host's.
    public typealias Prime = @Sendable (PluginInstance) throws -> Void

    public init(plan: SandboxPlan, runner: String, policy: Policy = Policy(),
                onLog: @escaping @Sendable (String, PluginLogLine) -> Void = { _, _ in },
                consultant: PluginInstance.Consultant? = nil, prime: Prime? = nil) {
        self.plan = plan
        self.consultant = consultant
        self.prime = prime
        self.runner = runner
        self.policy = policy
        self.onLog = onLog
    }

    /// The running instance's pid, if one is up.
    public var pid: Int32? { lock.withLock { instance?.pid } }
    public var isCircuitOpen: Bool { lock.withLock { circuitOpenUntil.map { ContinuousClock.now < $0 } ?? false } }

    /// One call; `cancellation` may stop it from another thread (then it throws `.cancelled`).
    public func call(method: String, input: [UInt8], cancellation: CallCancellation? = nil) throws(CallError) -> PluginInstance.CallOutcome {
        lock.lock()
        defer { lock.unlock() }
        if cancellation?.isCancelled == true { throw .cancelled }
        let running = try runningInstance()
        let outcome: PluginInstance.CallOutcome?
        do {
            outcome = if let cancellation {
                try cancellation.during(running) { () throws(PluginDeath) in try running.call(method: method, input: input) }
            } else {
                try running.call(method: method, input: input)
            }
        } catch {
            instance = nil
            if error.cause == .cancelled { throw .cancelled }
            recordFailure(error)
            throw .died(error)
        }
        // Cancelled before it began, or as it answered: the answer is not wanted, and an
        // interrupted instance is dying, so the next call gets a new one.
        guard let outcome, !running.wasInterrupted else {
            if running.wasInterrupted {
                running.stop(grace: .zero)
                instance = nil
            }
            throw .cancelled
        }
        consecutiveFailures = 0
        return outcome
    }

    /// Starts the instance now (to pay the cold start before the first call).
    public func start() throws(CallError) -> ReadyReport {
        lock.lock()
        defer { lock.unlock() }
        return try runningInstance().ready
    }

    public func stop() {
        lock.withLock {
            instance?.stop()
            instance = nil
        }
    }

    private func runningInstance() throws(CallError) -> PluginInstance {
        if let instance { return instance }
        let now = ContinuousClock.now
        if let openUntil = circuitOpenUntil, now < openUntil {
            throw .circuitOpen(pluginID: plan.bundle.manifest.id, retryAfter: openUntil - now, lastDeath: deaths.last)
        }
        // A call arriving during the backoff waits it out (bounded by maximumBackoff).
        if now < nextStart {
            let wait = (nextStart - now).components
            Thread.sleep(forTimeInterval: Double(wait.seconds) + Double(wait.attoseconds) / 1e18)
        }
        do {
            let started = try PluginInstance(plan: plan, runner: runner, onLog: onLog, consultant: consultant)
            do {
                try prime?(started)
            } catch {
                started.stop()
                throw error
            }
            instance = started
            return started
        } catch let death as PluginDeath {
            recordFailure(death)
            // The kernel refused a protection: no restart can help, and it is the host's problem.
            if case .setupFailed(let failure) = death.cause, failure.step.isSandboxStep {
                throw .hostFailure("cannot start \(plan.bundle.manifest.id) with the sandbox its tier requires: \(failure). "
                    + "Run `brane doctor`; for development only, --\(SandboxSettings.optOutName) runs it anyway.")
            }
            throw .died(death)
        } catch {
            throw .hostFailure("\(error)")
        }
    }

    private func recordFailure(_ death: PluginDeath) {
        instance = nil
        deaths.append(death)
        consecutiveFailures += 1
        let permanent = if case .setupFailed(let failure) = death.cause { failure.step.isPermanent } else { false }
        if permanent || consecutiveFailures >= policy.failureThreshold {
            circuitOpenUntil = .now + policy.openDuration
            consecutiveFailures = policy.failureThreshold - 1  // half-open: one more failure reopens it
        } else {
            circuitOpenUntil = nil
        }
        let exponent = min(max(consecutiveFailures - 1, 0), 16)
        nextStart = .now + min(policy.initialBackoff * (1 << exponent), policy.maximumBackoff)
    }

    deinit { instance?.stop() }
}
