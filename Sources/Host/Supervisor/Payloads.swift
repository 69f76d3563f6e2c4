import Glibc
import CBraneSystem

/// CALL: u16 method length, method, input bytes.
func callPayload(method: String, input: [UInt8]) -> [UInt8] {
    var bytes = [UInt8]()
    bytes.reserveCapacity(2 + method.utf8.count + input.count)
    bytes.appendShortString(method)
    bytes += input
    return bytes
}

/// CONSULT: a specialist asking another one, through the host, during a call (ABI 1.1).
public struct ConsultRequest: Equatable, Sendable {
    public var specialistID: String
    public var input: [UInt8]

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let length = reader.u16(), let id = reader.take(Int(length)), !id.isEmpty else {
            throw .malformed(.consult, "missing specialist id")
        }
        specialistID = String(decoding: id, as: UTF8.self)
        input = Array(reader.remaining)
    }
}

/// CONNECT: a plugin asking the host for a connection during a call (ABI 1.2): u16 port, u16 host
/// length, host — a name, an address, or the absolute path of a unix socket with port 0.
public struct ConnectRequest: Equatable, Sendable {
    public var host: String
    public var port: UInt16
    static let hostLimit = 1024

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let port = reader.u16(), let length = reader.u16(), length > 0, Int(length) <= Self.hostLimit,
              let host = reader.take(Int(length)), reader.remaining.isEmpty
        else { throw .malformed(.connect, "\(payload.count) bytes: expected a port, a host of 1 to \(Self.hostLimit) bytes, nothing after") }
        guard let text = String(validating: host, as: UTF8.self) else { throw .malformed(.connect, "the host is not UTF-8") }
        self.host = text
        self.port = port
    }

    /// The destination as people read it (sanitised: it came from the plugin).
    public var destination: String {
        let ipv6 = host.contains(":") && host.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        return UntrustedText.sanitized(isUnixSocket ? host : ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)", limit: 300)
    }

    var isUnixSocket: Bool { host.hasPrefix("/") }
}

/// FILTERED: sent by the runner once the seccomp filter is on and before any plugin code
/// runs — so a plugin cannot forge it — with the listener's fd and what was really applied.
struct FilteredReport: Equatable, Sendable {
    var listenerFD: Int32
    var applied: AppliedSandbox
    /// The Landlock ABI the ruleset was built for; nil when none was enforced.
    var landlockABI: Int?

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let fd = reader.u32(), let applied = reader.u32(), let landlock = reader.i32(), fd < Int32.max
        else { throw .malformed(.filtered, "\(payload.count) bytes, expected 12") }
        listenerFD = Int32(fd)
        self.applied = AppliedSandbox(rawValue: applied)
        landlockABI = landlock > 0 ? Int(landlock) : nil
    }
}

/// The protections an instance really got, as its runner reported them before loading the plugin.
public struct AppliedSandbox: OptionSet, Sendable, Equatable, Codable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let networkNamespace = Self(rawValue: BRANE_APPLIED_NETWORK_NAMESPACE)
    public static let utsNamespace = Self(rawValue: BRANE_APPLIED_UTS_NAMESPACE)
    public static let identity = Self(rawValue: BRANE_APPLIED_IDENTITY)
    public static let landlock = Self(rawValue: BRANE_APPLIED_LANDLOCK)
}

/// What the runner reports once the plugin initialised: the descriptor's own claims, which the
/// host compares with the manifest (the descriptor is the manifest, or the plugin does not run).
public struct ReadyReport: Equatable, Sendable {
    public var kind: PluginKind?
    public var abi: ABIVersion
    public var version: String

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let kind = reader.u32(), let major = reader.u16(), let minor = reader.u16(),
              let length = reader.u16(), let version = reader.take(Int(length))
        else { throw .malformed(.ready, "\(payload.count) bytes, expected a kind, an ABI and a version") }
        self.kind = PluginKind(abiValue: kind)
        abi = ABIVersion(major: Int(major), minor: Int(minor))
        self.version = UntrustedText.sanitized(String(decoding: version, as: UTF8.self), limit: 64)
    }
}

/// FAILED: the setup step the runner stopped at, its errno, and a message.
public struct SetupFailure: Equatable, Sendable, CustomStringConvertible {
    public var step: SetupStep
    public var errno: Int32
    public var message: String

    init(step: SetupStep, errno: Int32, message: String) {
        self.step = step
        self.errno = errno
        self.message = message
    }

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let step = reader.u32(), let error = reader.i32() else {
            throw .malformed(.failed, "\(payload.count) bytes, expected at least 8")
        }
        self.step = SetupStep(rawValue: step) ?? .unknown
        errno = error
        // A plugin can write a FAILED frame itself: its text is capped and sanitised like a log line.
        message = UntrustedText.sanitized(String(decoding: reader.remaining, as: UTF8.self), limit: 512)
    }

    public var description: String {
        let cause = errno != 0 ? " (\(String(cString: strerror(errno))))" : ""
        return "\(step.description): \(message)\(cause)"
    }
}

public enum SetupStep: UInt32, Sendable, CustomStringConvertible {
    case unknown = 0, setupFrame, rlimits, networkNamespace, noNewPrivs, capabilities, landlock, seccomp,
        dlopen, entrySymbol, abiCheck, identity, initialize, identitySwitch, utsNamespace, servePhase, declaredPath

    /// Failures that a restart cannot fix: the library itself is wrong, or this host cannot sandbox it.
    public var isPermanent: Bool { isSandboxStep || [.dlopen, .entrySymbol, .abiCheck, .identity, .declaredPath].contains(self) }

    /// A protection the kernel refused: the host cannot run the plugin as its tier requires (exit 4).
    public var isSandboxStep: Bool {
        [.rlimits, .networkNamespace, .noNewPrivs, .capabilities, .landlock, .seccomp, .identitySwitch, .utsNamespace, .servePhase].contains(self)
    }

    public var description: String {
        switch self {
        case .unknown: "setup"
        case .setupFrame: "reading the setup frame"
        case .rlimits: "setting rlimits"
        case .networkNamespace: "entering an empty network namespace"
        case .noNewPrivs: "setting no_new_privs"
        case .capabilities: "dropping capabilities"
        case .landlock: "applying Landlock"
        case .seccomp: "installing the seccomp filter"
        case .dlopen: "loading the plugin library"
        case .entrySymbol: "finding brane_plugin_entry"
        case .abiCheck: "checking the plugin ABI"
        case .identity: "checking the plugin identity"
        case .initialize: "initialising the plugin"
        case .identitySwitch: "switching to the instance's own uid and gid"
        case .utsNamespace: "entering a UTS namespace"
        case .servePhase: "narrowing the filter for the serve phase"
        case .declaredPath: "opening a declared filesystem entry"
        }
    }
}

/// LOG: u32 level, message — one line, at most `messageLimit` bytes, sanitised here, where it
/// enters the host, whatever the runner did (a plugin can write frames to its socket itself).
public struct PluginLogLine: Sendable {
    public enum Level: UInt32, Sendable { case debug = 0, info, warning, error }
    public static let messageLimit = 4096
    public var level: Level
    public var message: String

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let level = reader.u32() else { throw .malformed(.log, "no level") }
        self.level = Level(rawValue: level) ?? .info
        let text = reader.remaining
        message = UntrustedText.sanitized(String(decoding: text.prefix(Self.messageLimit), as: UTF8.self), limit: Self.messageLimit)
            + (text.count > Self.messageLimit ? "… [\(text.count - Self.messageLimit) bytes cut]" : "")
    }

    /// A line the host adds to a plugin's log (dropped lines, for one).
    init(hostNote: String) {
        level = .warning
        message = hostNote
    }
}
