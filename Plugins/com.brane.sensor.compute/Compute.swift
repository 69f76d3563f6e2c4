import BranePluginKit
import BraneProcFS

/// com.brane.sensor.compute — CPU use overall and per core (from /proc/stat deltas), load
/// averages and task counts (/proc/loadavg). Tier 0; reads those two files and nothing else.
struct Compute: BranePlugin {
    static let id = "com.brane.sensor.compute"
    static let version = "0.1.0"
    static let kind = PluginKind.sensor

    let busy = Deltas<String>(), total = Deltas<String>()

    init(host: PluginHost) {}

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "sensor/sample" else { throw PluginError("unknown method \(method); this sensor answers sensor/sample") }
        var percent = try cpuPercent()
        if percent == nil {  // the first sample: measure over a short interval
            ProcFS.sleep(seconds: 0.25)
            percent = try cpuPercent()
        }
        let load = ProcFS.table(try ProcFS.read("/proc/loadavg")).first ?? []
        guard load.count >= 4 else { throw PluginError("unexpected /proc/loadavg format") }
        let tasks = load[3].split(separator: "/").compactMap { Double($0) }
        var metrics: [String: Double] = [
            "load.1m": Double(load[0]) ?? 0, "load.5m": Double(load[1]) ?? 0, "load.15m": Double(load[2]) ?? 0,
            "tasks.running": tasks.first ?? 0, "tasks.total": tasks.last ?? 0,
        ]
        for (cpu, value) in percent ?? [:] {
            metrics[cpu == "cpu" ? "cpu.percent" : "cpu.\(cpu.dropFirst(3)).percent"] = twoDecimals(value)
        }
        metrics["cpu.cores"] = Double((percent ?? [:]).count - 1)
        return SensorReading(metrics: metrics).json
    }

    /// Busy share of each CPU line ("cpu" is all cores) since the previous call, 0–100.
    func cpuPercent() throws -> [String: Double]? {
        var busyTimes: [String: Double] = [:], totalTimes: [String: Double] = [:]
        for fields in ProcFS.table(try ProcFS.read("/proc/stat")) where fields.first?.hasPrefix("cpu") == true {
            let t = fields.dropFirst().prefix(8).map { Double($0) ?? 0 }  // user nice system idle iowait irq softirq steal
            guard t.count == 8 else { continue }
            let name = String(fields[0])
            busyTimes[name] = t[0] + t[1] + t[2] + t[5] + t[6] + t[7]
            totalTimes[name] = t.reduce(0, +)
        }
        let busyRates = busy.rates(busyTimes), totalRates = total.rates(totalTimes)
        guard let busyRates, let totalRates else { return nil }
        return busyRates.reduce(into: [:]) { result, entry in
            if let all = totalRates[entry.key], all > 0 { result[entry.key] = min(100, entry.value / all * 100) }
        }
    }
}

@_cdecl("brane_plugin_entry")
public func braneComputeEntry() -> UnsafeRawPointer { exportPlugin(Compute.self) }
