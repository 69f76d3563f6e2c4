import BranePluginKit
import BraneProcFS
import Glibc

/// com.brane.sensor.storage — per-mount space and inode use (statvfs on the mounts listed in
/// /proc/self/mounts, pseudo filesystems skipped) and per-disk I/O rates from /proc/diskstats.
struct Storage: BranePlugin {
    static let id = "com.brane.sensor.storage"
    static let version = "0.1.0"
    static let kind = PluginKind.sensor

    static let pseudo: Set<String> = ["proc", "sysfs", "devpts", "devtmpfs", "cgroup", "cgroup2", "mqueue", "debugfs", "tracefs",
                                      "securityfs", "pstore", "bpf", "fusectl", "configfs", "hugetlbfs", "autofs", "binfmt_misc",
                                      "nsfs", "rpc_pipefs", "efivarfs", "selinuxfs", "ramfs"]
    let io = Deltas<String>()

    init(host: PluginHost) {}

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "sensor/sample" else { throw PluginError("unknown method \(method); this sensor answers sensor/sample") }
        var reading = SensorReading()
        var seen: Set<String> = []
        for fields in ProcFS.table(try ProcFS.read("/proc/self/mounts")) where fields.count >= 3 {
            let mountPoint = ProcFS.unescapedPath(fields[1])
            guard !Self.pseudo.contains(String(fields[2])), seen.insert(mountPoint).inserted else { continue }
            var fs = statvfs()
            guard statvfs(mountPoint, &fs) == 0, fs.f_blocks > 0 else { continue }
            let block = Double(fs.f_frsize)
            let size = Double(fs.f_blocks) * block, free = Double(fs.f_bfree) * block, available = Double(fs.f_bavail) * block
            let used = size - free
            reading.metrics["mount.\(mountPoint).usedPercent"] = twoDecimals(used / (used + available) * 100)
            if fs.f_files > 0 {
                reading.metrics["mount.\(mountPoint).inodesUsedPercent"] = twoDecimals(Double(fs.f_files - fs.f_ffree) / Double(fs.f_files) * 100)
            }
            reading.detail["mount.\(mountPoint)"] = ["sizeGiB": twoDecimals(size / 1_073_741_824), "availableGiB": twoDecimals(available / 1_073_741_824)]
        }
        var rates = io.rates(try diskCounters())
        if rates == nil {  // the first sample: measure over a short interval
            ProcFS.sleep(seconds: 0.1)
            rates = io.rates(try diskCounters())
        }
        for (key, value) in rates ?? [:] { reading.metrics[key] = twoDecimals(value) }
        return reading.json
    }

    /// Bytes read and written so far per disk, from /proc/diskstats
    /// (major minor name reads merged sectorsRead msReading writes merged sectorsWritten …).
    func diskCounters() throws -> [String: Double] {
        var counters: [String: Double] = [:]
        for fields in ProcFS.table(try ProcFS.read("/proc/diskstats")) where fields.count >= 10 {
            let name = String(fields[2])
            guard !name.hasPrefix("loop"), !name.hasPrefix("ram") else { continue }
            counters["disk.\(name).readBytesPerSec"] = (Double(fields[5]) ?? 0) * 512
            counters["disk.\(name).writeBytesPerSec"] = (Double(fields[9]) ?? 0) * 512
        }
        return counters
    }
}

@_cdecl("brane_plugin_entry")
public func braneStorageEntry() -> UnsafeRawPointer { exportPlugin(Storage.self) }
