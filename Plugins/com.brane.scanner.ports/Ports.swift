import BranePluginCodable
import BraneProcFS

/// com.brane.scanner.ports — listening TCP and bound UDP sockets from /proc/net/{tcp,udp}{,6}.
/// Each port carries its socket inode; the host maps inodes to the owning processes, which the
/// sandbox cannot do itself (other processes' /proc/PID/fd are behind Landlock's ptrace scope).
struct Ports: BranePlugin {
    static let id = "com.brane.scanner.ports"
    static let version = "0.1.0"
    static let kind = PluginKind.scanner

    init(host: PluginHost) {}

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "scanner/scan" else { throw PluginError("unknown method \(method); this scanner answers scanner/scan") }
        var assets: [Asset] = []
        // TCP "0A" is LISTEN; UDP "07" is an unconnected (bound) socket.
        for (file, proto, listening) in [("tcp", "tcp", "0A"), ("tcp6", "tcp", "0A"), ("udp", "udp", "07"), ("udp6", "udp", "07")] {
            for fields in ProcFS.table(try ProcFS.read("/proc/net/\(file)")).dropFirst() where fields.count > 9 && fields[3] == listening {
                guard let (address, port) = Self.decode(fields[1]) else { continue }
                let endpoint = address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
                assets.append(Asset(kind: "port", key: "\(proto)/\(endpoint)", name: "\(proto) \(endpoint)",
                                    properties: ["protocol": proto, "address": address, "port": String(port),
                                                 "uid": String(fields[7]), "inode": String(fields[9])]))
            }
        }
        return try encodeJSON(ScanResult(assets: assets))
    }

    /// "0100007F:1F90" → ("127.0.0.1", 8080); IPv6 addresses are four little-endian 32-bit words.
    static func decode(_ field: Substring) -> (String, Int)? {
        let parts = field.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1], radix: 16) else { return nil }
        let hex = Array(parts[0])
        var bytes: [UInt8] = []
        for word in stride(from: 0, to: hex.count, by: 8) {
            guard word + 8 <= hex.count else { return nil }
            let value = UInt32(String(hex[word..<word + 8]), radix: 16) ?? 0
            bytes += [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 24)]
        }
        if bytes.count == 4 { return (bytes.map(String.init).joined(separator: "."), port) }
        guard bytes.count == 16 else { return nil }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return ("::ffff:" + bytes[12...].map(String.init).joined(separator: "."), port)
        }
        let groups = stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
        return (Self.compress(groups), port)
    }

    /// RFC 5952 text: the longest run of zero groups becomes "::".
    static func compress(_ groups: [String]) -> String {
        var best = (start: -1, length: 0), run = (start: -1, length: 0)
        for (index, group) in groups.enumerated() {
            if group == "0" {
                run = run.start < 0 ? (index, 1) : (run.start, run.length + 1)
                if run.length > best.length { best = run }
            } else {
                run = (-1, 0)
            }
        }
        guard best.length > 1 else { return groups.joined(separator: ":") }
        let head = groups[..<best.start].joined(separator: ":"), tail = groups[(best.start + best.length)...].joined(separator: ":")
        return head + "::" + tail
    }
}

@_cdecl("brane_plugin_entry")
public func branePortsEntry() -> UnsafeRawPointer { exportPlugin(Ports.self) }
