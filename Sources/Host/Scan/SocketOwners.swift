import Foundation

/// Which process holds each socket inode, read by the host from /proc/PID/fd (the sandboxed
/// ports scanner may not look into other processes' descriptors).
public enum SocketOwners {
    public struct Owner: Sendable, Equatable {
        public var pid: Int
        public var name: String
    }

    public static func current() -> [String: Owner] {
        var owners: [String: Owner] = [:]
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for pid in entries.compactMap(Int.init) {
            guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .newlines) ?? "?"
            for descriptor in descriptors {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(descriptor)"),
                      target.hasPrefix("socket:[") else { continue }
                let inode = String(target.dropFirst("socket:[".count).dropLast())
                if owners[inode] == nil { owners[inode] = Owner(pid: pid, name: name) }
            }
        }
        return owners
    }
}
