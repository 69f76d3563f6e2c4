import CBraneSystem
import Glibc

/// Why a plugin instance ended, named the way an operator needs to read it.
public enum DeathCause: Sendable, Equatable, CustomStringConvertible {
    /// The seccomp filter stopped a forbidden call and the host killed the instance; the call
    /// never ran. Known only from the host's listener, so a plugin cannot forge it.
    case sandboxViolation(ForbiddenCall)
    /// SIGXCPU at the soft CPU limit, or SIGKILL at the hard one — told apart from a signal the
    /// plugin raised itself by the CPU time it had really used.
    case cpuLimit
    /// SIGSYS or SIGXCPU that neither the sandbox nor a limit sent: the plugin raised it itself.
    case signaledItself(signal: Int32)
    /// SIGXFSZ: wrote past its maxFileSize.
    case fileSizeLimit
    /// The host killed it: a call ran past the manifest's callTimeout.
    case callTimeout(milliseconds: Int)
    /// The host killed it: it broke the frame protocol (oversized, unknown or malformed frame).
    case protocolViolation(String)
    /// It closed its socket without exiting; the host killed it.
    case closedSocket
    /// It crashed (SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGTRAP, SIGFPE, …).
    case crashed(signal: Int32)
    /// A signal from outside: SIGKILL not sent by the host is most often the OOM killer.
    case killed(signal: Int32)
    /// A setup step failed before the plugin served (sandbox step, dlopen, ABI, init).
    case setupFailed(SetupFailure)
    /// It exited on its own.
    case exited(code: Int32)
    /// The caller cancelled the call it was serving; the host killed it (`CallCancellation`).
    case cancelled

    /// The call the sandbox stopped, when that is how the instance ended.
    public var forbiddenCall: ForbiddenCall? {
        if case .sandboxViolation(let call) = self { call } else { nil }
    }

    public var description: String {
        switch self {
        case .sandboxViolation(let call): "sandbox violation: \(call) is not allowed at tier \(call.tier); the call did not run and the host killed the plugin"
        case .cpuLimit: "CPU time limit reached"
        case .fileSizeLimit: "file size limit reached (SIGXFSZ)"
        case .callTimeout(let ms): "call timed out after \(ms) ms; killed by the host"
        case .protocolViolation(let why): "protocol violation (\(why)); killed by the host"
        case .closedSocket: "closed its socket; killed by the host"
        case .crashed(let signal): "crashed with \(signalName(signal))"
        case .killed(let signal): "killed by \(signalName(signal)) from outside the host (the OOM killer?)"
        case .signaledItself(let signal): "killed by \(signalName(signal)) that the sandbox did not send (the plugin raised it itself)"
        case .setupFailed(let failure): "failed while \(failure)"
        case .exited(let code): "exited with status \(code)"
        case .cancelled: "stopped by the host: its call was cancelled"
        }
    }

    /// Classifies an ending the host did not cause itself. Forbidden calls never end this way
    /// (the host kills those, having seen them); the CPU limit is believed only when the CPU
    /// time the kernel accounted reached it.
    init(termination: Termination, cpuTime: Duration?, cpuLimitSeconds: UInt64) {
        let limit = Duration.seconds(Int64(clamping: cpuLimitSeconds))
        let reached = { (bound: Duration) in (cpuTime ?? .zero) >= bound - .milliseconds(50) }
        switch termination {
        case .signaled(SIGSYS, _): self = .signaledItself(signal: SIGSYS)
        case .signaled(SIGXCPU, _): self = reached(limit) ? .cpuLimit : .signaledItself(signal: SIGXCPU)
        case .signaled(SIGXFSZ, _): self = .fileSizeLimit
        case .signaled(SIGKILL, _): self = reached(limit + .seconds(1)) ? .cpuLimit : .killed(signal: SIGKILL)
        case .signaled(let signal, _) where [SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGTRAP, SIGFPE].contains(signal):
            self = .crashed(signal: signal)
        case .signaled(let signal, _): self = .killed(signal: signal)
        case .exited(let code): self = .exited(code: code)
        }
    }
}

/// A dead plugin instance: which plugin, why, and how the kernel reported it.
public struct PluginDeath: Error, Sendable, Equatable, CustomStringConvertible {
    public var pluginID: String
    public var pid: Int32
    public var cause: DeathCause
    public var termination: Termination

    public var description: String { "plugin \(pluginID) (pid \(pid)): \(cause) [\(termination)]" }
}
