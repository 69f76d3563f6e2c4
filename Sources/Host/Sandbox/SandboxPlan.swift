import CBraneSystem
import Foundation

/// Everything the runner applies for one plugin: the tier's profile, the Landlock ruleset,
/// the rlimits and the network namespace — derived from the manifest, the profile and the
/// kernel, and shown to people by `brane plugin inspect` before anything runs.
public struct SandboxPlan: Sendable {
    public let bundle: PluginBundle
    public let profilePath: String
    public let profile: SecurityProfile
    public let landlock: LandlockPlan
    public let rlimits: RLimits
    public let isolateNetwork: Bool
    /// Manifest facts that switch on `braneWhen` rules in the profile.
    public let declared: Set<String>
    /// Handed to the plugin's init: the manifest's `config`, or what a neuron or test sets instead.
    public var config: JSONValue
    /// The wall time one call may take: the manifest's callTimeout, or less when a neuron caps it.
    public var callTimeoutMilliseconds: Int
    /// The largest CALL frame the runner accepts (the host validates arguments before that).
    public let callFrameLimit: UInt32 = 16 << 20

    public struct RLimits: Sendable, Codable, Equatable {
        public var addressSpaceBytes: UInt64
        public var cpuSeconds: UInt64
        public var openFiles: UInt64
        public var fileSizeBytes: UInt64
        public var processes: UInt64
    }

    public init(bundle: PluginBundle, locator: ResourceLocator = .current, landlockABI: Int? = HostCapabilities.landlockABI) throws {
        let manifest = bundle.manifest
        self.bundle = bundle
        profilePath = try locator.profilePath(for: manifest.tier)
        profile = try SecurityProfile.load(path: profilePath)
        guard profile.brane.tier == manifest.tier.rawValue else {
            throw SandboxError.badProfile(path: profilePath, reason: "its brane.tier is \(profile.brane.tier), expected \(manifest.tier.rawValue)")
        }
        let read = profile.brane.landlock.read + Self.swiftRuntimeDirectory.map { [$0] }.orEmpty
            + [bundle.directory, bundle.libraryPath] + manifest.filesystem.read.map(bundle.absolute)
        let write = manifest.filesystem.write.map(bundle.absolute)
        landlock = LandlockPlan(abi: landlockABI, read: read, write: write,
                                connectPorts: manifest.network.endpoints.map(\.port))
        let r = manifest.resources
        rlimits = RLimits(addressSpaceBytes: r.memoryBytes, cpuSeconds: r.cpuSeconds, openFiles: r.openFiles,
                          fileSizeBytes: r.maxFileSizeBytes, processes: r.threads)
        // Seccomp still forbids sockets at tier 0; observing only keeps /proc/net showing the machine.
        isolateNetwork = profile.brane.isolateNetwork && !manifest.network.observe
        declared = Set((manifest.filesystem.write.isEmpty ? [] : ["filesystem.write"]) + (manifest.filesystem.usage ? ["filesystem.usage"] : []))
        config = manifest.config
        callTimeoutMilliseconds = r.callTimeoutMilliseconds
    }

    /// The SETUP frame payload, in the order the runner's read_setup takes it.
    func setupPayload(seccompProgram: [UInt8]) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.appendLittleEndian(isolateNetwork ? UInt32(BRANE_SETUP_ISOLATE_NETWORK) : 0)
        bytes.appendLittleEndian(callFrameLimit)
        for limit in [rlimits.addressSpaceBytes, rlimits.cpuSeconds, rlimits.openFiles, rlimits.fileSizeBytes, rlimits.processes] {
            bytes.appendLittleEndian(limit)
        }
        bytes.appendLittleEndian(landlock.handledFilesystem)
        bytes.appendLittleEndian(landlock.handledNetwork)
        bytes.appendLittleEndian(landlock.scoped)
        bytes.appendLittleEndian(UInt32(landlock.paths.count))
        for rule in landlock.paths {
            bytes.appendLittleEndian(rule.access)
            bytes.appendShortString(rule.path)
        }
        bytes.appendLittleEndian(UInt32(landlock.ports.count))
        for rule in landlock.ports {
            bytes.appendLittleEndian(rule.access)
            bytes.appendLittleEndian(rule.port)
        }
        bytes.appendLittleEndian(UInt32(seccompProgram.count / 8))
        bytes += seccompProgram
        bytes.appendShortString(bundle.libraryPath)
        bytes.appendShortString(bundle.manifest.id)
        let config = Array(config.serialized().utf8)
        bytes.appendLittleEndian(UInt32(config.count))
        bytes += config
        bytes.appendShortString(URL(fileURLWithPath: bundle.directory).standardizedFileURL.path)
        return bytes
    }

    /// Where libswiftCore.so lives, so Swift plugins can load it under Landlock.
    static let swiftRuntimeDirectory: String? = {
        guard let file = brane_library_defining("swift_retain") else { return nil }
        return URL(fileURLWithPath: String(cString: file)).deletingLastPathComponent().path
    }()
}

extension Optional where Wrapped == [String] {
    var orEmpty: [String] { self ?? [] }
}
