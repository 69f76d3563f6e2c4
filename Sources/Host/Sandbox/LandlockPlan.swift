import CBraneSystem

/// The Landlock ruleset for one plugin, fitted to the ABI the kernel offers: every right the
/// ABI knows is handled (so denied unless a rule grants it), and each path gets only what it needs.
public struct LandlockPlan: Sendable, Equatable {
    public struct PathRule: Sendable, Equatable, Codable {
        /// Absolute, as people read it.
        public var path: String
        public var writable: Bool
        public var access: UInt64
        /// A manifest entry: the runner opens it without following any symlink, and a relative
        /// entry (`entry`) only beneath the plugin directory.
        public var declared: Bool = false
        public var entry: String? = nil

        /// What the runner opens: the relative entry as written, or the absolute path.
        var wirePath: String { entry ?? path }
    }

    /// A filesystem entry as the plan receives it: the absolute path, and for a manifest's own
    /// entries, the entry as written.
    public struct Entry: Sendable {
        public var path: String
        public var declared: String?
        public init(path: String, declared: String? = nil) {
            self.path = path
            self.declared = declared
        }
    }

    /// nil when the kernel has no Landlock: the plan is then empty, and no instance starts
    /// unless the development opt-out is set (`SandboxPlan.shortfalls`).
    public var abi: Int?
    public var handledFilesystem: UInt64 = 0
    public var handledNetwork: UInt64 = 0
    public var scoped: UInt64 = 0
    public var paths: [PathRule] = []

    static let readAccess = UInt64(BRANE_LANDLOCK_FS_EXECUTE) | UInt64(BRANE_LANDLOCK_FS_READ_FILE) | UInt64(BRANE_LANDLOCK_FS_READ_DIR)
    static let writeAccess = UInt64(BRANE_LANDLOCK_FS_WRITE_FILE) | UInt64(BRANE_LANDLOCK_FS_REMOVE_DIR)
        | UInt64(BRANE_LANDLOCK_FS_REMOVE_FILE) | UInt64(BRANE_LANDLOCK_FS_MAKE_DIR) | UInt64(BRANE_LANDLOCK_FS_MAKE_REG)
        | UInt64(BRANE_LANDLOCK_FS_TRUNCATE)

    public init(abi: Int?, read: [Entry], write: [Entry]) {
        guard let abi, abi >= 1 else { return }
        self.abi = abi
        handledFilesystem = (1 << 13) - 1  // ABI 1: EXECUTE … MAKE_SYM
        if abi >= 2 { handledFilesystem |= UInt64(BRANE_LANDLOCK_FS_REFER) }
        if abi >= 3 { handledFilesystem |= UInt64(BRANE_LANDLOCK_FS_TRUNCATE) }
        if abi >= 5 { handledFilesystem |= UInt64(BRANE_LANDLOCK_FS_IOCTL_DEV) }
        // No port rules: TCP bind and connect are denied outright, beneath seccomp, which already forbids both
        // (a plugin gets its connections from the host). An older kernel loses nothing the tier needs.
        if abi >= 4 { handledNetwork = UInt64(BRANE_LANDLOCK_NET_BIND_TCP) | UInt64(BRANE_LANDLOCK_NET_CONNECT_TCP) }
        if abi >= 6 { scoped = UInt64(BRANE_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET) | UInt64(BRANE_LANDLOCK_SCOPE_SIGNAL) }
        let readRights = Self.readAccess & handledFilesystem
        let writeRights = (Self.readAccess | Self.writeAccess) & handledFilesystem
        func rule(_ entry: Entry, writable: Bool) -> PathRule {
            PathRule(path: entry.path, writable: writable, access: writable ? writeRights : readRights,
                     declared: entry.declared != nil, entry: entry.declared)
        }
        paths = read.map { rule($0, writable: false) } + write.map { rule($0, writable: true) }
    }
}
