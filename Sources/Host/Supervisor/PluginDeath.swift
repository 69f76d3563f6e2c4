import CBraneSystem
import Glibc

/// Why a plugin instance ended, named the way an operator needs to read it.
public enum DeathCause: Sendable, Equatable, CustomStringConvertible {
    /// SIGSYS: the seccomp filter killed it for a forbidden syscall.
    case sandboxViolation
    /// SIGXCPU, or SIGKILL from the kernel at the CPU hard limit.
    case cpuLimit
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

    public var description: String {
        switch self {
        case .sandboxViolation: "sandbox violation: killed by SIGSYS for a forbidden system call"
        case .cpuLimit: "CPU time limit reached"
        case .fileSizeLimit: "file size limit reached (SIGXFSZ)"
        case .callTimeout(let ms): "call timed out after \(ms) ms; killed by the host"
        case .protocolViolation(let why): "protocol violation (\(why)); killed by the host"
        case .closedSocket: "closed its socket; killed by the host"
        case .crashed(let signal): "crashed with \(signalName(signal))"
        case .killed(let signal): "killed by \(signalName(signal)) from outside the host (the OOM killer?)"
        case .setupFailed(let failure): "failed while \(failure)"
        case .exited(let code): "exited with status \(code)"
        }
    }

    /// Classifies an ending the host did not cause itself.
    init(termination: Termination) {
        switch termination {
        case .signaled(SIGSYS, _): self = .sandboxViolation
        case .signaled(SIGXCPU, _): self = .cpuLimit
        case .signaled(SIGXFSZ, _): self = .fileSizeLimit
        case .signaled(SIGKILL, _): self = .killed(signal: SIGKILL)
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
