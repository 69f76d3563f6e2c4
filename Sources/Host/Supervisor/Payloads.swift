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

/// What the runner reports once the sandbox is on and the plugin initialised.
public struct ReadyReport: Equatable, Sendable {
    /// The kernel's Landlock ABI as the runner saw it; nil without Landlock.
    public var landlockABI: Int?
    public var networkNamespace: NetworkNamespaceState
    public var kind: PluginKind?
    public var abiMajor: UInt16
    public var abiMinor: UInt16

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let landlock = reader.i32(), let netns = reader.u32(), let kind = reader.u32(),
              let major = reader.u16(), let minor = reader.u16()
        else { throw .malformed(.ready, "\(payload.count) bytes, expected 16") }
        landlockABI = landlock > 0 ? Int(landlock) : nil
        networkNamespace = NetworkNamespaceState(rawValue: netns) ?? .unavailable
        self.kind = PluginKind(abiValue: kind)
        abiMajor = major
        abiMinor = minor
    }
}

public enum NetworkNamespaceState: UInt32, Sendable, Codable {
    case notRequested = 0, isolated = 1, unavailable = 2
}

/// FAILED: the setup step the runner stopped at, its errno, and a message.
public struct SetupFailure: Equatable, Sendable, CustomStringConvertible {
    public var step: SetupStep
    public var errno: Int32
    public var message: String

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let step = reader.u32(), let error = reader.i32() else {
            throw .malformed(.failed, "\(payload.count) bytes, expected at least 8")
        }
        self.step = SetupStep(rawValue: step) ?? .unknown
        errno = error
        message = String(decoding: reader.remaining, as: UTF8.self)
    }

    public var description: String {
        let cause = errno != 0 ? " (\(String(cString: strerror(errno))))" : ""
        return "\(step.description): \(message)\(cause)"
    }
}

public enum SetupStep: UInt32, Sendable, CustomStringConvertible {
    case unknown = 0, setupFrame, rlimits, networkNamespace, noNewPrivs, capabilities, landlock, seccomp,
        dlopen, entrySymbol, abiCheck, identity, initialize

    /// Failures that a restart cannot fix: the library itself is wrong.
    public var isPermanent: Bool { [.dlopen, .entrySymbol, .abiCheck, .identity].contains(self) }

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
        }
    }
}

/// LOG: u32 level, message.
public struct PluginLogLine: Sendable {
    public enum Level: UInt32, Sendable { case debug = 0, info, warning, error }
    public var level: Level
    public var message: String

    init(payload: [UInt8]) throws(FrameError) {
        var reader = ByteReader(payload)
        guard let level = reader.u32() else { throw .malformed(.log, "no level") }
        self.level = Level(rawValue: level) ?? .info
        message = String(decoding: reader.remaining, as: UTF8.self)
    }
}
