import BraneHost
import Foundation
import Glibc

/// A loopback listener whose own thread accepts and closes every connection, so a benchmark's
/// thousands of connects never fill its backlog.
final class AcceptingListener: @unchecked Sendable {
    let fd: Int32
    let port: UInt16

    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 128) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread {
            while true {
                let peer = accept(fd, nil, nil)
                if peer < 0 { return }
                close(peer)
            }
        }
    }

    /// One connect of the host's own, the baseline: socket, connect, close.
    func directConnect() {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        close(client)
    }
}

/// The hostile fixture at tier 1, declaring the listener's port: `attack/broker` asks the host for
/// one connection and closes it, so a call minus a ping is what brokering costs.
func egressBenchmarks(connects: Int) throws {
    let listener = AcceptingListener()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("brane-bench-egress-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let manifest = try String(contentsOfFile: hostilePlugin + "/manifest.yaml", encoding: .utf8)
        .replacingOccurrences(of: "  tier: 0", with: "  tier: 1")
        + "network:\n  mode: loopback\n  connect: [{host: 127.0.0.1, port: \(listener.port)}]\n"
    try manifest.write(to: directory.appendingPathComponent("manifest.yaml"), atomically: true, encoding: .utf8)
    let request = Array(#"{"host":"127.0.0.1","port":\#(listener.port),"then":""}"#.utf8)

    print("\n## Brokered connect (ABI 1.2)\n")
    print("\(connects) connects per figure, the tier-1 hostile fixture asking for 127.0.0.1:\(listener.port) and closing it.\n")
    print("| what | placement | p50 (IQR) | p99 |")
    print("|---|---|---|---|")
    let direct = roundTrips(connects) { listener.directConnect() }
    Report.record("egress.directConnect", direct, scale: 1000, unit: "µs")
    print("| the host's own loopback connect (socket, connect, close): baseline | — | \(direct.describe(1000, "µs", digits: 2)) | \(String(format: "%.2f", direct.quantile(0.99) / 1000)) µs |")
    for (placement, cpu) in [("same CPU", Int32(0) as Int32?), ("unpinned", nil)] {
        pin(0, cpu: cpu)
        let instance = try PluginInstance(plan: try plan(directory.path), runner: runner)
        defer { instance.stop() }
        pin(instance.pid, cpu: cpu)
        let ping = try roundTrips(connects) { _ = try instance.call(method: "ping", input: Array("{}".utf8)) }
        let brokered = try roundTrips(connects) { _ = try instance.call(method: "attack/broker", input: request) }
        print("| a call that only pings | \(placement) | \(ping.describe(1000, "µs", digits: 2)) | \(String(format: "%.2f", ping.quantile(0.99) / 1000)) µs |")
        print("| a call that asks for a connection (no audit sink) | \(placement) | \(brokered.describe(1000, "µs", digits: 2)) | \(String(format: "%.2f", brokered.quantile(0.99) / 1000)) µs |")
        let cost = brokered.median - ping.median
        Report.record("egress.\(cpu == nil ? "unpinned" : "sameCPU").brokeringCost", value: cost / 1000, unit: "µs",
                      baseline: "egress.directConnect", ratio: cost / direct.median)
        print("| → brokering: call minus ping, vs. the direct connect | \(placement) | \(String(format: "%.2f", cost / 1000)) µs | \(String(format: "%.2f", cost / direct.median))× |")
    }
    pin(0, cpu: nil)
    // With the CLI's audit sink: one SQLite row (hash-chained, signed) per connect.
    let home = BraneHome(root: directory.appendingPathComponent("home").path)
    let marketplace = try Marketplace(home: home)
    SandboxEvents.install { event in
        if case .connection(let attempt, let id, _) = event { try? marketplace.record(action: "plugin-connect", plugin: id, detail: attempt.description) }
    }
    defer { SandboxEvents.install { _ in } }
    let instance = try PluginInstance(plan: try plan(directory.path), runner: runner)
    defer { instance.stop() }
    let audited = try roundTrips(min(connects, 2000)) { _ = try instance.call(method: "attack/broker", input: request) }
    print("| a call that asks for a connection, audited to SQLite | unpinned | \(audited.describe(1000, "µs", digits: 2)) | \(String(format: "%.2f", audited.quantile(0.99) / 1000)) µs |")
}
