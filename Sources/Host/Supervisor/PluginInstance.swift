import Glibc
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
    /// How long start-up may take (spawn, sandbox, dlopen, init), on top of the call timeout.
    static let startupTimeout = Duration.seconds(10)

    public enum CallOutcome: Sendable, Equatable {
        case result([UInt8])
        /// The plugin answered BRANE_ERROR with this payload (its error JSON).
        case pluginError([UInt8])

        /// The message of an error answer: its `message` field, or the payload as sent.
        public static func errorMessage(_ bytes: [UInt8]) -> String {
            (try? JSONValue(parsing: bytes))?["message"]?.stringValue ?? String(decoding: bytes, as: UTF8.self)
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
        let pair = try makeSocketPair()
        channel = FrameChannel(socket: pair.host, limit: plan.bundle.manifest.resources.maxOutputBytes)
        do {
            process = try spawn(executable: runner, arguments: [String(getpid())],
                                environment: ["SWIFT_BACKTRACE=enable=no"], inherit: [pair.plugin])
        } catch {
            try? pair.plugin.close()
            throw error
        }
        // Only the plugin may hold its end: its death must read as end-of-file here at once.
        try? pair.plugin.close()
        let deadline = ContinuousClock.now + Self.startupTimeout
        let id = plan.bundle.manifest.id
        var readyReport: ReadyReport?
        do {
            let program = try SeccompCompiler.compile(plan.profile, options: .init(selfPID: process.pid, declared: plan.declared))
            try channel.send(Frame(type: .setup, payload: plan.setupPayload(seccompProgram: program)), deadline: deadline)
            let frame = try Self.receive(channel, deadline: deadline, id: id, onLog: onLog)
            switch frame.type {
            case .ready: readyReport = try ReadyReport(payload: frame.payload)
            case .failed:
                let failure = try SetupFailure(payload: frame.payload)
                throw PluginDeath(pluginID: id, pid: process.pid, cause: .setupFailed(failure), termination: process.wait())
            default: throw ChannelError.frame(.malformed(frame.type, "expected READY"))
            }
        } catch let death as PluginDeath {
            throw death
        } catch let error as ChannelError {
            throw Self.classify(error, process: process, id: id, timeoutMilliseconds: Int(Self.startupTimeout.components.seconds * 1000))
        }
        ready = readyReport!
    }

    /// One call. Throws `PluginDeath` when the instance died or was killed during it.
    public func call(method: String, input: [UInt8]) throws(PluginDeath) -> CallOutcome {
        if let death { throw death }
        let timeout = plan.callTimeoutMilliseconds
        let deadline = ContinuousClock.now + .milliseconds(timeout)
        let requestID = nextRequestID
        nextRequestID &+= 1
        do {
            try channel.send(Frame(type: .call, requestID: requestID, payload: callPayload(method: method, input: input)), deadline: deadline)
            var frame = try Self.receive(channel, deadline: deadline, id: plan.bundle.manifest.id, onLog: onLog)
            // A specialist may consult others before it answers; each consult is answered in turn.
            while frame.type == .consult && frame.requestID == requestID {
                let reply = try answerConsult(frame)
                try channel.send(reply, deadline: deadline)
                frame = try Self.receive(channel, deadline: deadline, id: plan.bundle.manifest.id, onLog: onLog)
            }
            guard frame.requestID == requestID, frame.type == .result || frame.type == .error else {
                throw ChannelError.frame(.malformed(frame.type, "unexpected reply to request \(requestID)"))
            }
            return frame.type == .result ? .result(frame.payload) : .pluginError(frame.payload)
        } catch let error as ChannelError {
            let death = Self.classify(error, process: process, id: plan.bundle.manifest.id, timeoutMilliseconds: timeout)
            self.death = death
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

    /// Asks the plugin to shut down, then kills it if it has not exited within `grace`.
    public func stop(grace: Duration = .milliseconds(500)) {
        guard death == nil else { return }
        try? channel.send(Frame(type: .shutdown), deadline: .now + grace)
        let deadline = ContinuousClock.now + grace
        while process.poll() == nil && ContinuousClock.now < deadline {
            var descriptor = pollfd(fd: process.pidfd.rawValue, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 10)
        }
        process.kill()
    }

    /// Reads frames until one that is not a log line; log lines go to the handler.
    private static func receive(_ channel: FrameChannel, deadline: ContinuousClock.Instant, id: String,
                                onLog: (String, PluginLogLine) -> Void) throws(ChannelError) -> Frame {
        while true {
            let frame = try channel.receive(deadline: deadline)
            guard frame.type == .log else { return frame }
            do { onLog(id, try PluginLogLine(payload: frame.payload)) } catch { throw .frame(error) }
        }
    }

    /// Turns a channel failure into the instance's death: kill it if it still runs, reap it,
    /// and name the cause — the host's own reason if the host killed it, the kernel's otherwise.
    private static func classify(_ error: ChannelError, process: ChildProcess, id: String, timeoutMilliseconds: Int) -> PluginDeath {
        let hostReason: DeathCause?
        switch error {
        case .timedOut: hostReason = .callTimeout(milliseconds: timeoutMilliseconds)
        case .frame(let frameError): hostReason = .protocolViolation(frameError.description)
        case .system(let errno): hostReason = .protocolViolation("socket error: \(errno)")
        case .closed: hostReason = nil
        }
        if let hostReason {
            return PluginDeath(pluginID: id, pid: process.pid, cause: hostReason, termination: process.kill())
        }
        // End of file: the process is exiting or has closed its socket. Give it a moment to
        // finish dying so the kernel's reason (SIGSYS, SIGSEGV, …) is what gets reported.
        let deadline = ContinuousClock.now + .milliseconds(200)
        while ContinuousClock.now < deadline {
            if let termination = process.poll() {
                return PluginDeath(pluginID: id, pid: process.pid, cause: DeathCause(termination: termination), termination: termination)
            }
            var descriptor = pollfd(fd: process.pidfd.rawValue, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 20)
        }
        return PluginDeath(pluginID: id, pid: process.pid, cause: .closedSocket, termination: process.kill())
    }

    deinit { if death == nil { process.kill() } }
}
