import BranePluginKit
import BraneProcFS

/// com.brane.sensor.memory — memory and swap use from /proc/meminfo, and a leak-trend signal:
/// the least-squares slope of used memory over the recent samples, reported as "rising" when it
/// climbs steadily (slope above `leakMiBPerMinute` with R² ≥ 0.8 over at least `trendSamples`).
struct Memory: BranePlugin {
    static let id = "com.brane.sensor.memory"
    static let version = "0.1.0"
    static let kind = PluginKind.sensor

    let leakMiBPerMinute: Double
    let trendSamples: Int
    let history = History()

    final class History { var samples: [(time: Double, usedMiB: Double)] = [] }

    init(host: PluginHost) throws {
        let config = try JSONValue(parsing: host.configJSON)
        leakMiBPerMinute = config["leakMiBPerMinute"]?.numberValue ?? 1
        trendSamples = max(3, Int(config["trendSamples"]?.numberValue ?? 10))
    }

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "sensor/sample" else { throw PluginError("unknown method \(method); this sensor answers sensor/sample") }
        let info = ProcFS.keyedNumbers(try ProcFS.read("/proc/meminfo"))
        guard let total = info["MemTotal"], let available = info["MemAvailable"], total > 0 else {
            throw PluginError("/proc/meminfo lacks MemTotal or MemAvailable")
        }
        let swapTotal = info["SwapTotal"] ?? 0, swapUsed = swapTotal - (info["SwapFree"] ?? 0)
        let usedMiB = (total - available) / 1024
        history.samples.append((ProcFS.now(), usedMiB))
        if history.samples.count > trendSamples * 6 { history.samples.removeFirst() }
        let trend = Self.slope(history.samples.suffix(trendSamples))
        let rising = history.samples.count >= trendSamples && (trend?.perMinute ?? 0) > leakMiBPerMinute && (trend?.r2 ?? 0) >= 0.8
        return SensorReading(
            metrics: ["memory.usedPercent": twoDecimals((total - available) / total * 100), "memory.usedMiB": twoDecimals(usedMiB),
                      "memory.availableMiB": twoDecimals(available / 1024), "memory.totalMiB": twoDecimals(total / 1024),
                      "swap.usedPercent": swapTotal > 0 ? twoDecimals(swapUsed / swapTotal * 100) : 0, "swap.usedMiB": twoDecimals(swapUsed / 1024),
                      "memory.trendMiBPerMinute": twoDecimals(trend?.perMinute ?? 0)],
            states: ["memory.leakTrend": rising ? "rising" : "steady"]).json
    }

    /// Least-squares slope (MiB per minute) and its R², or nil with fewer than two distinct times.
    static func slope(_ samples: ArraySlice<(time: Double, usedMiB: Double)>) -> (perMinute: Double, r2: Double)? {
        guard samples.count >= 2 else { return nil }
        let n = Double(samples.count)
        let meanT = samples.reduce(0) { $0 + $1.time } / n, meanY = samples.reduce(0) { $0 + $1.usedMiB } / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for s in samples {
            sxy += (s.time - meanT) * (s.usedMiB - meanY)
            sxx += (s.time - meanT) * (s.time - meanT)
            syy += (s.usedMiB - meanY) * (s.usedMiB - meanY)
        }
        guard sxx > 0 else { return nil }
        return (sxy / sxx * 60, syy > 0 ? sxy * sxy / (sxx * syy) : 0)
    }
}

@_cdecl("brane_plugin_entry")
public func braneMemoryEntry() -> UnsafeRawPointer { exportPlugin(Memory.self) }
