import BranePluginKit
import BraneProcFS

/// com.brane.sensor.network — per-interface byte, packet and error counts and rates, and TCP
/// connections by state, from /proc/net/{dev,tcp,tcp6}. Its manifest declares `network.observe`,
/// so it keeps the machine's network namespace; as a tier-0 plugin it still cannot open a socket.
struct Network: BranePlugin {
    static let id = "com.brane.sensor.network"
    static let version = "0.1.0"
    static let kind = PluginKind.sensor

    /// /proc/net/tcp state codes.
    static let states = ["01": "established", "02": "synSent", "03": "synReceived", "04": "finWait1", "05": "finWait2",
                         "06": "timeWait", "07": "close", "08": "closeWait", "09": "lastAck", "0A": "listen", "0B": "closing"]
    let counters = Deltas<String>()

    init(host: PluginHost) {}

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "sensor/sample" else { throw PluginError("unknown method \(method); this sensor answers sensor/sample") }
        var reading = SensorReading()
        var totals = try interfaceCounters()
        var rates = counters.rates(totals)
        if rates == nil {  // the first sample: measure over a short interval
            ProcFS.sleep(seconds: 0.1)
            totals = try interfaceCounters()
            rates = counters.rates(totals)
        }
        for (key, value) in rates ?? [:] where !key.hasSuffix("Errors") {
            reading.metrics["\(key)PerSec"] = twoDecimals(value)
        }
        for (key, value) in totals {
            let parts = key.split(separator: ".")  // iface.NAME.counter
            reading.detail[parts.dropLast().joined(separator: "."), default: [:]][String(parts.last!)] = value
            if key.hasSuffix("Errors") { reading.metrics[key] = value }  // totals: any new error is a change
        }
        var byState: [String: Double] = [:]
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            for fields in ProcFS.table(try ProcFS.read(file)).dropFirst() where fields.count > 3 {
                byState[Self.states[String(fields[3])] ?? "unknown", default: 0] += 1
            }
        }
        for (state, count) in byState { reading.metrics["tcp.\(state)"] = count }
        reading.metrics["tcp.connections"] = byState.filter { $0.key != "listen" }.values.reduce(0, +)
        return reading.json
    }

    /// iface.NAME.{rxBytes,rxPackets,rxErrors,txBytes,txPackets,txErrors} from /proc/net/dev.
    func interfaceCounters() throws -> [String: Double] {
        var values: [String: Double] = [:]
        for line in try ProcFS.read("/proc/net/dev").split(separator: "\n").dropFirst(2) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].split(separator: " ").last.map(String.init) ?? ""
            let f = line[line.index(after: colon)...].split(separator: " ").compactMap { Double($0) }
            guard f.count >= 11 else { continue }
            for (counter, index) in [("rxBytes", 0), ("rxPackets", 1), ("rxErrors", 2), ("txBytes", 8), ("txPackets", 9), ("txErrors", 10)] {
                values["iface.\(name).\(counter)"] = f[index]
            }
        }
        return values
    }
}

@_cdecl("brane_plugin_entry")
public func braneNetworkEntry() -> UnsafeRawPointer { exportPlugin(Network.self) }
