import Glibc
import PluginABI

/// What a plugin declares about itself in `manifest.yaml`.
public struct Manifest: Sendable, Codable, Equatable {
    public static let apiVersion = "brane.dev/v1"

    public var apiVersion: String
    public var kind: PluginKind
    public var id: String
    public var version: SemanticVersion
    public var abi: ABIVersion
    public var library: String
    public var description: String
    public var tier: PrivacyTier
    public var resources: Resources
    public var filesystem: FilesystemAccess
    public var network: NetworkAccess
    public var tools: [ToolDeclaration]
    public var sensor: SensorSettings?
    public var scanner: ScannerSettings?
    public var specialist: SpecialistSettings?
    /// Passed to the plugin's init through the host API.
    public var config: JSONValue

    public func tool(named name: String) -> ToolDeclaration? { tools.first { $0.name == name } }
}

public enum PluginKind: String, Sendable, Codable, CaseIterable {
    case specialist, synapse, sensor, scanner

    init?(abiValue: UInt32) {
        switch abiValue {
        case UInt32(BRANE_KIND_SPECIALIST.rawValue): self = .specialist
        case UInt32(BRANE_KIND_SYNAPSE.rawValue): self = .synapse
        case UInt32(BRANE_KIND_SENSOR.rawValue): self = .sensor
        case UInt32(BRANE_KIND_SCANNER.rawValue): self = .scanner
        default: return nil
        }
    }

    /// The method the host calls for this kind's main job.
    public var primaryMethod: String {
        switch self {
        case .specialist: "specialist/consult"
        case .synapse: "tools/call"
        case .sensor: "sensor/sample"
        case .scanner: "scanner/scan"
        }
    }
}

/// How sensitive the data a plugin handles is, and so how tightly it is sandboxed.
public enum PrivacyTier: Int, Sendable, Codable, Comparable, CaseIterable, CustomStringConvertible {
    /// Handles sensitive data (PHI/PII): no network at all.
    case sensitive = 0
    /// Local only: may connect to loopback.
    case local = 1
    /// May connect out to declared hosts.
    case external = 2

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .sensitive: "0 (sensitive: no network)"
        case .local: "1 (local: loopback only)"
        case .external: "2 (external: declared hosts)"
        }
    }
}

public struct ABIVersion: Sendable, Codable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public static let host = ABIVersion(major: Int(BRANE_ABI_MAJOR), minor: Int(BRANE_ABI_MINOR))
    public var description: String { "\(major).\(minor)" }

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// "MAJOR.MINOR", each in decimal digits only: `Int` alone would also take "+1" and "-0".
    public init?(_ text: String) {
        let parts = text.split(separator: "." as Character, omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
              let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        self.init(major: major, minor: minor)
    }

    /// Why this host cannot load a plugin built for this ABI, or nil when it can — the one rule
    /// of brane_plugin.h (`brane_abi_problem`), which the runner applies to descriptors too.
    public var incompatibilityWithHost: String? {
        guard let major = UInt16(exactly: major), let minor = UInt16(exactly: minor) else {
            return "plugin ABI \(self) is out of range"
        }
        return brane_abi_problem(major, minor).map { "plugin ABI \(self), host ABI \(Self.host): " + String(cString: $0) }
    }
}

public struct Resources: Sendable, Codable, Equatable {
    /// Address-space limit (RLIMIT_AS), bytes.
    public var memoryBytes: UInt64 = 512 << 20
    /// CPU time over the instance's life (RLIMIT_CPU), seconds.
    public var cpuSeconds: UInt64 = 60
    /// Wall-clock limit of one call; the instance is killed when it passes.
    public var callTimeoutMilliseconds: Int = 5000
    /// Largest reply the host accepts, bytes.
    public var maxOutputBytes: Int = 1 << 20
    /// RLIMIT_NOFILE.
    public var openFiles: UInt64 = 64
    /// Largest file the plugin may write (RLIMIT_FSIZE); 0 unless it declares write paths.
    public var maxFileSizeBytes: UInt64 = 0
    /// RLIMIT_NPROC: threads, since seccomp forbids new processes. Enforced by the kernel for non-root hosts only.
    public var threads: UInt64 = 32
}

public struct FilesystemAccess: Sendable, Codable, Equatable {
    public var read: [String] = []
    public var write: [String] = []
    /// May read filesystem usage (statfs: sizes and free space, as `df` shows), which Landlock does not govern.
    public var usage = false
}

public struct NetworkAccess: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable, CaseIterable { case none, loopback, hosts }
    public struct Endpoint: Sendable, Codable, Equatable {
        public var host: String
        public var port: Int
    }
    public var mode: Mode = .none
    public var endpoints: [Endpoint] = []
    /// Absolute paths of unix sockets the host may connect to for the plugin (tiers 1 and 2).
    public var unixSockets: [String] = []
    /// Every declared destination as people read it: `host:port` and unix socket paths.
    public var destinations: [String] { endpoints.map { "\($0.host):\($0.port)" } + unixSockets }
    /// Reads the machine's network statistics (/proc/net): the plugin keeps the host's network
    /// namespace instead of an empty one. It still may not create sockets (no tier may).
    public var observe = false

    /// The declared endpoint `host:port` names, if any: the one comparison the tool-argument check
    /// and the connection broker share. Names compare case-insensitively, IPv6 with or without brackets.
    public func endpoint(host: String, port: Int) -> Endpoint? {
        let wanted = Self.canonicalHost(host)
        return endpoints.first { Self.canonicalHost($0.host) == wanted && $0.port == port }
    }

    static func canonicalHost(_ host: String) -> String {
        let lowered = host.lowercased()
        return lowered.hasPrefix("[") && lowered.hasSuffix("]") ? String(lowered.dropFirst().dropLast()) : lowered
    }

    /// Whether a declared host is this machine (what tier 1 may reach): `localhost`, or a literal
    /// address in 127.0.0.0/8 or ::1 — never a name that merely starts with "127.".
    public static func isLoopback(_ host: String) -> Bool {
        let host = canonicalHost(host)
        var v4 = in_addr(), v6 = in6_addr()
        if host == "localhost" || host == "::1" { return true }
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        return inet_pton(AF_INET6, host, &v6) == 1 && withUnsafeBytes(of: v6) { $0.elementsEqual([UInt8](repeating: 0, count: 15) + [1]) }
    }

    /// Why `path` cannot name a unix socket the host connects to, or nil: absolute, plain
    /// components (no `.`, `..` or empty ones) and short enough for sun_path.
    public static func unixSocketPathProblem(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return "a unix socket must be an absolute path, found \"\(path)\"" }
        guard path.utf8.count < 108 else { return "a unix socket path may be at most 107 bytes" }
        let components = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }),
              !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            return "a unix socket path must be plain: no empty, '.' or '..' components and no control characters"
        }
        return nil
    }
}

public struct ToolDeclaration: Sendable, Codable, Equatable {
    public var name: String
    public var description: String
    public var inputSchema: JSONValue

    /// Why `name` is not a tool name (MCP's: 1-64 ASCII letters, digits, '_' or '-'), or nil.
    public static func nameProblem(_ name: String) -> String? {
        let valid = (1...64).contains(name.utf8.count) && name.utf8.allSatisfy {
            (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
        }
        return valid ? nil : "tool names are 1-64 letters, digits, '_' or '-' (MCP), found \"\(UntrustedText.sanitized(name, limit: 80))\""
    }
}

public struct SensorSettings: Sendable, Codable, Equatable {
    public var intervalSeconds: Double
    public var thresholds: [String: Double]
}

public struct ScannerSettings: Sendable, Codable, Equatable {
    public var targets: [String]
}

public struct SpecialistSettings: Sendable, Codable, Equatable {
    public var domains: [String]
    /// Event kinds the specialist's rules read (`specialist/event`).
    public var consumes: [String]
    /// Specialists it may consult through the host; any other consult is refused.
    public var consults: [String] = []
    /// Complex-event rules it evaluates; their parameters live in `config`.
    public var rules: [RuleDeclaration] = []
    /// How many of the latest events its rules' state depends on. The host keeps that many in the
    /// observation store and replays them into every new instance, so a restart, a reload or a
    /// kill does not reset a baseline. Nil: the rules keep no state across events.
    public var window: Int? = nil
    /// The most events a window may hold (a replay of 10,000 events costs well under a second).
    public static let windowLimit = 10_000
}

/// A rule a specialist evaluates over the events it is fed; firing yields an alert.
public struct RuleDeclaration: Sendable, Codable, Equatable {
    public var id: String
    public var description: String
}
