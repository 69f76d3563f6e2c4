import CBraneSystem
import Dispatch
import Glibc
import Synchronization
import SystemPackage

/// How an instance's process comes to be: forked by its plugin's zygote, else spawned.
///
/// A zygote is the runner in `--zygote` mode (Sources/brane-sandbox/zygote.c), spawned once per
/// plugin with the instance's own environment, so a Swift plugin's runtime is loaded and relocated
/// there once and its pages are shared by every instance. It clones each instance with
/// CLONE_PARENT: the child is the host's own, tracked by a pidfd and reaped here exactly as a
/// spawned runner, and it starts where an exec'd runner starts (its socket on fd 3 and nothing
/// else, a session of its own, a fresh stack canary) and applies its instance's whole sandbox
/// itself. A plugin started more than once also keeps one spare: a child forked ahead, which has
/// entered its namespaces (the slowest step) and waits for its SETUP frame like any instance.
/// A zygote serves one plugin only, so no plugin learns another's address layout, and one whose
/// instance died is retired with its spare, so a plugin cannot probe the layout by crashing
/// instances. Any failure of the zygote path falls back to a spawn: the fork is a speed-up, never
/// a different sandbox.
public enum InstanceLauncher {
    /// A started runner, the host's end of its socket (the runner's fd 3), and whether it is a spare.
    struct Launched {
        var process: ChildProcess
        var socket: FileDescriptor
        var fromSpare = false
    }

    /// Starts the runner for `plan`, taking its zygote's spare when it has one and `spare` allows.
    static func launch(_ plan: SandboxPlan, runner: String, spare: Bool = true) throws(Errno) -> Launched {
        if plan.settings.zygote, let launched = zygotes.launch(plan, runner: runner, spare: spare) { return launched }
        let pair = try makeSocketPair()
        defer { try? pair.plugin.close() }   // only the instance may hold its end: its death must read as end-of-file at once
        do {
            return Launched(process: try spawn(executable: runner, arguments: [String(getpid())], environment: plan.runnerEnvironment,
                                               inherit: [pair.plugin]),
                            socket: pair.host)
        } catch {
            try? pair.host.close()
            throw error
        }
    }

    /// After an instance of `plan` started: a plugin started twice is likely to start again (a
    /// restart, another neuron's instance, a bench), so its zygote forks the next one's spare now,
    /// off the critical path of both starts.
    static func started(_ plan: SandboxPlan) { if plan.settings.zygote { zygotes.prepareSpare(plan) } }

    /// Ends the zygote of `plan`'s plugin and its spare, if it has them: its next instance forks
    /// from a fresh zygote, with a layout of its own.
    static func retire(_ plan: SandboxPlan) { zygotes.retire(plan) }

    /// Ends every zygote and spare (each is killed and reaped), so a host that stops leaves no child.
    public static func endZygotes() { zygotes.retireAll() }

    /// The zygotes and spares alive now (of `plan`'s plugin only, with one): children of the host
    /// that run no plugin code.
    public static func zygotePIDs(of plan: SandboxPlan? = nil) -> Set<Int32> { zygotes.pids(of: plan) }

    private static let zygotes = ZygotePool()
}

/// One plugin's zygote: its process and the host's end of its control socket.
final class Zygote: @unchecked Sendable {
    /// How long a zygote may take to answer one fork request.
    static let answerDeadline = Duration.seconds(2)
    let runner: String
    let environment: [String]
    let process: ChildProcess
    private let control: FileDescriptor

    init(runner: String, environment: [String]) throws(Errno) {
        self.runner = runner
        self.environment = environment
        var fds: [Int32] = [0, 0]
        try syscallResult { socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
        control = FileDescriptor(rawValue: fds[0])
        let theirs = FileDescriptor(rawValue: fds[1])
        defer { try? theirs.close() }
        do {
            process = try spawn(executable: runner, arguments: ["--zygote", String(getpid())], environment: environment, inherit: [theirs])
        } catch {
            try? control.close()
            throw error
        }
    }

    /// Forks one instance; nil when the zygote failed to. `prepareNetwork` makes a spare: the
    /// child enters its namespaces (an empty network namespace too, when true) before its SETUP.
    /// A zygote that fails once is ended, never asked again: an answer that came late would
    /// otherwise be read as the next request's, pairing one child's pid with another's socket.
    func fork(prepareNetwork: Bool? = nil) -> InstanceLauncher.Launched? {
        guard let pair = try? makeSocketPair() else { return nil }
        defer { try? pair.plugin.close() }
        var request = UInt8(prepareNetwork.map { BRANE_ZYGOTE_PREPARE | ($0 ? BRANE_ZYGOTE_PREPARE_NETWORK : 0) } ?? BRANE_ZYGOTE_FORK)
        guard brane_send_with_descriptor(control.rawValue, &request, 1, pair.plugin.rawValue) == 1, let child = answer() else {
            try? pair.host.close()
            return nil
        }
        return InstanceLauncher.Launched(process: child, socket: pair.host, fromSpare: prepareNetwork != nil)
    }

    private func answer() -> ChildProcess? {
        var descriptor = pollfd(fd: control.rawValue, events: Int16(POLLIN), revents: 0)
        let deadline = ContinuousClock.now + Self.answerDeadline
        while true {
            let ready = poll(&descriptor, 1, deadline.pollTimeout)
            if ready > 0 { break }
            if ready == 0 || errno != EINTR { return nil }
        }
        var pid: Int32 = 0, pidfd: Int32 = -1
        let received = brane_receive_with_descriptor(control.rawValue, &pid, 4, &pidfd)
        guard received == 4, pid > 0, pidfd >= 0 else {
            if pidfd >= 0 { close(pidfd) }
            return nil
        }
        return ChildProcess(pid: pid, pidfd: FileDescriptor(rawValue: pidfd))
    }

    deinit {
        try? control.close()
        process.kill()
    }
}

/// The zygotes of this host, one per plugin library, at most `limit` (the least recently used
/// ends first), each with at most one spare. A zygote that cannot fork when new means this kernel
/// cannot: the host then spawns.
private final class ZygotePool: Sendable {
    static let limit = 32
    private final class Entry: @unchecked Sendable {
        let plugin: String
        let library: String
        let zygote: Zygote
        var launches = 0
        /// Forked ahead, with its namespaces entered for this network isolation.
        var spare: (launched: InstanceLauncher.Launched, isolatesNetwork: Bool)?

        init(_ plan: SandboxPlan, zygote: Zygote) {
            plugin = plan.bundle.manifest.id
            library = plan.bundle.libraryPath
            self.zygote = zygote
        }

        func serves(_ plan: SandboxPlan) -> Bool { plugin == plan.bundle.manifest.id && library == plan.bundle.libraryPath }

        deinit { try? spare?.launched.socket.close() }   // the spare's process is killed and reaped by its own deinit

        /// The spare, if it still waits and was prepared as `plan` needs; a stale one is ended.
        func takeSpare(for plan: SandboxPlan) -> InstanceLauncher.Launched? {
            guard let spare else { return nil }
            self.spare = nil
            guard spare.isolatesNetwork == plan.isolateNetwork, spare.launched.process.poll() == nil else {
                try? spare.launched.socket.close()
                return nil
            }
            return spare.launched
        }
    }
    private struct State {
        var entries: [Entry] = []
        var unavailable = false
    }
    private let state = Mutex(State())
    private let spares = DispatchQueue(label: "brane-zygote-spares")

    func launch(_ plan: SandboxPlan, runner: String, spare useSpare: Bool) -> InstanceLauncher.Launched? {
        state.withLock { state -> InstanceLauncher.Launched? in
            guard !state.unavailable else { return nil }
            var entry = state.entries.firstIndex { $0.serves(plan) }.map { state.entries.remove(at: $0) }
            if let current = entry, current.zygote.runner != runner || current.zygote.environment != plan.runnerEnvironment { entry = nil }
            let fresh = entry == nil
            if fresh { entry = (try? Zygote(runner: runner, environment: plan.runnerEnvironment)).map { Entry(plan, zygote: $0) } }
            guard let entry else {
                state.unavailable = true
                return nil
            }
            guard let launched = (useSpare ? entry.takeSpare(for: plan) : nil) ?? entry.zygote.fork() else {
                if fresh { state.unavailable = true }
                return nil   // the entry is not put back: its zygote ends with it
            }
            entry.launches += 1
            state.entries.append(entry)
            if state.entries.count > Self.limit { state.entries.removeFirst() }
            return launched
        }
    }

    func prepareSpare(_ plan: SandboxPlan) {
        spares.async { [self] in
            let failed = state.withLock { state -> Entry? in
                guard let index = state.entries.firstIndex(where: { $0.serves(plan) }), state.entries[index].launches >= 2,
                      state.entries[index].spare == nil else { return nil }
                let entry = state.entries[index]
                guard let spare = entry.zygote.fork(prepareNetwork: plan.isolateNetwork) else { return state.entries.remove(at: index) }
                entry.spare = (spare, plan.isolateNetwork)
                return nil
            }
            withExtendedLifetime(failed) {}   // a zygote that failed an answer is ended (outside the lock)
        }
    }

    func pids(of plan: SandboxPlan?) -> Set<Int32> {
        state.withLock { state in
            Set(state.entries.filter { plan.map($0.serves) ?? true }.flatMap { [$0.zygote.process.pid] + ($0.spare.map { [$0.launched.process.pid] } ?? []) })
        }
    }

    func retire(_ plan: SandboxPlan) { retire { $0.serves(plan) } }
    func retireAll() { retire { _ in true } }

    private func retire(where matches: (Entry) -> Bool) {
        // Ended outside the lock: deinits kill and reap.
        let retired = state.withLock { state in
            defer { state.entries.removeAll(where: matches) }
            return state.entries.filter(matches)
        }
        withExtendedLifetime(retired) {}
    }
}
