import CBraneSystem
import Glibc
import SystemPackage

/// A child process held through a pidfd, so signalling and waiting can never hit a
/// recycled pid. Reaping is idempotent; `deinit` kills and reaps, so no zombie outlives it.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    let pidfd: FileDescriptor
    private var termination: Termination?
    /// The user + system CPU time the kernel accounted to it, known once it is reaped.
    public private(set) var cpuTime: Duration?

    init(pid: pid_t) throws(Errno) {
        // Safe against pid reuse: an unreaped child's pid cannot be recycled.
        let fd = try syscallResult { brane_pidfd_open(pid) }
        self.pid = pid
        self.pidfd = FileDescriptor(rawValue: fd)
    }

    /// A child whose pidfd came with it (one a zygote cloned with CLONE_PARENT).
    init(pid: pid_t, pidfd: FileDescriptor) {
        self.pid = pid
        self.pidfd = pidfd
    }

    /// Sends a signal through the pidfd; a no-op once the child has been reaped.
    public func signal(_ signal: Int32) {
        guard termination == nil else { return }
        _ = brane_pidfd_send_signal(pidfd.rawValue, signal)
    }

    /// Reaps the child, blocking until it exits.
    @discardableResult
    public func wait() -> Termination {
        if let termination { return termination }
        return reap(options: WEXITED)!
    }

    /// Reaps the child if it has exited; nil while it runs.
    public func poll() -> Termination? {
        termination ?? reap(options: WEXITED | WNOHANG)
    }

    /// SIGKILL then reap: the end of every instance the host gives up on.
    @discardableResult
    public func kill() -> Termination {
        signal(SIGKILL)
        return wait()
    }

    private func reap(options: Int32) -> Termination? {
        var code: Int32 = 0, status: Int32 = 0
        var cpuMicroseconds: UInt64 = 0
        guard brane_wait_pidfd(pidfd.rawValue, options, &code, &status, &cpuMicroseconds) == 0, code != 0 else { return nil }
        cpuTime = .microseconds(Int64(clamping: cpuMicroseconds))
        let result: Termination = switch code {
        case Int32(CLD_EXITED): .exited(code: status)
        default: .signaled(signal: status, coreDumped: code == Int32(CLD_DUMPED))
        }
        termination = result
        return result
    }

    deinit {
        if termination == nil { kill() }
        try? pidfd.close()
    }
}
