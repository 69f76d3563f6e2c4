import CBraneSystem
import Foundation

/// What this kernel and this process can enforce. Probed once; `brane doctor` explains each.
public enum HostCapabilities {
    public static let landlockABI: Int? = {
        let abi = brane_landlock_abi()
        return abi > 0 ? Int(abi) : nil
    }()

    public static var seccompKillProcess: Bool { brane_seccomp_kill_process_available() == 1 }
    /// The runner stops every forbidden call through a listener the host holds (kernel 5.0+).
    public static let seccompUserNotification = brane_seccomp_user_notification_available() == 1
    public static var networkNamespaces: Bool { brane_can_unshare_network() == 1 }
    /// The runner can give an instance empty network and UTS namespaces, directly or through a
    /// user namespace — the same two attempts the runner makes. Probed once, in a child.
    public static let namespaces = brane_can_unshare_namespaces() == 1

    /// The effective capability mask of this process (from /proc/self/status).
    public static var effectiveCapabilities: UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") })
        else { return nil }
        return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    }
}
