import BranePluginCodable
import BraneProcFS
import Glibc

/// com.brane.scanner.machine — the machine itself: OS, kernel, CPU, memory, hostname, boot time
/// and virtualisation (the CPU's hypervisor flag and the DMI vendor).
struct Machine: BranePlugin {
    static let id = "com.brane.scanner.machine"
    static let version = "0.1.0"
    static let kind = PluginKind.scanner

    init(host: PluginHost) {}

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "scanner/scan" else { throw PluginError("unknown method \(method); this scanner answers scanner/scan") }
        var system = utsname()
        uname(&system)
        func field<T>(_ value: T) -> String { withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } }
        let osRelease = (try? ProcFS.read("/etc/os-release")) ?? ""
        let prettyName = osRelease.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
            .map { $0.dropFirst("PRETTY_NAME=".count).trimmingQuotes } ?? "unknown"
        let cpuinfo = try ProcFS.read("/proc/cpuinfo")
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":", maxSplits: 1).last
            .map { String($0.drop { $0 == " " }) } ?? "unknown"
        let cores = cpuinfo.split(separator: "\n").filter { $0.hasPrefix("processor") }.count
        let hypervisorFlag = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").contains("hypervisor") ?? false
        let vendor = ((try? ProcFS.read("/sys/class/dmi/id/sys_vendor")) ?? "").split(separator: "\n").first.map(String.init) ?? ""
        let product = ((try? ProcFS.read("/sys/class/dmi/id/product_name")) ?? "").split(separator: "\n").first.map(String.init) ?? ""
        let memory = ProcFS.keyedNumbers(try ProcFS.read("/proc/meminfo"))["MemTotal"] ?? 0
        let bootTime = ProcFS.table(try ProcFS.read("/proc/stat")).first { $0.first == "btime" }.flatMap { $0.count > 1 ? String($0[1]) : nil } ?? "0"
        let machineID = ((try? ProcFS.read("/etc/machine-id")) ?? "").split(separator: "\n").first.map(String.init)
        // Every instance has its own UTS namespace (uname says "brane-sandbox"): the machine's
        // name comes from /etc/hostname, which the manifest declares.
        let hostname = ((try? ProcFS.read("/etc/hostname")) ?? "").split(separator: "\n").first.map(String.init) ?? field(system.nodename)
        let virtualization = hypervisorFlag ? (vendor.isEmpty ? "virtual machine" : "virtual machine (\(vendor)\(product.isEmpty ? "" : " \(product)"))") : "none detected"
        return try encodeJSON(ScanResult(assets: [Asset(
            kind: "machine", key: machineID ?? hostname, name: hostname,
            properties: ["os": prettyName, "kernel": "\(field(system.sysname)) \(field(system.release))", "architecture": field(system.machine),
                         "cpuModel": model, "cpuCores": String(cores), "memoryMiB": String(Int(memory / 1024)), "hostname": hostname,
                         "bootTime": bootTime, "virtualization": virtualization])]))
    }
}

extension Substring {
    var trimmingQuotes: String { String(drop { $0 == "\"" }.reversed().drop { $0 == "\"" }.reversed()) }
}

@_cdecl("brane_plugin_entry")
public func braneMachineEntry() -> UnsafeRawPointer { exportPlugin(Machine.self) }
