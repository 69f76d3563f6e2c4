import CBraneSystem

/// The Landlock ruleset for one plugin, fitted to the ABI the kernel offers: every right the
/// ABI knows is handled (so denied unless a rule grants it), and each path gets only what it needs.
public struct LandlockPlan: Sendable, Equatable {
    public struct PathRule: Sendable, Equatable, Codable {
        public var path: String
        public var writable: Bool
        public var access: UInt64
    }

    public struct PortRule: Sendable, Equatable, Codable {
        public var port: UInt64
        public var access: UInt64
    }

    /// nil when the kernel has no Landlock (the plan is then empty and `brane doctor` says so).
    public var abi: Int?
    public var handledFilesystem: UInt64 = 0
    public var handledNetwork: UInt64 = 0
    public var scoped: UInt64 = 0
    public var paths: [PathRule] = []
    public var ports: [PortRule] = []

    static let readAccess = UInt64(BRANE_LANDLOCK_FS_EXECUTE) | UInt64(BRANE_LANDLOCK_FS_READ_FILE) | UInt64(BRANE_LANDLOCK_FS_READ_DIR)
    static let writeAccess = UInt64(BRANE_LANDLOCK_FS_WRITE_FILE) | UInt64(BRANE_LANDLOCK_FS_REMOVE_DIR)
        | UInt64(BRANE_LANDLOCK_FS_REMOVE_FILE) | UInt64(BRANE_LANDLOCK_FS_MAKE_DIR) | UInt64(BRANE_LANDLOCK_FS_MAKE_REG)
        | UInt64(BRANE_LANDLOCK_FS_TRUNCATE)

    public init(abi: Int?, read: [String], write: [String], connectPorts: [Int]) {
        guard let abi, abi >= 1 else { return }
        self.abi = abi
        handledFilesystem = (1 << 13) - 1  // ABI 1: EXECUTE … MAKE_SYM
        if abi >= 2 { handledFilesystem |= UInt64(BRANE_LANDLOCK_FS_REFER) }
        if abi >= 3 { handledFilesystem |= UInt64(BRANE_LANDLOCK_FS_TRUNCATE) }
        if abi >= 5 { handledFilesystem |= UInt64(BRANE_LANDLOCK_FS_IOCTL_DEV) }
        if abi >= 4 { handledNetwork = UInt64(BRANE_LANDLOCK_NET_BIND_TCP) | UInt64(BRANE_LANDLOCK_NET_CONNECT_TCP) }
        if abi >= 6 { scoped = UInt64(BRANE_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET) | UInt64(BRANE_LANDLOCK_SCOPE_SIGNAL) }
        let readRights = Self.readAccess & handledFilesystem
        let writeRights = (Self.readAccess | Self.writeAccess) & handledFilesystem
        paths = read.map { PathRule(path: $0, writable: false, access: readRights) }
            + write.map { PathRule(path: $0, writable: true, access: writeRights) }
        if handledNetwork != 0 {
            ports = Set(connectPorts).sorted().map { PortRule(port: UInt64($0), access: UInt64(BRANE_LANDLOCK_NET_CONNECT_TCP)) }
        }
    }
}
