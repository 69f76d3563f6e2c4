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
/// itself. A plugin started more than once also keeps two spares: children forked ahead, which
/// have entered their namespaces (the slowest step) and wait for their SETUP frame like any
/// instance; two, so that in a burst of starts the one taken has had a start's time to get ready.
/// A zygote serves one plugin only, so no plugin learns another's address layout, and one whose
/// instance died is retired with its spares, so a plugin cannot probe the layout by crashing
/// instances. Any failure of the zygote path falls back to a spawn: the fork is a speed-up, never
/// a different sandbox.
public enum InstanceLauncher {
    /// A started runner, the host's end of its socket (the runner's fd 3), and whether it is a spare.
    struct Launched {
        var process: ChildProcess
        var socket: FileDescriptor
        var fromSpare = false
        /// A spare's sandbox, applied ahead for the plan of the start that prepared it.
        var sandboxedAhead: SandboxedAhead?
    }

    /// A spare that has applied its whole sandbox and waits for LISTENING, its plugin not loaded:
    /// what a start would do up to FILTERED, done while the host was idle.
    struct SandboxedAhead {
        let channel: FrameChannel
        let applied: PluginInstance.Sandboxed
        let outputLimit: Int
        /// Each Landlock path's file, taken before the runner opened it: a rule holds the file, not
        /// its path, so a path replaced since (a plugin reinstalled in place) would be closed to the
        /// spare. The path itself and what it leads to, so a link put in its place is seen too
        /// (the runner refuses links in declared entries).
        let files: [FileIdentity?]

        /// Whether `plan` would have sent this spare (pid `pid`) the very SETUP it applied — same
        /// filters, Landlock rules, limits, identity and plugin — reads its frames with the same
        /// bound, and finds every Landlock path still the file it was.
        func serves(_ plan: SandboxPlan, pid: Int32) -> Bool {
            outputLimit == plan.bundle.manifest.resources.maxOutputBytes && Self.files(of: plan) == files
                && (try? PluginInstance.setupPayload(plan, pid: pid)) == applied.setup
        }

        struct FileIdentity: Equatable { var device: UInt64, inode: UInt64, target: UInt64, targetInode: UInt64 }

        static func files(of plan: SandboxPlan) -> [FileIdentity?] {
            plan.landlock.paths.map { rule in
                var path = stat(), target = stat()
                guard lstat(rule.path, &path) == 0, stat(rule.path, &target) == 0 else { return nil }
                return FileIdentity(device: UInt64(path.st_dev), inode: UInt64(path.st_ino), target: UInt64(target.st_dev), targetInode: UInt64(target.st_ino))
            }
        }
    }

    /// How long a spare may take to apply its sandbox ahead; past it, it is ended.
    static let sandboxAheadTimeout = Duration.seconds(2)

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
    /// restart, another neuron's instance, a bench), so its zygote forks spares for the next ones
    /// now, off the critical path of both starts.
    static func started(_ plan: SandboxPlan) { if plan.settings.zygote { zygotes.prepareSpare(plan) } }

    /// Ends the zygote of `plan`'s plugin and its spares, if it has them: its next instance forks
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
    /// The runner file as it was when this zygote was spawned (device, inode, size, change time).
    private let runnerFile: [Int]?

    init(runner: String, environment: [String]) throws(Errno) {
        self.runner = runner
        self.environment = environment
        runnerFile = Self.identity(of: runner)
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

    /// Whether this zygote runs `runner` as it is on disk now, with `environment`: a runner replaced
    /// since (an upgrade, a sandbox fix) gets a new zygote, as a spawn would run the new file.
    func runs(_ runner: String, environment: [String]) -> Bool {
        runner == self.runner && environment == self.environment && runnerFile != nil && Self.identity(of: runner) == runnerFile
    }

    private static func identity(of path: String) -> [Int]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), info.st_ctim.tv_sec, info.st_ctim.tv_nsec]
    }

    /// Forks one instance; nil when the zygote failed to. `prepareNetwork` makes a spare: the
    /// child enters its namespaces (an empty network namespace too, when true) before its SETUP.
    /// One that failed is not asked again (`ZygotePool.Entry.failed`).
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
/// ends first), each with at most `spareCount` spares. A zygote that cannot fork when new means this kernel
/// cannot: the host then spawns. The pool's lock guards only the list; each zygote's own lock
/// serialises its requests, so a zygote that stalls delays its own plugin's starts, never another's.
private final class ZygotePool: Sendable {
    static let limit = 32
    static let spareCount = 2
    private final class Entry: @unchecked Sendable {
        let plugin: String
        let library: String
        let zygote: Zygote
        /// Guards everything below; held while the zygote is asked, one request at a time.
        let lock = Mutex(())
        var launches = 0
        /// Forked ahead, oldest first, each with its namespaces entered for this network isolation
        /// and, unless the development opt-out is set, its sandbox applied for the plan that prepared it.
        var spares: [(launched: InstanceLauncher.Launched, isolatesNetwork: Bool)] = []
        /// Spares taken out to be sandboxed ahead, outside the lock; the spares thread reaps any it
        /// does not put back before it takes it off this list.
        var preparing: [ChildProcess] = []
        /// The zygote failed an answer, or was retired: it is never asked again (a late answer
        /// would be read as the next request's, pairing one child's pid with another's socket).
        var failed = false

        init(_ plan: SandboxPlan, zygote: Zygote) {
            plugin = plan.bundle.manifest.id
            library = plan.bundle.libraryPath
            self.zygote = zygote
        }

        func serves(_ plan: SandboxPlan) -> Bool { plugin == plan.bundle.manifest.id && library == plan.bundle.libraryPath }

        deinit { endSpares() }

        /// A spare for `plan`: one sandboxed ahead for it if there is one, else the oldest that
        /// still waits for its SETUP. Spares that died, entered other namespaces or were sandboxed
        /// for another plan (or for files since replaced) are ended: the next ones are prepared
        /// for this plan once it has started. Under `lock`.
        func takeSpare(for plan: SandboxPlan) -> InstanceLauncher.Launched? {
            spares.removeAll { spare in
                let usable = spare.isolatesNetwork == plan.isolateNetwork && spare.launched.process.poll() == nil
                    && spare.launched.sandboxedAhead.map { $0.serves(plan, pid: spare.launched.process.pid) } ?? true
                if !usable { Self.end(spare.launched) }
                return !usable
            }
            guard let index = spares.firstIndex(where: { $0.launched.sandboxedAhead != nil }) ?? spares.indices.first else { return nil }
            return spares.remove(at: index).launched
        }

        /// The oldest spare still waiting for its SETUP in these namespaces, taken out to be sandboxed ahead. Under `lock`.
        func claimUnsandboxedSpare(isolatesNetwork: Bool) -> InstanceLauncher.Launched? {
            guard !failed, let index = spares.firstIndex(where: { $0.launched.sandboxedAhead == nil && $0.isolatesNetwork == isolatesNetwork }) else {
                return nil
            }
            let spare = spares.remove(at: index).launched
            preparing.append(spare.process)
            return spare
        }

        /// Kills and reaps every spare. Under `lock` (or in deinit).
        func endSpares() {
            spares.forEach { Self.end($0.launched) }
            spares = []
        }

        static func end(_ spare: InstanceLauncher.Launched) {
            // A spare sandboxed ahead gave its socket to its channel, which closes it (and the
            // listener) when it goes: closing it here as well could close a reused descriptor.
            if spare.sandboxedAhead == nil { try? spare.socket.close() }
            spare.process.kill()
        }

        /// Asks the zygote for a child (a spare, with `prepareNetwork`); a failed answer marks it failed. Under `lock`.
        func fork(prepareNetwork: Bool? = nil) -> InstanceLauncher.Launched? {
            guard !failed else { return nil }
            let child = zygote.fork(prepareNetwork: prepareNetwork)
            failed = child == nil
            return child
        }
    }
    private struct State {
        var entries: [Entry] = []
        var unavailable = false
    }
    private let state = Mutex(State())
    private let spares = DispatchQueue(label: "brane-zygote-spares")

    func launch(_ plan: SandboxPlan, runner: String, spare useSpare: Bool) -> InstanceLauncher.Launched? {
        let found = state.withLock { state -> (entry: Entry, fresh: Bool)? in
            guard !state.unavailable else { return nil }
            if let index = state.entries.firstIndex(where: { $0.serves(plan) }) {
                let entry = state.entries[index]
                // The same runner file (an upgrade on disk takes effect at the next start) with the same environment.
                if entry.zygote.runs(runner, environment: plan.runnerEnvironment) { return (entry, false) }
                state.entries.remove(at: index)
            }
            guard let zygote = try? Zygote(runner: runner, environment: plan.runnerEnvironment) else {
                state.unavailable = true
                return nil
            }
            let entry = Entry(plan, zygote: zygote)
            state.entries.append(entry)
            if state.entries.count > Self.limit { state.entries.removeFirst() }
            return (entry, true)
        }
        guard let (entry, fresh) = found else { return nil }
        let launched = entry.lock.withLock { _ -> InstanceLauncher.Launched? in
            guard let launched = (useSpare ? entry.takeSpare(for: plan) : nil) ?? entry.fork() else { return nil }
            entry.launches += 1
            return launched
        }
        state.withLock { state in
            guard let index = state.entries.firstIndex(where: { $0 === entry }) else { return }
            state.entries.remove(at: index)
            if launched != nil { state.entries.append(entry) } else if fresh { state.unavailable = true }
        }
        return launched
    }

    /// Forks spares up to `spareCount`, each one a start can take as soon as it has entered its
    /// namespaces, then applies each one's sandbox for `plan` ahead, taken out of the list while it
    /// does (outside the zygote's lock: a spare that stalls delays no start, and is ended at its
    /// deadline). With the development opt-out spares wait for their SETUP, so each weaker start is reported.
    func prepareSpare(_ plan: SandboxPlan) {
        spares.async { [self] in
            guard let entry = state.withLock({ $0.entries.first { $0.serves(plan) } }) else { return }
            let failed = entry.lock.withLock { _ -> Bool in
                while entry.launches >= 2, entry.spares.count + entry.preparing.count < Self.spareCount, !entry.failed,
                      let spare = entry.fork(prepareNetwork: plan.isolateNetwork) {
                    entry.spares.append((spare, plan.isolateNetwork))
                }
                return entry.failed
            }
            if failed { state.withLock { $0.entries.removeAll { $0 === entry } } }
            guard !failed, !plan.settings.allowWeaker else { return }
            while var spare = entry.lock.withLock({ _ in entry.claimUnsandboxedSpare(isolatesNetwork: plan.isolateNetwork) }) {
                spare.sandboxedAhead = PluginInstance.sandboxAhead(plan, spare)
                let kept = entry.lock.withLock { _ -> Bool in
                    defer { entry.preparing.removeAll { $0 === spare.process } }
                    guard spare.sandboxedAhead != nil, !entry.failed else {
                        // Reaped before it leaves the list, so a retire that waits for it finds nothing left.
                        // Its socket is its channel's either way, closed with it.
                        spare.process.kill()
                        return false
                    }
                    entry.spares.append((spare, plan.isolateNetwork))
                    return true
                }
                guard kept else { return }
            }
        }
    }

    func pids(of plan: SandboxPlan?) -> Set<Int32> {
        let entries = state.withLock { state in state.entries.filter { plan.map($0.serves) ?? true } }
        return Set(entries.flatMap { entry in
            [entry.zygote.process.pid] + entry.lock.withLock { _ in entry.spares.map(\.launched.process.pid) }
        })
    }

    func retire(_ plan: SandboxPlan) { retire { $0.serves(plan) } }
    func retireAll() { retire { _ in true } }

    private func retire(where matches: (Entry) -> Bool) {
        let retired = state.withLock { state in
            defer { state.entries.removeAll(where: matches) }
            return state.entries.filter(matches)
        }
        // Outside the pool's lock: a request in flight (a spare being forked) is waited for, so
        // nothing of a retired zygote outlives this call; deinits kill and reap.
        for entry in retired {
            entry.lock.withLock { _ in
                entry.failed = true
                entry.endSpares()
                // A spare being sandboxed ahead is the spares thread's to reap: killed here, waited for below.
                for process in entry.preparing { _ = brane_pidfd_send_signal(process.pidfd.rawValue, SIGKILL) }
            }
            let deadline = ContinuousClock.now + InstanceLauncher.sandboxAheadTimeout + .seconds(1)
            while entry.lock.withLock({ _ in !entry.preparing.isEmpty }) && ContinuousClock.now < deadline { usleep(200) }
        }
        withExtendedLifetime(retired) {}
    }
}
