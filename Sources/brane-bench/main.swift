// brane-bench — measures the plugin runtime against baselines taken in the same run.
//
//   swift build -c release && .build/release/brane-bench [--calls N] [--plugins N] [--connects N] [--json]
//   (--egress-only, --marketplace-only, --plugins-only, --feed-only [--rounds N --copies N],
//    --startup-only, --observations-only, --start-only (cold start and memory): one section)
//
// Prints a Markdown report (the one in docs/performance.md), or with --json every figure under a
// stable key (Report.swift). Every figure is a median with its spread; round trips are measured
// twice, with host and plugin pinned to one CPU and unpinned, because on a 2-vCPU VM a
// cross-CPU wake-up dominates IPC.
import BraneHost
import CBraneSystem
import Foundation
import Glibc
import PluginABI

let arguments = CommandLine.arguments
func option(_ name: String, default value: Int) -> Int {
    arguments.firstIndex(of: name).flatMap { Int(arguments[$0 + 1]) } ?? value
}

if arguments.dropFirst().first == "echo" { EchoChild.run() }
if arguments.dropFirst().first == "filter-cost" { FilterCostChild.run() }

/// One section alone, `--<section>-only`; without one, the whole run below.
let sections: [(flag: String, run: () throws -> Void)] = [
    ("--marketplace-only", { try marketplaceBenchmarks() }),
    ("--egress-only", { try egressBenchmarks(connects: option("--connects", default: 5000)) }),
    ("--feed-only", { try feedBenchmarks(rounds: option("--rounds", default: 15), copies: option("--copies", default: 1)) }),
    ("--startup-only", { try startupBenchmarks() }),
    ("--observations-only", { try observationBenchmarks() }),
    ("--start-only", { try startAndMemoryBenchmarks() }),
    ("--plugins-only", { try pluginBenchmarks(events: option("--events", default: 20000), sensorSeconds: option("--sensor-seconds", default: 20)) }),
]

/// Options taking a count, and switches; anything else is refused before minutes of measuring.
let countOptions = ["--calls", "--plugins", "--connects", "--events", "--sensor-seconds", "--rounds", "--copies"]
let switches = ["--json", "--filters-only"] + sections.map(\.flag)
if arguments.contains("--help") || arguments.contains("-h") {
    print("""
        USAGE: brane-bench [--calls N] [--plugins N] [--json] [SECTION]

        Measures Brane against baselines taken in the same run and prints a Markdown report (the one in
        docs/performance.md), or with --json every figure under a stable key with its median and spread.
        Build it with `swift build -c release`; the whole run takes a few minutes on two CPUs.

        SECTION, one of (the whole run without one):
          \(sections.map(\.flag).joined(separator: ", "))

        OPTIONS:
          --calls N            calls per round-trip figure (default 20000)
          --plugins N          plugins started at once for the memory figures (default 100)
          --connects N         brokered connects (--egress-only; default 5000)
          --events N, --sensor-seconds N   (--plugins-only; defaults 20000, 20)
          --rounds N, --copies N           (--feed-only; defaults 15, 1)
          --filters-only       the cost of one syscall under each seccomp filter
          --json               JSON instead of Markdown
        """)
    exit(0)
}
var unread = arguments.dropFirst()[...]
while let argument = unread.popFirst() {
    if countOptions.contains(argument), let count = unread.popFirst(), let value = Int(count), value > 0 { continue }
    if switches.contains(argument) { continue }
    let problem = countOptions.contains(argument) ? "\(argument) needs a positive count" : "unknown argument '\(argument)'"
    FileHandle.standardError.write(Data("brane-bench: \(problem) (see brane-bench --help)\n".utf8))
    exit(64)
}

let calls = option("--calls", default: 20000)
let pluginCount = option("--plugins", default: 100)
let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let cPlugin = repository.appendingPathComponent("Plugins/com.brane.sysinfo").path

/// A tier-0 neuron file for a bench: the header they all share, then `sections` (tools, specialists…).
func benchNeuronYAML(id: String, _ sections: String) -> String {
    """
    apiVersion: brane.dev/v1
    kind: Neuron
    id: \(id)
    name: \(id)
    privacyTier: 0
    model: {provider: ollama, model: m, endpoint: "http://127.0.0.1:11434"}

    """ + sections
}
let swiftPlugin = repository.appendingPathComponent("Plugins/com.brane.units").path
let swiftKitPlugin = repository.appendingPathComponent("Plugins/com.brane.sensor.memory").path  // on JSONValue, not Codable
let hostilePlugin = repository.appendingPathComponent("Tests/Fixtures/Hostile").path  // C plugin with a trivial ping
let runner = try ResourceLocator.current.runner()
let ping = Array("{}".utf8)
if arguments.contains("--filters-only") {
    print(try filterCost())
    exit(0)
}
if let section = sections.first(where: { arguments.contains($0.flag) }) {
    try section.run()
    Report.finish()
    exit(0)
}

func nanoseconds(_ body: () throws -> Void) rethrows -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = (ContinuousClock.now - start).components
    return Double(elapsed.seconds) * 1e9 + Double(elapsed.attoseconds) / 1e9
}

struct Stats {
    var sorted: [Double]
    init(_ samples: [Double]) { sorted = samples.sorted() }
    func quantile(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q))] }
    var median: Double { quantile(0.5) }
    /// "median (p25–p75)" in the unit given.
    func describe(_ scale: Double, _ unit: String, digits: Int = 1) -> String {
        let f = { (v: Double) in String(format: "%.\(digits)f", v / scale) }
        return "\(f(median)) \(unit) (IQR \(f(quantile(0.25)))–\(f(quantile(0.75))))"
    }
}

func pin(_ pid: pid_t, cpu: Int32?) { brane_pin_to_cpu(pid, cpu ?? -1) }

/// Round-trip latencies of `call`, after a warm-up.
func roundTrips(_ count: Int, _ call: () throws -> Void) rethrows -> Stats {
    for _ in 0..<min(1000, count / 10) { try call() }
    var samples = [Double]()
    samples.reserveCapacity(count)
    for _ in 0..<count { samples.append(try nanoseconds(call)) }
    return Stats(samples)
}

/// `zygote: false` spawns each runner (the A/B of the cold-start and memory figures).
func plan(_ directory: String, zygote: Bool = SandboxSettings.current.zygote) throws -> SandboxPlan {
    var settings = SandboxSettings.current
    settings.zygote = zygote
    return try SandboxPlan(bundle: try PluginBundle.open(directory), settings: settings)
}

// (a) In-process call through dlopen, no sandbox: the floor.
func inProcessFloor(library: String) -> Stats {
    let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL)!
    typealias Entry = @convention(c) () -> UnsafeRawPointer
    let entry = unsafeBitCast(dlsym(handle, "brane_plugin_entry")!, to: Entry.self)
    let descriptor = entry().assumingMemoryBound(to: brane_plugin_descriptor.self).pointee
    var host = brane_host_api(struct_size: UInt32(MemoryLayout<brane_host_api>.size), abi_major: 1, abi_minor: UInt16(BRANE_ABI_MINOR),
                              log: { _, _, _ in }, config: { length in length?.pointee = 2; return UnsafePointer(strdup("{}")) }, consult: nil, connect: nil)
    _ = descriptor.`init`(&host)
    return roundTrips(calls) {
        var output: UnsafeMutablePointer<UInt8>?
        var length = 0
        _ = descriptor.invoke("ping", ping, ping.count, &output, &length)
        descriptor.release(output, length)
    }
}

// (b) A bare socketpair ping-pong with the same framing: the IPC floor. With `polling`, the
// parent waits in poll(2) before each read, on the socket alone or beside an idle descriptor —
// what the host's wait does with and without an instance's seccomp listener.
enum FloorWait { case blockingRead, pollSocket, pollSocketAndIdleListener }

func socketFloor(cpu: Int32?, wait: FloorWait = .blockingRead) throws -> (Stats, pid_t) {
    var fds: [Int32] = [0, 0]
    socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
    var pid: pid_t = 0
    let argv = [strdup(CommandLine.arguments[0]), strdup("echo"), nil]
    posix_spawn(&pid, CommandLine.arguments[0], &actions, nil, argv, environ)
    close(fds[1])
    pin(pid, cpu: cpu)
    let request = Frame(type: .call, requestID: 1, payload: [0, 4] + Array("ping".utf8) + ping).encoded()
    var reply = [UInt8](repeating: 0, count: 64)
    var idle: [Int32] = [0, 0]  // a pipe nobody writes: as quiet as a listener no forbidden call wakes
    brane_pipe_cloexec(&idle)
    defer { close(idle[0]); close(idle[1]) }
    var waitSet = [pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0), pollfd(fd: idle[0], events: Int16(POLLIN), revents: 0)]
    let stats = roundTrips(calls) {
        _ = request.withUnsafeBytes { write(fds[0], $0.baseAddress, $0.count) }
        if wait != .blockingRead { _ = poll(&waitSet, wait == .pollSocket ? 1 : 2, -1) }
        var received = 0
        while received < 12 + 13 {
            received += reply.withUnsafeMutableBytes { read(fds[0], $0.baseAddress! + received, $0.count - received) }
        }
    }
    close(fds[0])
    return (stats, pid)
}

enum EchoChild {
    /// Answers each CALL frame on fd 3 with a 13-byte RESULT, as a plugin's ping does.
    static func run() -> Never {
        var header = [UInt8](repeating: 0, count: 12), payload = [UInt8](repeating: 0, count: 65536)
        let answer = Frame(type: .result, requestID: 1, payload: Array(#"{"pong":true}"#.utf8)).encoded()
        while true {
            guard header.withUnsafeMutableBytes({ read(3, $0.baseAddress, 12) }) == 12 else { exit(0) }
            let length = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16
            var got = 0
            while got < length { got += payload.withUnsafeMutableBytes { read(3, $0.baseAddress! + got, length - got) } }
            _ = answer.withUnsafeBytes { write(3, $0.baseAddress, $0.count) }
        }
    }
}

/// What the sandbox's filters add to one allowed syscall (getppid, which glibc does not cache):
/// none, then the tier-0 load filter, then the serve-phase filter on top, as a plugin has them.
/// A child process, because a filter cannot be taken off again.
enum FilterCostChild {
    static func run() -> Never {
        func perSyscall() -> Double {
            Stats((0..<41).map { _ in nanoseconds { for _ in 0..<20000 { _ = getppid() } } / 20000 }).median
        }
        var figures = [perSyscall()]
        let profile = try! SecurityProfile.load(path: try! ResourceLocator.current.profilePath(for: .sensitive))
        for program in [try! SeccompCompiler.compile(profile, options: .init(selfPID: getpid(), declared: [])), try! SeccompCompiler.compileServePhase()] {
            guard program.withUnsafeBytes({ brane_seccomp_install($0.baseAddress, UInt16(program.count / 8)) }) == 0 else {
                print("cannot install a filter: errno \(errno)")
                exit(1)
            }
            figures.append(perSyscall())
        }
        print(figures.map { String(format: "%.1f", $0) }.joined(separator: " "))
        exit(0)
    }
}

/// The child's three figures, in nanoseconds per syscall.
func filterCost() throws -> [Double] {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = ["filter-cost"]
    let output = Pipe()
    child.standardOutput = output
    try child.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    child.waitUntilExit()
    return text.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
}

// (c) Sandboxed round trips.
func sandboxed(_ directory: String, cpu: Int32?) throws -> Stats {
    let instance = try PluginInstance(plan: try plan(directory), runner: runner)
    defer { instance.stop() }
    pin(instance.pid, cpu: cpu)
    return try roundTrips(calls) { _ = try instance.call(method: "ping", input: ping) }
}

// (d) Cold start.
/// posix_spawn of `path` without arguments, waited for: `/bin/true` is the baseline; the runner
/// without its socket exits at once, which isolates what loading the runner itself costs.
func bareSpawn(_ path: String) -> Stats {
    Stats((0..<200).map { _ in spawnAndWait([path], environment: []) })
}

/// Compiling an instance's seccomp program, and making it from the profile's template (what a start does).
func seccompCompile(_ directory: String) throws -> (compiled: Stats, fromTemplate: Stats) {
    let p = try plan(directory)
    let compiled = Stats(try (0..<200).map { i in
        try nanoseconds { _ = try SeccompCompiler.compile(p.profile, options: .init(selfPID: 1000 + Int32(i), declared: p.declared)) }
    })
    return (compiled, Stats(try (0..<200).map { i in
        try nanoseconds { _ = try SeccompCompiler.program(p.profile, options: .init(selfPID: 1000 + Int32(i), declared: p.declared)) }
    }))
}

/// Spawn → sandbox on → first reply, and apart from it the stop (kill, reap, namespaces torn down).
/// `pause` between rounds: none is a burst of starts, like the baseline's; 10 ms lets the kernel
/// finish tearing down the last instance's namespaces, and lets the CPUs idle, as between real starts.
func coldStart(_ directory: String, zygote: Bool, pause: Double) throws -> (firstReply: Stats, stop: Stats) {
    let p = try plan(directory, zygote: zygote)
    let rounds = try (0..<100).map { _ in
        Thread.sleep(forTimeInterval: pause)
        var instance: PluginInstance?
        let start = try nanoseconds {
            instance = try PluginInstance(plan: p, runner: runner)
            _ = try instance!.call(method: "ping", input: ping)
        }
        return (start, nanoseconds { instance!.stop() })
    }
    return (Stats(rounds.map(\.0)), Stats(rounds.map(\.1)))
}

// (e) Memory.
func memory(of pid: pid_t) -> (rss: Double, pss: Double) {
    let rollup = (try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)) ?? ""
    func kib(_ key: String) -> Double {
        rollup.split(separator: "\n").first { $0.hasPrefix(key + ":") }
            .flatMap { Double($0.split(separator: " ", omittingEmptySubsequences: true)[1]) } ?? 0
    }
    return (kib("Rss"), kib("Pss"))
}

/// RSS and PSS (KiB) of `count` instances of one plugin, all running at once, each after one call:
/// a ping leaves it idle, as the targets have it; a real call shows what its work maps.
func memoryFigures(_ directory: String, count: Int, zygote: Bool, after call: (method: String, input: [UInt8]) = ("ping", ping)) throws -> [(rss: Double, pss: Double)] {
    let p = try plan(directory, zygote: zygote)
    let instances = try (0..<count).map { _ in try PluginInstance(plan: p, runner: runner) }
    defer { instances.forEach { $0.stop() } }
    for instance in instances { _ = try instance.call(method: call.method, input: call.input) }
    return instances.map { memory(of: $0.pid) }
}

// The run.
let libraryDirectory = ResourceLocator.current.executableDirectory
print("# brane-bench\n")
print("\(calls) calls per round-trip figure; \(ProcessInfo.processInfo.activeProcessorCount) CPUs; \(try String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))\n")
print("## Calls\n")
print("| path | placement | p50 (IQR) | p99 | calls/s | vs. bare ping-pong |")
print("|---|---|---|---|---|---|")
let floorC = inProcessFloor(library: "\(libraryDirectory)/libHostileFixture.so")
print("| in-process dlopen call, C (floor) | — | \(floorC.describe(1, "ns")) | \(String(format: "%.0f", floorC.quantile(0.99))) ns | — | — |")
for (placement, cpu) in [("same CPU", Int32(0) as Int32?), ("unpinned", nil)] {
    pin(0, cpu: cpu)
    let (bare, child) = try socketFloor(cpu: cpu)
    kill(child, SIGKILL); waitpid(child, nil, 0)
    let bareRate = 1e9 / bare.median
    let placementKey = cpu == nil ? "unpinned" : "sameCPU"
    Report.record("calls.\(placementKey).bareSocketpair", bare, scale: 1000, unit: "µs")
    print("| bare socketpair ping-pong (IPC floor) | \(placement) | \(bare.describe(1000, "µs", digits: 2)) | \(String(format: "%.2f", bare.quantile(0.99) / 1000)) µs | \(Int(bareRate)) | 1.00× |")
    for (name, wait) in [("… waiting in poll on the socket", FloorWait.pollSocket), ("… in poll beside an idle listener", .pollSocketAndIdleListener)] {
        let (polled, echo) = try socketFloor(cpu: cpu, wait: wait)
        kill(echo, SIGKILL); waitpid(echo, nil, 0)
        print("| \(name) | \(placement) | \(polled.describe(1000, "µs", digits: 2)) | \(String(format: "%.2f", polled.quantile(0.99) / 1000)) µs | \(Int(1e9 / polled.median)) | \(String(format: "%.2f", polled.median / bare.median))× |")
    }
    for (name, key, directory) in [("sandboxed C plugin", "c", hostilePlugin), ("sandboxed Swift plugin", "swift", swiftPlugin)] {
        let s = try sandboxed(directory, cpu: cpu)
        Report.record("calls.\(placementKey).\(key)", s, scale: 1000, unit: "µs", baseline: ("calls.\(placementKey).bareSocketpair", bare))
        print("| \(name) | \(placement) | \(s.describe(1000, "µs", digits: 2)) | \(String(format: "%.2f", s.quantile(0.99) / 1000)) µs | \(Int(1e9 / s.median)) | \(String(format: "%.2f", s.median / bare.median))× |")
    }
}
pin(0, cpu: nil)
let filters = try filterCost()
if filters.count == 3 {
    print("\nOne allowed syscall (getppid): \(filters[0]) ns bare, \(filters[1]) ns under the tier-0 load filter, \(filters[2]) ns with the "
        + "serve-phase filter on top (+\(String(format: "%.1f", filters[2] - filters[1])) ns; a call makes two syscalls in the runner, read and writev).")
}

try startAndMemoryBenchmarks()
try egressBenchmarks(connects: option("--connects", default: 5000))
try marketplaceBenchmarks()
try startupBenchmarks()
try observationBenchmarks()
Report.finish()

/// Cold start and idle memory, each forked from the plugin's zygote (the default) and spawned
/// (`BRANE_ZYGOTE=0`), in the same run; the keys without `.spawned` are the zygote's.
func startAndMemoryBenchmarks() throws {
    print("\n## Cold start (spawn → sandbox on → first reply)\n")
    print("| what | median (IQR) | vs. spawn of /bin/true |")
    print("|---|---|---|")
    let trivial = bareSpawn("/bin/true")
    print("| posix_spawn + wait of /bin/true (baseline) | \(trivial.describe(1e6, "ms", digits: 2)) | 1.00× |")
    Report.record("coldStart.spawnTrue", trivial, scale: 1e6, unit: "ms")
    for (name, key, directory, target) in [("C plugin (com.brane.sysinfo)", "c", cPlugin, "≤ 1.3×"), ("Swift plugin (com.brane.units)", "swift", swiftPlugin, "≤ 1.0×")] {
        // Back to back, as the baseline is measured, carries the target; 10 ms apart is the other view.
        for (zygote, pause) in [(true, 0), (false, 0), (true, 0.01), (false, 0.01)] {
            let (start, stop) = try coldStart(directory, zygote: zygote, pause: pause)
            let how = (zygote ? "forked by its zygote" : "spawned") + (pause == 0 ? ", back to back" : ", 10 ms apart")
            let suffix = (zygote ? "" : ".spawned") + (pause == 0 ? "" : ".spaced")
            print("| \(name), \(how) | \(start.describe(1e6, "ms", digits: 2)) | \(String(format: "%.2f", start.median / trivial.median))× |")
            print("| … then its stop (kill, reap) | \(stop.describe(1e6, "ms", digits: 2)) | — |")
            Report.record("coldStart.\(key)\(suffix)", start, scale: 1e6, unit: "ms", baseline: ("coldStart.spawnTrue", trivial), target: suffix.isEmpty ? target : nil)
            Report.record("coldStart.\(key)\(suffix).stop", stop, scale: 1e6, unit: "ms")
        }
    }
    let (compile, fromTemplate) = try seccompCompile(cPlugin)
    print("| compiling an instance's seccomp filter (libseccomp) | \(compile.describe(1e6, "ms", digits: 3)) | — |")
    print("| of which: the host makes it from the profile's template | \(fromTemplate.describe(1e6, "ms", digits: 3)) | — |")
    Report.record("coldStart.seccompCompile", compile, scale: 1e6, unit: "ms")
    Report.record("coldStart.seccompFromTemplate", fromTemplate, scale: 1e6, unit: "ms")
    let runnerAlone = bareSpawn(runner)
    print("| of which, when spawned: exec of the runner alone (no socket: exits at once) | \(runnerAlone.describe(1e6, "ms", digits: 2)) | \(String(format: "%.2f", runnerAlone.median / trivial.median))× |")
    Report.record("coldStart.runnerExec", runnerAlone, scale: 1e6, unit: "ms", baseline: ("coldStart.spawnTrue", trivial))

    print("\n## Memory of idle sandboxed plugins\n")
    print("| what | RSS median (IQR) | PSS median (IQR) |")
    print("|---|---|---|")
    for zygote in [true, false] {
        let how = zygote ? "forked by its zygote" : "spawned"
        let suffix = zygote ? "" : ".spawned"
        for (name, key, directory, target) in [("C plugin (com.brane.sysinfo)", "c", cPlugin, "≤ 2 MiB"),
                                               ("Swift plugin on Codable (com.brane.units)", "swift", swiftPlugin, "≤ 6 MiB"),
                                               ("Swift plugin on JSONValue (com.brane.sensor.memory)", "swiftKit", swiftKitPlugin, "≤ 6 MiB")] {
            let figures = try memoryFigures(directory, count: 9, zygote: zygote)
            Report.record("memory.idle.\(key)\(suffix).rss", Stats(figures.map(\.rss)), scale: 1024, unit: "MiB", target: zygote ? target : nil)
            Report.record("memory.idle.\(key)\(suffix).pss", Stats(figures.map(\.pss)), scale: 1024, unit: "MiB")
            print("| \(name), \(how), one of 9 | \(Stats(figures.map(\.rss)).describe(1024, "MiB", digits: 2)) | \(Stats(figures.map(\.pss)).describe(1024, "MiB", digits: 2)) |")
        }
        let converted = try memoryFigures(swiftPlugin, count: 9, zygote: zygote, after: ("tools/call", Array(#"{"name":"convert_units","arguments":{"value":250,"from":"mg","to":"g"}}"#.utf8)))
        Report.record("memory.afterCall.swift\(suffix).rss", Stats(converted.map(\.rss)), scale: 1024, unit: "MiB")
        Report.record("memory.afterCall.swift\(suffix).pss", Stats(converted.map(\.pss)), scale: 1024, unit: "MiB")
        print("| … com.brane.units, \(how), after one tools/call, one of 9 | \(Stats(converted.map(\.rss)).describe(1024, "MiB", digits: 2)) | \(Stats(converted.map(\.pss)).describe(1024, "MiB", digits: 2)) |")
        let many = try memoryFigures(swiftPlugin, count: pluginCount, zygote: zygote)
        print("| \(pluginCount) Swift plugins at once, \(how) | \(Stats(many.map(\.rss)).describe(1024, "MiB", digits: 2)) each | \(String(format: "%.1f", many.map(\.pss).reduce(0, +) / 1024)) MiB in total |")
        Report.record("memory.swift.\(pluginCount)AtOnce\(suffix).pss", value: many.map(\.pss).reduce(0, +) / 1024, unit: "MiB",
                      target: pluginCount == 100 && zygote ? "≤ 60 MiB" : nil)
    }
}
