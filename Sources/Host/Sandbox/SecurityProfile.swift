import Foundation

/// A seccomp profile in the OCI/Docker format (`defaultAction`, `architectures`,
/// `syscalls[{names, action, errnoRet, args}]`) — readable by runc, crun and Kubernetes —
/// plus a `brane` object with what a seccomp profile cannot say: the tier it serves, the
/// network namespace, and the read-only paths every plugin of the tier needs.
public struct SecurityProfile: Decodable, Sendable, Hashable {
    public var defaultAction: String
    public var architectures: [String]
    public var syscalls: [Rule]
    public var brane: BraneKeys

    public struct Rule: Decodable, Sendable, Hashable {
        public var names: [String]
        public var action: String
        public var errnoRet: UInt32?
        public var args: [Argument]?
        public var comment: String?
        /// Brane: the rule applies only when the manifest declares this, e.g. "filesystem.write".
        public var braneWhen: String?
    }

    public struct Argument: Decodable, Sendable, Hashable {
        public var index: UInt32
        public var value: UInt64
        public var valueTwo: UInt64?
        public var op: String
        /// Brane: "self-pid" compares with the sandboxed process's own pid (known only after spawn).
        public var braneValue: String?
        /// Brane: 32 for an `int` argument (a descriptor), which the kernel truncates: the comparison
        /// must hold for the low 32 bits whatever the high ones say. Only with SCMP_CMP_NE.
        public var braneWidth: Int?
    }

    public struct BraneKeys: Decodable, Sendable, Hashable {
        public var tier: Int
        public var isolateNetwork: Bool
        public var landlock: LandlockKeys
        public var comment: String?
    }

    public struct LandlockKeys: Decodable, Sendable, Hashable {
        /// Read-only paths every plugin of this tier needs (system libraries, what the runtimes read at start-up).
        public var read: [String]
    }

    public static func load(path: String) throws -> SecurityProfile {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try JSONDecoder().decode(SecurityProfile.self, from: data)
        } catch {
            throw SandboxError.badProfile(path: path, reason: "\(error)")
        }
    }
}

public enum SandboxError: Error, CustomStringConvertible {
    case badProfile(path: String, reason: String)
    case profileNotFound(tier: PrivacyTier, searched: [String])
    case runnerNotFound(searched: [String])
    case libraryNotFound(name: String, searched: [String])
    case weakerThanRequired(pluginID: String, tier: PrivacyTier, shortfalls: [SandboxPlan.Shortfall])
    case closedToInstance(pluginID: String, path: String, mode: UInt32)
    case swiftRuntimeNotFound(pluginID: String, directory: String)

    public var description: String {
        switch self {
        case .badProfile(let path, let reason): "security profile \(path) is invalid: \(reason)"
        case .profileNotFound(let tier, let searched):
            "no security profile for tier \(tier.rawValue); looked in \(searched.joined(separator: ", ")) (set BRANE_PROFILES)"
        case .runnerNotFound(let searched):
            "brane-sandbox not found; looked in \(searched.joined(separator: ", ")) (build it with `swift build`, or set BRANE_SANDBOX_RUNNER)"
        case .libraryNotFound(let name, let searched):
            "plugin library \(name) not found; looked in \(searched.joined(separator: ", ")) (build the plugin, or set BRANE_LIBRARY_PATH)"
        case .closedToInstance(let id, let path, let mode):
            "\(id) cannot start: as brane runs as root, each instance runs as a uid of its own, and \(path) "
                + "(mode 0\(String(mode, radix: 8))) is closed to it; open it to others (chmod o+rx \(path)) "
                + "or keep the plugin in a directory others may read"
        case .swiftRuntimeNotFound(let id, let directory):
            "\(id) is a Swift plugin and needs the Swift runtime, which is not in \(directory), where the toolchain that built "
                + "Brane keeps it; install that toolchain there, or ship the runtime beside the plugin's library"
        case .weakerThanRequired(let id, let tier, let shortfalls):
            "refusing to start \(id): this host cannot give it the sandbox tier \(tier.rawValue) requires:\n"
                + shortfalls.map { "  - missing \($0.missing): \($0.meaning)" }.joined(separator: "\n")
                + "\nRun `brane doctor` for details. For development only, --\(SandboxSettings.optOutName) "
                + "(or \(SandboxSettings.optOutVariable)=1) runs it anyway, with a warning on every start and an audit entry."
        }
    }
}
