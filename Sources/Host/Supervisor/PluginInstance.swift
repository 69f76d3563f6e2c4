import CBraneSystem
import Glibc
import Synchronization
import SystemPackage

/// One sandboxed plugin process: spawned, sandboxed, initialised, and called one request at
/// a time. Any failure ends the instance (killed and reaped) and is reported as a `PluginDeath`;
/// a plugin's own error reply is not a failure and leaves it serving.
public final class PluginInstance: @unchecked Sendable {
    public let plan: SandboxPlan
    public let ready: ReadyReport
    public var pid: Int32 { process.pid }
    public private(set) var death: PluginDeath?
    private let process: ChildProcess
    private let channel: FrameChannel
    private var nextRequestID: UInt32 = 1
    private let onLog: @Sendable (String, PluginLogLine) -> Void
    private let consultant: Consultant?
    private let interrupted = Atomic(false)
    /// How long start-up may take (spawn, sandbox, dlopen, init), on top of the call timeout.
    static let startupTimeout = Duration.seconds(10)

    public enum CallOutcome: Sendable, Equatable {
        case result([UInt8])
        /// The plugin answered BRANE_ERROR with this payload (its error JSON).
        case pluginError([UInt8])

        /// The message of an error answer: its `message` field, or the payload as sent.
        public static func errorMessage(_ bytes: [UInt8]) -> String {
            UntrustedText.sanitized((try? JSONValue(parsing: bytes))?["message"]?.stringValue ?? String(decoding: bytes, as: UTF8.self),
                                    limit: 4096)
        }

        /// An error answer `{"message": …}` made by the host (a refused consult, for one).
        public static func refusal(_ message: String) -> Self {
            .pluginError(Array(JSONValue.object(["message": .string(message)]).serialized().utf8))
        }
    }

    /// Answers a specialist's consult of another specialist; see `SpecialistRouter`.
    public typealias Consultant = @Sendable (_ caller: Manifest, _ request: ConsultRequest) -> CallOutcome

    public init(plan: SandboxPlan, runner: String, onLog: @escaping @Sendable (String, PluginLogLine) -> Void = { _, _ in },
                consultant: Consultant? = nil) throws {
        self.plan = plan
        self.onLog = onLog
        self.consultant = consultant
        try plan.checkStrength()
        var launched = try InstanceLauncher.launch(plan, runner: runner)
        // A spare sandboxed ahead for this plan (the pool hands one out only for a plan it serves)
        // is started on the channel it was sandboxed on, with only its plugin left to load.
        var channel = launched.sandboxedAhead?.channel ?? FrameChannel(socket: launched.socket, limit: plan.bundle.manifest.resources.maxOutputBytes)
        var sandboxed = false
        var outcome = Result { try Self.start(plan: plan, process: launched.process, channel: channel, ahead: launched.sandboxedAhead?.applied,
                                              deadline: .now + Self.startupTimeout, sandboxed: &sandboxed, onLog: onLog) }
        // A spare that failed before it could run plugin code (killed or stalled while it waited,
        // or prepared for other namespaces) says nothing of the plugin: the start is made again
        // without one, with a deadline of its own, and only that one's outcome counts.
        if case .failure = outcome, launched.fromSpare, !sandboxed {
            launched.process.kill()
            launched = try InstanceLauncher.launch(plan, runner: runner, spare: false)
            channel = FrameChannel(socket: launched.socket, limit: plan.bundle.manifest.resources.maxOutputBytes)
            outcome = Result { try Self.start(plan: plan, process: launched.process, channel: channel, ahead: nil, deadline: .now + Self.startupTimeout,
                                              sandboxed: &sandboxed, onLog: onLog) }
        }
        process = launched.process
        self.channel = channel
        do {
            ready = try outcome.get()
            InstanceLauncher.started(plan)
        } catch {
            // Whatever ended the start (a crash, a refused check, init's error), the next instance forks from a fresh zygote.
            InstanceLauncher.retire(plan)
            let death: PluginDeath = switch error {
            case let death as PluginDeath: death
            case let error as ChannelError:
                Self.classify(error, process: process, channel: channel, plan: plan,
                              timeoutMilliseconds: Int(Self.startupTimeout.components.seconds * 1000))
            default: PluginDeath(pluginID: plan.bundle.manifest.id, pid: process.pid,
                                 cause: .protocolViolation("\(error)"), termination: process.kill())
            }
            SandboxEvents.report(.death(death, neuron: plan.neuron))
            throw death
        }
    }

    /// SETUP and FILTERED (unless `ahead`: a spare's sandbox, applied ahead), then LISTENING,
    /// LOADING and READY — each step bounded by `deadline`; a FAILED frame ends the instance at
    /// once, even if the process keeps running. `sandboxed` turns true once a failure can no longer
    /// be a runner's that ran no plugin code: at FILTERED for a runner that applies its sandbox
    /// now; for a spare sandboxed ahead, which may have been killed or stopped while it waited,
    /// only at LOADING. After that, any end (a crash, a kill, a refused check) is the plugin's.
    private static func start(plan: SandboxPlan, process: ChildProcess, channel: FrameChannel, ahead: Sandboxed?, deadline: ContinuousClock.Instant,
                              sandboxed: inout Bool, onLog: (String, PluginLogLine) -> Void) throws -> ReadyReport {
        var budget = LogBudget()
        defer { budget.reportDropped(plan.bundle.manifest.id, onLog) }
        let applied: Sandboxed
        if let ahead {
            // Granted again: files the plugin may write can have been made since the spare was sandboxed.
            if let identity = plan.identity(runnerPID: process.pid) { plan.grantWritePaths(gid: identity.gid) }
            applied = ahead
        } else {
            applied = try sandbox(plan: plan, process: process, channel: channel, deadline: deadline, sandboxed: &sandboxed, budget: &budget, onLog: onLog)
        }
        var loading = false
        defer { if ahead != nil { sandboxed = loading } }
        return try load(plan: plan, process: process, channel: channel, applied: applied, deadline: deadline, loading: &loading,
                        budget: &budget, onLog: onLog)
    }

    /// What the host holds once an instance's sandbox is on, before its plugin is loaded.
    struct Sandboxed {
        var report: FilteredReport
        /// The filters counted at FILTERED, before plugin code could run.
        var loadFilters: Int?
        /// The SETUP payload sent: a spare sandboxed ahead serves only a plan that would send the same.
        var setup: [UInt8]
    }

    /// The SETUP payload `plan` sends to the runner whose pid is `pid` (its seccomp program and identity depend on it).
    static func setupPayload(_ plan: SandboxPlan, pid: Int32) throws -> [UInt8] {
        let program = try SeccompCompiler.program(plan.profile, options: .init(selfPID: pid, declared: plan.declared))
        return plan.setupPayload(seccompProgram: program, serveProgram: try servePhaseProgram.get(), identity: plan.identity(runnerPID: pid))
    }

    /// SETUP, then FILTERED: the runner applies the whole sandbox and reports it, and the host
    /// takes its seccomp listener and checks what was applied. No plugin code has run.
    private static func sandbox(plan: SandboxPlan, process: ChildProcess, channel: FrameChannel, deadline: ContinuousClock.Instant,
                                sandboxed: inout Bool, budget: inout LogBudget, onLog: (String, PluginLogLine) -> Void) throws -> Sandboxed {
        let id = plan.bundle.manifest.id
        if let identity = plan.identity(runnerPID: process.pid) { plan.grantWritePaths(gid: identity.gid) }
        let setup = try setupPayload(plan, pid: process.pid)
        try channel.send(Frame(type: .setup, payload: setup), deadline: deadline)
        let frame = try receive(channel, deadline: deadline, id: id, budget: &budget, onLog: onLog)
        switch frame.type {
        case .filtered:
            sandboxed = true
            let report = try FilteredReport(payload: frame.payload)
            let listener = brane_pidfd_getfd(process.pidfd.rawValue, report.listenerFD)
            guard listener >= 0 else {
                // Gone since it sent FILTERED (killed): a death, not a kernel without seccomp.
                if errno == ESRCH { throw ChannelError.closed }
                throw failure(plan, process, .seccomp, errno, "the host could not take the seccomp listener (pidfd_getfd)")
            }
            channel.listener = FileDescriptor(rawValue: listener)
            if plan.bundle.manifest.tier != .sensitive { channel.brokered = BrokeredStreams(pid: process.pid) }
            if let missing = plan.missingProtections(report.applied, pid: process.pid) {
                guard plan.settings.allowWeaker else { throw failure(plan, process, missing.step, 0, missing.text) }
                SandboxEvents.report(.weakerStart(pluginID: id, neuron: plan.neuron,
                                                  shortfalls: [.init(missing: missing.text, meaning: "the runner could not apply it")],
                                                  source: plan.settings.optOutSource ?? SandboxSettings.optOutName))
            }
            // Counted now, before plugin code runs: the load filter and any the runner inherited
            // (the host's own, or a wrapper's named by BRANE_SANDBOX_RUNNER).
            return Sandboxed(report: report, loadFilters: seccompFilterCount(pid: process.pid), setup: setup)
        case .failed:
            throw PluginDeath(pluginID: id, pid: process.pid, cause: .setupFailed(try SetupFailure(payload: frame.payload)), termination: process.kill())
        default:
            throw ChannelError.frame(.malformed(frame.type, "expected FILTERED"))
        }
    }

    /// LISTENING, LOADING, then READY: the runner loads and initialises the plugin, and the host
    /// checks what it says it is and that the serve-phase filter, and nothing else, was added.
    /// `loading` turns true at LOADING, which the runner sends at once, before it loads the plugin:
    /// from then on plugin code may have run. A runner that does not within 2 s (a spare killed or
    /// stopped while it waited) ran none.
    private static func load(plan: SandboxPlan, process: ChildProcess, channel: FrameChannel, applied: Sandboxed, deadline: ContinuousClock.Instant,
                             loading: inout Bool, budget: inout LogBudget, onLog: (String, PluginLogLine) -> Void) throws -> ReadyReport {
        try channel.send(Frame(type: .listening), deadline: deadline)
        let acknowledged = try receive(channel, deadline: min(deadline, .now + InstanceLauncher.sandboxAheadTimeout), id: plan.bundle.manifest.id,
                                       budget: &budget, onLog: onLog)
        guard acknowledged.type == .loading else { throw ChannelError.frame(.malformed(acknowledged.type, "expected LOADING")) }
        loading = true
        let frame = try receive(channel, deadline: deadline, id: plan.bundle.manifest.id, budget: &budget, onLog: onLog)
        switch frame.type {
        case .ready:
            let ready = try ReadyReport(payload: frame.payload)
            if let lie = plan.descriptorMismatch(ready) { throw failure(plan, process, .identity, 0, lie) }
            // Plugin code has run: READY could be forged. The kernel's count says whether the serve
            // filter is on and nothing else was added (a filter of the plugin's own could hide its calls).
            let filters = seccompFilterCount(pid: process.pid)
            guard let loadFilters = applied.loadFilters, filters == loadFilters + 1 else {
                // The plugin's doing, not the kernel's: reported as its start-up failing.
                throw failure(plan, process, .initialize, 0, "the instance has \(filters.map(String.init) ?? "an unknown number of") seccomp filters, "
                    + "expected one more than before its code ran: it skipped the serve phase or installed its own")
            }
            return ready
        case .failed:
            var failure = try SetupFailure(payload: frame.payload)
            // Once the listener is handed over, every sandbox step is done: a FAILED naming one is the plugin's forgery.
            if failure.step.isSandboxStep && failure.step != .servePhase {
                failure = SetupFailure(step: .initialize, errno: 0, message: "the plugin sent a FAILED frame for \(failure.step), a step already done: \(failure.message)")
            }
            throw PluginDeath(pluginID: plan.bundle.manifest.id, pid: process.pid, cause: .setupFailed(failure), termination: process.kill())
        default:
            throw ChannelError.frame(.malformed(frame.type, "expected READY"))
        }
    }

    /// A spare's sandbox applied ahead, for `plan`: the channel as `sandbox` left it, which owns the
    /// spare's socket from here on (closed with it), or nil when any step failed (the socket is then
    /// closed, and the caller ends the spare). Nothing is reported: no plugin code ran, and the
    /// start that uses the spare reports its own outcome.
    static func sandboxAhead(_ plan: SandboxPlan, _ launched: InstanceLauncher.Launched) -> InstanceLauncher.SandboxedAhead? {
        let files = InstanceLauncher.SandboxedAhead.files(of: plan)
        let channel = FrameChannel(socket: launched.socket, limit: plan.bundle.manifest.resources.maxOutputBytes)
        var budget = LogBudget()
        var sandboxed = false
        guard let applied = try? sandbox(plan: plan, process: launched.process, channel: channel, deadline: .now + InstanceLauncher.sandboxAheadTimeout,
                                         sandboxed: &sandboxed, budget: &budget, onLog: { _, _ in }) else { return nil }
        return InstanceLauncher.SandboxedAhead(channel: channel, applied: applied, outputLimit: plan.bundle.manifest.resources.maxOutputBytes, files: files)
    }

    /// A start-up step the host itself refused: the instance is killed and the step named.
    private static func failure(_ plan: SandboxPlan, _ process: ChildProcess, _ step: SetupStep, _ error: Int32, _ message: String) -> PluginDeath {
        PluginDeath(pluginID: plan.bundle.manifest.id, pid: process.pid,
                    cause: .setupFailed(SetupFailure(step: step, errno: error, message: message)), termination: process.kill())
    }

    /// The serve-phase filter is the same for every plugin: compiled once.
    private static let servePhaseProgram = Result { try SeccompCompiler.compileServePhase() }

    /// One call. Throws `PluginDeath` when the instance died or was killed during it.
    public func call(method: String, input: [UInt8]) throws(PluginDeath) -> CallOutcome {
        if let death { throw death }
        // Larger than the runner takes: the caller's mistake, answered here — not sent, so the
        // plugin does not die of it and its circuit breaker does not count it.
        if let problem = plan.callInputProblem(method: method, input: input) { return .refusal(problem) }
        let timeout = plan.callTimeoutMilliseconds
        let deadline = ContinuousClock.now + .milliseconds(timeout)
        let requestID = nextRequestID
        nextRequestID &+= 1
        var budget = LogBudget()
        defer { budget.reportDropped(plan.bundle.manifest.id, onLog) }
        channel.brokered?.startCall()
        do {
            try channel.send(Frame(type: .call, requestID: requestID, payload: callPayload(method: method, input: input)), deadline: deadline)
            var frame = try Self.receive(channel, deadline: deadline, id: plan.bundle.manifest.id, budget: &budget, onLog: onLog)
            // Before it answers, a plugin may consult specialists and ask for connections; each is answered in turn.
            var connections = 0
            while frame.requestID == requestID && (frame.type == .consult || frame.type == .connect) {
                if frame.type == .consult {
                    try channel.send(try answerConsult(frame), deadline: deadline)
                } else {
                    connections += 1
                    try answerConnect(frame, number: connections, deadline: deadline)
                }
                frame = try Self.receive(channel, deadline: deadline, id: plan.bundle.manifest.id, budget: &budget, onLog: onLog)
            }
            guard frame.requestID == requestID, frame.type == .result || frame.type == .error else {
                throw ChannelError.frame(.malformed(frame.type, "unexpected reply to request \(requestID)"))
            }
            return frame.type == .result ? .result(frame.payload) : .pluginError(frame.payload)
        } catch let error as ChannelError {
            if wasInterrupted {
                death = PluginDeath(pluginID: plan.bundle.manifest.id, pid: process.pid, cause: .cancelled, termination: process.kill())
                throw death!
            }
            let death = Self.classify(error, process: process, channel: channel, plan: plan, timeoutMilliseconds: timeout)
            self.death = death
            SandboxEvents.report(.death(death, neuron: plan.neuron))
            throw death
        } catch {
            fatalError("unreachable: \(error)")
        }
    }

    private func answerConsult(_ frame: Frame) throws(ChannelError) -> Frame {
        let request: ConsultRequest
        do { request = try ConsultRequest(payload: frame.payload) } catch { throw .frame(error) }
        let outcome = consultant?(plan.bundle.manifest, request) ?? .refusal("this host does not route consults")
        switch outcome {
        case .result(let bytes): return Frame(type: .consultResult, requestID: frame.requestID, payload: bytes)
        case .pluginError(let bytes): return Frame(type: .consultError, requestID: frame.requestID, payload: bytes)
        }
    }

    /// A connection the host opens for the plugin (ABI 1.2), passed over with SCM_RIGHTS; reported
    /// either way — up to `ConnectionBroker.requestsPerCall` in one call, so a loop cannot flood the audit log.
    private func answerConnect(_ frame: Frame, number: Int, deadline: ContinuousClock.Instant) throws(ChannelError) {
        let request: ConnectRequest
        do { request = try ConnectRequest(payload: frame.payload) } catch { throw .frame(error) }
        let limit = ConnectionBroker.requestsPerCall
        let (stream, attempt) = number <= limit ? ConnectionBroker.open(request, for: plan.bundle.manifest, identity: plan.identity(runnerPID: process.pid), deadline: deadline)
            : (nil, .init(destination: request.destination, addresses: [], outcome: .refused(
                "a call may ask for at most \(limit) connections; the rest are refused, and only the first refusal is recorded")))
        if number <= limit + 1 { SandboxEvents.report(.connection(attempt, pluginID: plan.bundle.manifest.id, neuron: plan.neuron)) }
        guard let stream else {
            let reason = switch attempt.outcome {
            case .connected: ""
            case .refused(let why), .failed(let why): why
            }
            let message = UntrustedText.sanitized("\(attempt.destination): \(reason)", limit: 2048)
            return try channel.send(Frame(type: .connectError, requestID: frame.requestID, payload: Array(message.utf8)), deadline: deadline)
        }
        defer { try? stream.close() }
        channel.brokered?.record(stream)
        try channel.send(Frame(type: .connected, requestID: frame.requestID), passing: stream, deadline: deadline)
    }

    /// Kills the instance from any thread, to stop the call it serves (`CallCancellation`). The
    /// pidfd still names this process after it is reaped, so the signal can never reach another.
    func interrupt() {
        interrupted.store(true, ordering: .sequentiallyConsistent)
        _ = brane_pidfd_send_signal(process.pidfd.rawValue, SIGKILL)
    }

    /// True once `interrupt` was called: the instance is dead or about to be, whatever its last call returned.
    var wasInterrupted: Bool { interrupted.load(ordering: .sequentiallyConsistent) }

    /// Asks the plugin to shut down, then kills it if it has not exited within `grace`.
    public func stop(grace: Duration = .milliseconds(500)) {
        // A thread blocked in a forbidden call while the instance sat idle is still a violation.
        guard death == nil, !endedByPendingViolation() else { return }
        try? channel.send(Frame(type: .shutdown), deadline: .now + grace)
        let deadline = ContinuousClock.now + grace
        while process.poll() == nil && ContinuousClock.now < deadline {
            // A forbidden call in shutdown (or a thread) is stopped and reported, not waited out.
            if endedByPendingViolation() { return }
            var descriptors = [pollfd(fd: process.pidfd.rawValue, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: channel.listener?.rawValue ?? -1, events: Int16(POLLIN), revents: 0)]
            _ = poll(&descriptors, 2, 10)
        }
        process.kill()
    }

    /// Kills and reports the instance when a forbidden call waits on its listener.
    private func endedByPendingViolation() -> Bool {
        guard let event = channel.pendingForbiddenCall() else { return false }
        let death = Self.classify(.forbidden(event), process: process, channel: channel, plan: plan, timeoutMilliseconds: 0)
        self.death = death
        SandboxEvents.report(.death(death, neuron: plan.neuron))
        return true
    }

    /// Reads frames until one that is not a log line; log lines go to the handler, within `budget`.
    private static func receive(_ channel: FrameChannel, deadline: ContinuousClock.Instant, id: String, budget: inout LogBudget,
                                onLog: (String, PluginLogLine) -> Void) throws(ChannelError) -> Frame {
        while true {
            let frame = try channel.receive(deadline: deadline)
            guard frame.type == .log else { return frame }
            guard budget.admit(frame.payload.count) else { continue }
            do { onLog(id, try PluginLogLine(payload: frame.payload)) } catch { throw .frame(error) }
        }
    }

    /// Turns a channel failure into the instance's death: kill it if it still runs, reap it,
    /// and name the cause — the forbidden call the listener saw, the host's own reason if the
    /// host killed it, the kernel's otherwise.
    private static func classify(_ error: ChannelError, process: ChildProcess, channel: FrameChannel, plan: SandboxPlan,
                                 timeoutMilliseconds: Int) -> PluginDeath {
        let id = plan.bundle.manifest.id
        // Whatever killed it, its next instance forks from a zygote with a fresh address layout.
        InstanceLauncher.retire(plan)
        let hostReason: DeathCause?
        switch error {
        case .forbidden(let event):
            // Decoded before the kill: string arguments are read from the blocked process's memory.
            hostReason = .sandboxViolation(ForbiddenCall(event, tier: plan.bundle.manifest.tier.rawValue))
        case .timedOut: hostReason = .callTimeout(milliseconds: timeoutMilliseconds)
        case .frame(let frameError): hostReason = .protocolViolation(frameError.description)
        case .system(let errno): hostReason = .protocolViolation("socket error: \(errno)")
        case .closed: hostReason = channel.pendingForbiddenCall().map { .sandboxViolation(ForbiddenCall($0, tier: plan.bundle.manifest.tier.rawValue)) }
        }
        if let hostReason {
            return PluginDeath(pluginID: id, pid: process.pid, cause: hostReason, termination: process.kill())
        }
        // End of file: the process is exiting or has closed its socket. Give it a moment to
        // finish dying so the kernel's reason (SIGSEGV, the CPU limit, …) is what gets reported.
        let deadline = ContinuousClock.now + .milliseconds(200)
        while ContinuousClock.now < deadline {
            if let termination = process.poll() {
                let cause = DeathCause(termination: termination, cpuTime: process.cpuTime, cpuLimitSeconds: plan.rlimits.cpuSeconds)
                return PluginDeath(pluginID: id, pid: process.pid, cause: cause, termination: termination)
            }
            var descriptor = pollfd(fd: process.pidfd.rawValue, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 20)
        }
        return PluginDeath(pluginID: id, pid: process.pid, cause: .closedSocket, termination: process.kill())
    }

    deinit { if death == nil { process.kill() } }
}

/// The number of seccomp filters on a process (`Seccomp_filters:\t<n>` in /proc/PID/status), read
/// as bytes: it is on the critical path of every start.
private func seccompFilterCount(pid: pid_t) -> Int? {
    guard let status = readRegularFile("/proc/\(pid)/status", limit: 16 << 10) else { return nil }
    let key = Array("\nSeccomp_filters:\t".utf8)
    guard let start = status.indices.first(where: { status[$0...].starts(with: key) }) else { return nil }
    let digits = status[(start + key.count)...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    return digits.isEmpty || digits.count > 6 ? nil : digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
}

/// How much a plugin may log in one call (or its start-up): lines past the budget are counted,
/// not kept, so a log flood costs the host a counter, not memory.
struct LogBudget {
    static let lines = 256
    static let bytes = 256 << 10
    private var admittedLines = 0, admittedBytes = 0
    private(set) var dropped = 0

    mutating func admit(_ size: Int) -> Bool {
        guard admittedLines < Self.lines, admittedBytes + min(size, PluginLogLine.messageLimit) <= Self.bytes else {
            dropped += 1
            return false
        }
        admittedLines += 1
        admittedBytes += min(size, PluginLogLine.messageLimit)
        return true
    }

    func reportDropped(_ id: String, _ onLog: (String, PluginLogLine) -> Void) {
        if dropped > 0 {
            onLog(id, PluginLogLine(hostNote: "\(dropped) log lines dropped: a call may log at most \(Self.lines) lines or \(Self.bytes >> 10) KiB"))
        }
    }
}
