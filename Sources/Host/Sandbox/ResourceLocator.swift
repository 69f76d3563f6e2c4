import Foundation

/// Finds what the host needs next to it: the runner, the security profiles, plugin libraries.
/// Environment variables win; then the directory of the running executable (where
/// `swift build` puts brane and the plugin libraries together, and the runner in the host's
/// resource bundle, `Brane_BraneHost.resources/`: CBuildPlugin); then the install layout
/// around it (`scripts/install`: `<prefix>/bin/brane`, `<prefix>/libexec/brane/brane-sandbox`,
/// `<prefix>/share/brane/security-profiles/`); then, for profiles, the nearest ancestor holding
/// `security-profiles/` (a source checkout).
public struct ResourceLocator: Sendable {
    public var runnerPath: String?
    public var profilesDirectory: String?
    public var librarySearchPath: [String]
    /// The directory of the running executable (a build's products, or `<prefix>/bin`).
    public var executableDirectory: String
    /// The Swift plugin kit package out-of-tree Swift plugins depend on (`brane plugin new`).
    public var swiftKitDirectory: String?

    public static let current = ResourceLocator(environment: ProcessInfo.processInfo.environment)

    public init(environment: [String: String]) {
        let executableDirectory = URL(fileURLWithPath: CommandLine.arguments.first.map(Self.resolvedExecutable) ?? ".")
            .deletingLastPathComponent().path
        self.executableDirectory = executableDirectory
        let prefix = URL(fileURLWithPath: executableDirectory).deletingLastPathComponent().path
        let runners = ["\(executableDirectory)/\(Self.builtByCC)/brane-sandbox", "\(prefix)/libexec/brane/brane-sandbox"]
        runnerPath = environment["BRANE_SANDBOX_RUNNER"] ?? runners.first(where: FileManager.default.isExecutableFile(atPath:)) ?? runners[0]
        let installedProfiles = "\(prefix)/share/brane/security-profiles"
        profilesDirectory = environment["BRANE_PROFILES"]
            ?? (FileManager.default.fileExists(atPath: "\(installedProfiles)/tier-0.json") ? installedProfiles : nil)
            ?? Self.ancestor(of: executableDirectory, holding: "security-profiles")
        let installedKit = "\(prefix)/share/brane/swift/BranePluginKit"
        swiftKitDirectory = environment["BRANE_SWIFT_KIT"]
            ?? (FileManager.default.fileExists(atPath: "\(installedKit)/Package.swift") ? installedKit : nil)
        librarySearchPath = (environment["BRANE_LIBRARY_PATH"]?.split(separator: ":").map(String.init) ?? [])
            + [executableDirectory, "\(executableDirectory)/\(Self.builtByCC)"]
    }

    /// Where `swift build` leaves what CBuildPlugin built with cc (the runner, the C plugins),
    /// relative to its products: the host's resource bundle.
    public static let builtByCC = "Brane_BraneHost.resources"

    public func runner() throws -> String {
        guard let runnerPath, FileManager.default.isExecutableFile(atPath: runnerPath) else {
            throw SandboxError.runnerNotFound(searched: [runnerPath ?? "$BRANE_SANDBOX_RUNNER"])
        }
        return runnerPath
    }

    public func profilePath(for tier: PrivacyTier) throws -> String {
        let candidates = [profilesDirectory, "/usr/share/brane/security-profiles"].compactMap { $0 }.map { "\($0)/tier-\(tier.rawValue).json" }
        guard let found = candidates.first(where: FileManager.default.fileExists(atPath:)) else {
            throw SandboxError.profileNotFound(tier: tier, searched: candidates)
        }
        return found
    }

    /// This process's executable, by the kernel's name for it: what a client configuration runs.
    public static var executablePath: String { resolvedExecutable(CommandLine.arguments.first ?? "brane") }

    private static func resolvedExecutable(_ argument0: String) -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? argument0
    }

    private static func ancestor(of directory: String, holding name: String) -> String? {
        var url = URL(fileURLWithPath: directory)
        while url.path != "/" {
            let candidate = url.appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            url.deleteLastPathComponent()
        }
        return nil
    }
}
