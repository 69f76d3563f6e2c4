import CBraneSystem
import Foundation
import Glibc

/// Everything the runner applies for one plugin: the tier's profile, the Landlock ruleset,
/// the rlimits, the namespaces and the instance's identity — derived from the manifest, the
/// profile and the kernel, and shown to people by `brane plugin inspect` before anything runs.
/// The plan is fail-closed: what the kernel cannot give is a `shortfall`, and no instance
/// starts with one unless the development opt-out (`SandboxSettings`) is set.
public struct SandboxPlan: Sendable {
    public let bundle: PluginBundle
    public let profilePath: String
    public let profile: SecurityProfile
    public let landlock: LandlockPlan
    public let rlimits: RLimits
    public let isolateNetwork: Bool
    /// A root host runs each instance under its own uid and gid (`SandboxSettings.identityBase` + pid).
    public let switchesIdentity: Bool
    /// The runner's whole environment. For a plugin that links the Swift runtime it preloads the
    /// toolchain's runtime libraries the plugin names: trusted code, loaded and relocated at exec
    /// (or once, in the plugin's zygote) rather than by the plugin's dlopen under the filters, which
    /// cost a Swift plugin ~1 ms more of start (docs/performance.md). A C plugin loads none of it.
    public let runnerEnvironment: [String]
    /// Protections the tier requires that this kernel or process cannot give, each with its meaning.
    public let shortfalls: [Shortfall]
    public let settings: SandboxSettings
    /// Manifest facts that switch on `braneWhen` rules in the profile.
    public let declared: Set<String>
    /// Handed to the plugin's init: the manifest's `config`, or what a neuron or test sets instead.
    public var config: JSONValue
    /// The wall time one call may take: the manifest's callTimeout, or less when a neuron caps it.
    public var callTimeoutMilliseconds: Int
    /// The neuron this plugin runs for, named in audit entries.
    public var neuron: String?
    /// The largest CALL frame the runner accepts (the host validates arguments before that).
    public let callFrameLimit: UInt32 = 16 << 20

    /// Why a call cannot be sent (larger than the runner takes), or nil: the caller's error —
    /// exit 2 on the command line, an error answer elsewhere — never the plugin's death.
    public func callInputProblem(method: String, input: [UInt8]) -> String? {
        guard 2 + method.utf8.count + input.count > Int(callFrameLimit) || method.utf8.count > 256 else { return nil }
        return "the input is \(input.count) bytes; a call may carry at most \(callFrameLimit >> 20) MiB (and a method name 256 bytes)"
    }

    public struct RLimits: Sendable, Codable, Equatable {
        public var addressSpaceBytes: UInt64
        public var cpuSeconds: UInt64
        public var openFiles: UInt64
        public var fileSizeBytes: UInt64
        public var processes: UInt64
    }

    public struct Shortfall: Sendable, Codable, Equatable, CustomStringConvertible {
        /// What is missing, e.g. "Landlock".
        public var missing: String
        /// What running without it would mean for this plugin.
        public var meaning: String
        public var description: String { "\(missing): \(meaning)" }
    }

    public init(bundle: PluginBundle, locator: ResourceLocator = .current, landlockABI: Int? = HostCapabilities.landlockABI,
                settings: SandboxSettings = .current) throws {
        let manifest = bundle.manifest
        self.bundle = bundle
        self.settings = settings
        profilePath = try locator.profilePath(for: manifest.tier)
        profile = try SecurityProfile.load(path: profilePath)
        guard profile.brane.tier == manifest.tier.rawValue else {
            throw SandboxError.badProfile(path: profilePath, reason: "its brane.tier is \(profile.brane.tier), expected \(manifest.tier.rawValue)")
        }
        typealias Entry = LandlockPlan.Entry
        let system = (profile.brane.landlock.read + Self.swiftRuntimeDirectory.map { [$0] }.orEmpty).map { Entry(path: $0) }
        // The library is opened like a declared entry when it lives in the plugin's own tree.
        let library = bundle.libraryPath.hasPrefix(bundle.directory + "/")
            ? Entry(path: bundle.libraryPath, declared: String(bundle.libraryPath.dropFirst(bundle.directory.count + 1)))
            : Entry(path: bundle.libraryPath)
        let read = system + [Entry(path: bundle.directory), library]
            + manifest.filesystem.read.map { Entry(path: bundle.absolute($0), declared: $0) }
        let write = manifest.filesystem.write.map { Entry(path: bundle.absolute($0), declared: $0) }
        landlock = LandlockPlan(abi: landlockABI, read: read, write: write)
        let r = manifest.resources
        rlimits = RLimits(addressSpaceBytes: r.memoryBytes, cpuSeconds: r.cpuSeconds, openFiles: r.openFiles,
                          fileSizeBytes: r.maxFileSizeBytes, processes: r.threads)
        // No tier creates sockets (the host brokers connections); observing only keeps /proc/net showing the machine.
        isolateNetwork = profile.brane.isolateNetwork && !manifest.network.observe
        switchesIdentity = geteuid() == 0
        runnerEnvironment = ["SWIFT_BACKTRACE=enable=no"] + (try Self.swiftRuntimePreload(bundle)).map { ["LD_PRELOAD=\($0)"] }.orEmpty
        if switchesIdentity {
            let gid = Self.pluginGID(manifest.id, settings: settings)
            if let (path, mode) = Self.closedToInstance(bundle.libraryPath, gid: gid, last: 4) ?? Self.closedToInstance(bundle.directory, gid: gid, last: 1) {
                throw SandboxError.closedToInstance(pluginID: manifest.id, path: path, mode: UInt32(mode))
            }
        }
        declared = Set((manifest.filesystem.write.isEmpty ? [] : ["filesystem.write"]) + (manifest.filesystem.usage ? ["filesystem.usage"] : []))
        config = manifest.config
        callTimeoutMilliseconds = r.callTimeoutMilliseconds

        var shortfalls: [Shortfall] = []
        if landlockABI == nil {
            shortfalls.append(Shortfall(missing: "Landlock (unavailable on this kernel)",
                                        meaning: "the plugin could read and write every file the host's user can, ~/.ssh and $BRANE_HOME included"))
        }
        if !HostCapabilities.namespaces {
            shortfalls.append(Shortfall(missing: "namespaces (unshare is refused here, and so are user namespaces)",
                                        meaning: isolateNetwork ? "the plugin would share the host's network and see its hostname"
                                            : "the plugin would see the host's hostname"))
        }
        if !HostCapabilities.seccompUserNotification {
            shortfalls.append(Shortfall(missing: "seccomp user notification (kernel 5.0+)",
                                        meaning: "the sandbox filter cannot be installed; Brane needs it to stop and name forbidden calls"))
        }
        self.shortfalls = shortfalls
    }

    /// Refuses to start when the sandbox would be weaker than the tier requires, unless the
    /// development opt-out is set; then it says so through `SandboxEvents` on every start.
    func checkStrength() throws {
        guard !shortfalls.isEmpty else { return }
        guard settings.allowWeaker else {
            throw SandboxError.weakerThanRequired(pluginID: bundle.manifest.id, tier: bundle.manifest.tier, shortfalls: shortfalls)
        }
        SandboxEvents.report(.weakerStart(pluginID: bundle.manifest.id, neuron: neuron, shortfalls: shortfalls,
                                          source: settings.optOutSource ?? SandboxSettings.optOutName))
    }

    /// What the runner reported it did not apply, checked against the plan — and, for the network
    /// namespace, against /proc, so not even a runner bug can leave the host's network shared.
    /// Nil when the instance got everything; the caller refuses (naming the first missing step),
    /// or under the opt-out reports it.
    func missingProtections(_ applied: AppliedSandbox, pid: pid_t) -> (step: SetupStep, text: String)? {
        var missing: [(SetupStep, String)] = []
        if isolateNetwork && (!applied.contains(.networkNamespace) || Self.sharesHostNetwork(pid)) {
            missing.append((.networkNamespace, "an empty network namespace"))
        }
        if !applied.contains(.utsNamespace) { missing.append((.utsNamespace, "a UTS namespace")) }
        if landlock.abi != nil && !applied.contains(.landlock) { missing.append((.landlock, "Landlock")) }
        if switchesIdentity && !applied.contains(.identity) { missing.append((.identitySwitch, "its own uid and gid")) }
        guard let first = missing.first else { return nil }
        return (first.0, "the instance started without " + missing.map(\.1).joined(separator: ", "))
    }

    private static let hostNetwork = networkNamespace("/proc/self/ns/net")
    private static func sharesHostNetwork(_ pid: pid_t) -> Bool { networkNamespace("/proc/\(pid)/ns/net") == hostNetwork }
    /// The namespace a /proc ns link names (`net:[4026531840]`), read with readlink(2): on every start's path.
    private static func networkNamespace(_ link: String) -> [UInt8]? {
        var target = [UInt8](repeating: 0, count: 64)
        let count = target.withUnsafeMutableBufferPointer { readlink(link, $0.baseAddress!, $0.count) }
        return count > 0 && count < target.count ? Array(target[..<count]) : nil
    }

    /// Where the descriptor the library returned contradicts the manifest (kind, version, ABI):
    /// the manifest is what was reviewed and signed, so a plugin that says otherwise does not run.
    func descriptorMismatch(_ ready: ReadyReport) -> String? {
        let m = bundle.manifest
        var lies: [String] = []
        if ready.kind != m.kind { lies.append("kind \(ready.kind?.rawValue ?? "unknown") (the manifest says \(m.kind.rawValue))") }
        if ready.version != m.version.description { lies.append("version \(ready.version) (the manifest says \(m.version))") }
        if let problem = ready.abi.incompatibilityWithHost {
            lies.append(problem)
        } else if ready.abi.minor < m.abi.minor {
            lies.append("ABI \(ready.abi), older than the \(m.abi) the manifest declares")
        }
        return lies.isEmpty ? nil : "the library's descriptor reports " + lies.joined(separator: "; ")
    }

    /// The first part of `path` an instance cannot reach: on a root host its uid is its own, so
    /// every file is someone else's, and its gid is the plugin's (`pluginGID`). Each directory on
    /// the way, links resolved first, must grant it search (x), and the last component `last`
    /// (4: read, 1: search), by the group bits when the file's group is the plugin's gid and by
    /// the "other" bits otherwise — as the kernel decides (ACLs aside). Without this check a closed
    /// directory surfaced as dlopen's bare "Permission denied".
    private static func closedToInstance(_ path: String, gid: UInt32, last: mode_t) -> (path: String, mode: mode_t)? {
        guard let resolved = realpath(path, nil) else { return nil }  // a missing file is reported where it is opened
        defer { free(resolved) }
        let components = String(cString: resolved).split(separator: "/")
        var prefix = ""
        for (index, component) in components.enumerated() {
            prefix += "/" + component
            var info = stat()
            guard stat(prefix, &info) == 0 else { return nil }
            let bits = info.st_gid == gid ? (info.st_mode >> 3) & 7 : info.st_mode & 7
            let needed = index == components.count - 1 ? last : 1
            if bits & needed != needed { return (prefix, info.st_mode & 0o7777) }
        }
        return nil
    }

    /// The gid every instance of plugin `id` runs under on a root host: base + a hash of the id.
    static func pluginGID(_ id: String, settings: SandboxSettings) -> UInt32 {
        let hash = id.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 }  // FNV-1a
        return settings.identityBase + hash % SandboxSettings.identityRangeSize
    }

    /// The uid and gid of the instance with this runner pid, on a root host: the uid is the
    /// instance's own (base + pid, unique while it lives), so RLIMIT_NPROC bounds its threads and
    /// no two instances can signal or trace each other; the gid is the plugin's (base + a hash of
    /// its id), so its instances share what they write into its declared write paths.
    func identity(runnerPID: pid_t) -> (uid: UInt32, gid: UInt32)? {
        guard switchesIdentity else { return nil }
        return (settings.identityBase + UInt32(runnerPID) % SandboxSettings.identityRangeSize, Self.pluginGID(bundle.manifest.id, settings: settings))
    }

    /// Lets the plugin's gid write its declared write directories: each is opened as the runner
    /// will open it, without following any link (a tree changed after validation cannot redirect
    /// this to another file), and, when it is a directory that belongs to the host's user, becomes
    /// group-owned by the gid, group-writable and set-gid, so the plugin's instances share it.
    /// Files are never changed: a declared file must already be writable by the gid.
    func grantWritePaths(gid: UInt32) {
        for rule in landlock.paths where rule.writable {
            let relative = rule.entry?.hasPrefix("/") == false
            let fd = brane_open_without_links(relative ? bundle.directory : nil, rule.wirePath)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, info.st_uid == geteuid(), (info.st_mode & S_IFMT) == S_IFDIR else { continue }
            _ = fchown(fd, uid_t.max, gid)
            _ = fchmod(fd, (info.st_mode & 0o7777) | 0o2070)
        }
    }

    /// The SETUP frame payload, in the order the runner's read_setup takes it.
    func setupPayload(seccompProgram: [UInt8], serveProgram: [UInt8], identity: (uid: UInt32, gid: UInt32)?) -> [UInt8] {
        var bytes = [UInt8]()
        var flags: UInt32 = isolateNetwork ? UInt32(BRANE_SETUP_ISOLATE_NETWORK) : 0
        if settings.allowWeaker { flags |= UInt32(BRANE_SETUP_ALLOW_WEAKER) }
        if identity != nil { flags |= UInt32(BRANE_SETUP_SWITCH_IDENTITY) }
        bytes.appendLittleEndian(flags)
        bytes.appendLittleEndian(callFrameLimit)
        for limit in [rlimits.addressSpaceBytes, rlimits.cpuSeconds, rlimits.openFiles, rlimits.fileSizeBytes, rlimits.processes] {
            bytes.appendLittleEndian(limit)
        }
        bytes.appendLittleEndian(identity?.uid ?? 0)
        bytes.appendLittleEndian(identity?.gid ?? 0)
        bytes.appendLittleEndian(Int32(landlock.abi ?? 0))
        bytes.appendLittleEndian(landlock.handledFilesystem)
        bytes.appendLittleEndian(landlock.handledNetwork)
        bytes.appendLittleEndian(landlock.scoped)
        bytes.appendLittleEndian(UInt32(landlock.paths.count))
        for rule in landlock.paths {
            bytes.appendLittleEndian(rule.access)
            bytes.appendLittleEndian(rule.declared ? UInt32(BRANE_PATH_DECLARED) : 0)
            bytes.appendShortString(rule.wirePath)
        }
        for program in [seccompProgram, serveProgram] {
            bytes.appendLittleEndian(UInt32(program.count / 8))
            bytes += program
        }
        bytes.appendShortString(bundle.libraryPath)
        bytes.appendShortString(bundle.manifest.id)
        let config = Array(config.serialized().utf8)
        bytes.appendLittleEndian(UInt32(config.count))
        bytes += config
        bytes.appendShortString(bundle.directory)
        return bytes
    }

    /// The LD_PRELOAD list for `bundle`'s library: each Swift runtime or Foundation library it needs
    /// (`DT_NEEDED`, a plain name of the toolchain's own: `libswift…`, `libFoundation…`,
    /// `lib_Foundation…`, `libdispatch`, `libBlocksRuntime`), as a path in the host's runtime
    /// directory; nil for a plugin that does not link libswiftCore, or that ships its own beside
    /// its library. A hostile library can name only what the toolchain installed, never a path.
    /// LD_PRELOAD splits at spaces and colons, so a directory holding one preloads nothing. With no
    /// runtime to give it, a Swift plugin is refused here, as the host's problem, not started to die.
    static func swiftRuntimePreload(_ bundle: PluginBundle) throws(SandboxError) -> String? {
        let needed = ELFDependencies.needed(bundle.libraryPath)
        let beside = URL(fileURLWithPath: bundle.libraryPath).deletingLastPathComponent().appendingPathComponent("libswiftCore.so").path
        guard needed.contains("libswiftCore.so"), !FileManager.default.fileExists(atPath: beside) else { return nil }
        guard let directory = swiftRuntimeDirectory else {
            throw .swiftRuntimeNotFound(pluginID: bundle.manifest.id, directory: toolchainSwiftRuntimeDirectory)
        }
        guard !directory.contains(" "), !directory.contains(":") else { return nil }
        let runtime = needed.filter { name in
            ["libswift", "libFoundation", "lib_Foundation", "libdispatch.", "libBlocksRuntime."].contains { name.hasPrefix($0) }
                && name.hasSuffix(".so") && !name.contains("/") && !name.contains(" ") && !name.contains(":")
        }
        let paths = runtime.map { "\(directory)/\($0)" }.filter(isFile)
        return paths.contains("\(directory)/libswiftCore.so") ? paths.joined(separator: " ") : nil
    }

    /// Where the toolchain's libswiftCore.so lives, so Swift plugins can load it under Landlock: the
    /// copy this process runs on or, for the CLI, which links the runtime in (Package.swift), the
    /// one of the toolchain that built it (ToolchainPlugin).
    static let swiftRuntimeDirectory: String? = {
        let loaded = brane_library_defining("swift_retain").map { String(cString: $0) }
        let directory = loaded.flatMap { $0.hasSuffix("/libswiftCore.so") ? URL(fileURLWithPath: $0).deletingLastPathComponent().path : nil }
            ?? toolchainSwiftRuntimeDirectory
        return isFile("\(directory)/libswiftCore.so") ? directory : nil
    }()

    private static func isFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }
}

extension Optional where Wrapped == [String] {
    var orEmpty: [String] { self ?? [] }
}
