import BraneHost
import Foundation
import Glibc

/// Figures for the bundled plugins: one event through the neuroscientist's HRV-drop rule
/// (host → sandbox → result) against the bare socketpair ping-pong measured in the same run,
/// and what five sensors sampled every second cost in CPU and memory.
func pluginBenchmarks(events: Int, sensorSeconds: Int) throws {
    print("## Specialist rule latency (one event: host → sandbox → HRV-drop rule → result)\n")
    let (bare, child) = try socketFloor(cpu: nil)
    kill(child, SIGKILL); waitpid(child, nil, 0)
    let router = SpecialistRouter(locator: PluginLocator(searchDirectories: [repository.appendingPathComponent("Plugins").path]), runner: runner)
    defer { router.stopAll() }
    let dataset = try String(contentsOf: repository.appendingPathComponent("Plugins/com.brane.neuroscientist/Tests/hrv-90-days.jsonl"), encoding: .utf8)
        .split(separator: "\n").map { Array($0.utf8) }
    var next = 0
    let rule = try roundTrips(events) {
        _ = try router.call("com.brane.neuroscientist", method: "specialist/event", input: dataset[next % dataset.count])
        next += 1
    }
    Report.record("plugins.bareSocketpair", bare, scale: 1000, unit: "µs")
    Report.record("plugins.hrvRuleEvent", rule, scale: 1000, unit: "µs", baseline: ("plugins.bareSocketpair", bare))
    print("| path | p50 | p99 | vs. bare ping-pong (p50) |")
    print("|---|---|---|---|")
    print("| bare socketpair ping-pong (IPC floor) | \(String(format: "%.1f", bare.median / 1000)) µs | \(String(format: "%.1f", bare.quantile(0.99) / 1000)) µs | 1.00× |")
    print("| event through the HRV-drop rule | \(String(format: "%.1f", rule.median / 1000)) µs | \(String(format: "%.1f", rule.quantile(0.99) / 1000)) µs | \(String(format: "%.1f", rule.median / bare.median))× |")
    print("\nTarget: p99 ≤ 1 ms. \(events) events, the 90-day dataset cycled.\n")

    print("## Sensor overhead (5 sensors, each sampled every second)\n")
    let sensors = ["compute", "memory", "storage", "network", "services"].map { name in
        SupervisedPlugin(plan: try! plan(repository.appendingPathComponent("Plugins/com.brane.sensor.\(name)").path), runner: runner)
    }
    defer { sensors.forEach { $0.stop() } }
    for sensor in sensors { _ = try sensor.call(method: "sensor/sample", input: ping) }  // started and warmed
    let pids = sensors.compactMap(\.pid)
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let host = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return pids.reduce(host) { total, pid in
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
            return total + ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks  // utime, stime
        }
    }
    let startCPU = cpuSeconds(), start = ContinuousClock.now
    for second in 0..<sensorSeconds {
        for sensor in sensors { _ = try sensor.call(method: "sensor/sample", input: ping) }
        let due = start + .seconds(second + 1)
        if ContinuousClock.now < due { Thread.sleep(forTimeInterval: Double((due - ContinuousClock.now).components.attoseconds) / 1e18) }
    }
    let wall = Double((ContinuousClock.now - start).components.seconds) + Double((ContinuousClock.now - start).components.attoseconds) / 1e18
    let share = (cpuSeconds() - startCPU) / wall * 100
    print("| what | figure | target |")
    print("|---|---|---|")
    print("| CPU, host + 5 sensor processes, over \(sensorSeconds) s | \(String(format: "%.2f", share)) % of one core | ≤ 2 % |")
    Report.record("plugins.fiveSensorsCPU", value: share, unit: "% of one core", target: "≤ 2 %")
    for (name, pid) in zip(["compute", "memory", "storage", "network", "services"], pids) {
        let (rss, pss) = memory(of: pid)
        let anonymous = anonymousKiB(of: pid)
        print("| RSS of the \(name) sensor (PSS; anonymous) | \(String(format: "%.1f", rss / 1024)) MiB (\(String(format: "%.1f", pss / 1024)); \(String(format: "%.1f", anonymous / 1024))) | ≤ 12 MiB |")
    }
    print("\nThe services sensor checks its default endpoint (127.0.0.1:8080, nothing listening: a refused connect each second).")
}

/// Private memory the process itself allocated (heap, stacks), KiB: RSS minus mapped files.
func anonymousKiB(of pid: pid_t) -> Double {
    let rollup = (try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)) ?? ""
    return rollup.split(separator: "\n").first { $0.hasPrefix("Anonymous:") }
        .flatMap { Double($0.split(separator: " ", omittingEmptySubsequences: true)[1]) } ?? 0
}
