import CBraneSystem
import Foundation

/// What this kernel and this process can enforce. Probed once; `brane doctor` explains each.
public enum HostCapabilities {
    public static let landlockABI: Int? = {
        let abi = brane_landlock_abi()
        return abi > 0 ? Int(abi) : nil
    }()

    public static var seccompKillProcess: Bool { brane_seccomp_kill_process_available() == 1 }
    public static var networkNamespaces: Bool { brane_can_unshare_network() == 1 }
    public static var userNamespaces: Bool { brane_can_unshare_user() == 1 }

    /// The effective capability mask of this process (from /proc/self/status).
    public static var effectiveCapabilities: UInt64? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") })
        else { return nil }
        return UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16)
    }
}
