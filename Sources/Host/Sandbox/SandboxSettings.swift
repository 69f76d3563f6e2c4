import Foundation

/// The host's sandbox settings: the development opt-out and the uid range for instances.
/// Each has one name, spelled as a flag (`--allow-weaker-sandbox`), an environment variable
/// (`BRANE_ALLOW_WEAKER_SANDBOX=1`) and a key in `$BRANE_HOME/host.yaml`
/// (`allow-weaker-sandbox: true`).
public struct SandboxSettings: Sendable {
    public static let optOutName = "allow-weaker-sandbox"
    public static let optOutVariable = "BRANE_ALLOW_WEAKER_SANDBOX"
    public static let identityBaseVariable = "BRANE_SANDBOX_ID_BASE"
    /// The default first uid/gid of the range a root host gives instances: uid = base + the
    /// runner's pid, unique while the instance lives. 2^22 ids (the largest pid_max) from
    /// 0x6B000000, far above any range useradd, systemd or subuid files hand out by default.
    public static let defaultIdentityBase: UInt32 = 0x6B00_0000
    public static let identityRangeSize: UInt32 = 1 << 22

    /// Runs plugins even when this kernel cannot give the sandbox their tier requires.
    public var allowWeaker = false
    public var identityBase = defaultIdentityBase
    /// Instances fork from their plugin's zygote (`InstanceLauncher`); `BRANE_ZYGOTE=0` or
    /// `zygote: false` spawns each runner instead. The sandbox is the same either way.
    public var zygote = true
    public static let zygoteVariable = "BRANE_ZYGOTE"
    /// Where each setting came from, for the warning and the audit entry.
    public var optOutSource: String?

    public init(allowWeaker: Bool = false, identityBase: UInt32 = defaultIdentityBase) {
        self.allowWeaker = allowWeaker
        self.identityBase = identityBase
    }

    /// Set by the CLI when `--allow-weaker-sandbox` is on its command line.
    nonisolated(unsafe) public static var commandLineOptOut = false

    /// The settings in force: flag, then environment, then `$BRANE_HOME/host.yaml`.
    public static let current: SandboxSettings = load(environment: ProcessInfo.processInfo.environment, home: .current)

    /// Problems in `$BRANE_HOME/host.yaml` (file:line:column, did-you-mean), shown by `brane doctor`.
    public var diagnostics: [Diagnostic] = []

    static let hostSettingsSizeLimit = 64 << 10

    static func load(environment: [String: String], home: BraneHome) -> SandboxSettings {
        var settings = SandboxSettings()
        var fileOptOut = false
        var fileBase: Int?
        var info = stat()
        if let bytes = readRegularFile(home.hostSettings, limit: hostSettingsSizeLimit) {
            var f = YAMLFields(file: home.hostSettings)
            let text: String?
            do { text = try YAMLFields.utf8Text(Array(bytes), file: home.hostSettings) } catch { f.adopt(error); text = nil }
            if let text, let node = f.document(text),
               let keys = f.mapping(node, "", known: [optOutName, "sandbox-id-base", "zygote"]) {
                if let n = keys[optOutName] {
                    if let flag = n.bool { fileOptOut = flag } else { f.error(n, optOutName, "expected true or false, found \(f.describe(n))") }
                }
                if let n = keys["zygote"] {
                    if let flag = n.bool { settings.zygote = flag } else { f.error(n, "zygote", "expected true or false, found \(f.describe(n))") }
                }
                if let n = keys["sandbox-id-base"] {
                    fileBase = f.integer(n, "sandbox-id-base", in: 65536...Int(UInt32.max - identityRangeSize))
                }
            }
            settings.diagnostics = f.diagnostics
        } else if lstat(home.hostSettings, &info) == 0 {
            // There, but not read: said, never silently dropped.
            settings.diagnostics = [Diagnostic(.error, file: home.hostSettings, line: 1, column: 1, path: "",
                                               message: "cannot read the file: it is not a regular file of at most \(hostSettingsSizeLimit >> 10) KiB "
                                                   + "(a symbolic link is not followed)")]
        }
        if commandLineOptOut {
            settings.optOutSource = "--\(optOutName)"
        } else if let value = environment[optOutVariable], ["1", "true", "yes"].contains(value.lowercased()) {
            settings.optOutSource = "\(optOutVariable)=\(value)"
        } else if fileOptOut {
            settings.optOutSource = "\(optOutName): true in \(home.hostSettings)"
        }
        settings.allowWeaker = settings.optOutSource != nil
        if let value = environment[zygoteVariable] { settings.zygote = !["0", "false", "no", "off"].contains(value.lowercased()) }
        let base = environment[identityBaseVariable].flatMap { UInt32($0) } ?? fileBase.flatMap { UInt32(exactly: $0) }
        if let base, base >= 65536, base <= UInt32.max - identityRangeSize { settings.identityBase = base }
        return settings
    }
}
