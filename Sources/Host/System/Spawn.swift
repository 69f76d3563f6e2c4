import CBraneSystem
import Foundation
import Glibc
import SystemPackage

/// posix_spawn with the hygiene a sandbox needs from its first instruction: an explicit
/// environment, fds 0-2 on /dev/null, `inherit` mapped to fds 3…, every other fd closed,
/// a new session (no controlling terminal: TIOCSTI cannot reach the user's shell) and a
/// reset signal mask and dispositions. Never fork without exec from the threaded host.
func spawn(executable: String, arguments: [String], environment: [String], inherit: [FileDescriptor])
    throws(Errno) -> ChildProcess
{
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for target in Int32(0)...2 {
        posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    for (index, fd) in inherit.enumerated() {
        posix_spawn_file_actions_adddup2(&actions, fd.rawValue, 3 + Int32(index))
    }
    brane_spawn_add_closefrom(&actions, 3 + Int32(inherit.count))

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t(), allSignals = sigset_t()
    sigemptyset(&noSignals)
    sigfillset(&allSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &allSignals)
    let flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | Int32(brane_spawn_flag_setsid())
    posix_spawnattr_setflags(&attributes, Int16(flags))

    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    let (rc, pid) = SpawnThread.shared.perform {
        var pid: pid_t = 0
        return (posix_spawn(&pid, executable, &actions, &attributes, argv, envp), pid)
    }
    guard rc == 0 else { throw Errno(rawValue: rc) }
    do {
        return try ChildProcess(pid: pid)
    } catch {
        Glibc.kill(pid, SIGKILL)
        waitpid(pid, nil, 0)
        throw error
    }
}

/// The runner sets PR_SET_PDEATHSIG so plugins die with the host, but the kernel sends it when
/// the *thread* that spawned the child exits, not the process. Hosts call from short-lived
/// threads (Dispatch workers reaped after a few idle seconds, tasks), which killed idle
/// instances; so every spawn happens on this one thread, which lives as long as the process.
private final class SpawnThread: @unchecked Sendable {
    static let shared = SpawnThread()
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []

    private init() {
        let thread = Thread { [self] in
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                condition.unlock()
                job()
            }
        }
        thread.name = "brane-spawn"
        thread.start()
    }

    /// Runs `body` on the spawn thread and waits for its result.
    func perform<T>(_ body: @escaping () -> T) -> T {
        let result = ResultBox<T>(), done = DispatchSemaphore(value: 0)
        condition.lock()
        jobs.append {
            result.value = body()
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        return result.value!
    }
}

private final class ResultBox<T>: @unchecked Sendable { var value: T? }
