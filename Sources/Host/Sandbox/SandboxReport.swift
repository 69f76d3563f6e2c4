import Foundation

/// The effective sandbox of one plugin, for people (`text`) and scripts (Encodable).
public struct SandboxReport: Encodable, Sendable {
    public struct PluginSummary: Encodable, Sendable {
        var id: String, kind: String, version: String, abi: String, tier: Int, description: String, library: String
        var tools: [String]
    }
    public struct Seccomp: Encodable, Sendable {
        var profile: String
        var defaultAction: String
        var allowedSyscalls: Int
        var conditionalRules: Int
        var errnoSyscalls: [String]
        var rulesActiveForThisPlugin: Int
    }
    public struct Landlock: Encodable, Sendable {
        var abi: Int?
        var paths: [LandlockPlan.PathRule]
        var scopedSignalsAndAbstractSockets: Bool
    }
    public struct Network: Encodable, Sendable {
        var mode: String
        var endpoints: [String]
        var emptyNamespace: Bool
    }

    public var plugin: PluginSummary
    public var seccomp: Seccomp
    public var landlock: Landlock
    public var rlimits: SandboxPlan.RLimits
    public var callTimeoutMilliseconds: Int
    public var maxOutputBytes: Int
    public var network: Network
    /// "own uid and gid per instance (from N)" on a root host, else the host's user.
    public var identity: String
    /// What this kernel cannot give; the plugin starts only under the development opt-out.
    public var shortfalls: [SandboxPlan.Shortfall]
    public var weakerSandboxAllowed: Bool

    public init(plan: SandboxPlan) {
        let m = plan.bundle.manifest
        plugin = PluginSummary(id: m.id, kind: m.kind.rawValue, version: m.version.description, abi: m.abi.description,
                               tier: m.tier.rawValue, description: m.description, library: plan.bundle.libraryPath,
                               tools: m.tools.map(\.name))
        let active = plan.profile.syscalls.filter { $0.braneWhen.map(plan.declared.contains) ?? true }
        seccomp = Seccomp(profile: plan.profilePath, defaultAction: plan.profile.defaultAction,
                          allowedSyscalls: Set(active.filter { $0.action == "SCMP_ACT_ALLOW" }.flatMap(\.names)).count,
                          conditionalRules: active.filter { !($0.args ?? []).isEmpty }.count,
                          errnoSyscalls: active.filter { $0.action == "SCMP_ACT_ERRNO" }
                              .flatMap { rule in rule.names.map { "\($0) (\(errnoName(rule.errnoRet ?? UInt32(EPERM))))" } }.sorted(),
                          rulesActiveForThisPlugin: active.count)
        landlock = Landlock(abi: plan.landlock.abi, paths: plan.landlock.paths, scopedSignalsAndAbstractSockets: plan.landlock.scoped != 0)
        rlimits = plan.rlimits
        callTimeoutMilliseconds = plan.callTimeoutMilliseconds
        maxOutputBytes = m.resources.maxOutputBytes
        network = Network(mode: m.network.mode.rawValue, endpoints: m.network.destinations,
                          emptyNamespace: plan.isolateNetwork && HostCapabilities.namespaces)
        identity = plan.switchesIdentity
            ? "its own uid (\(plan.settings.identityBase) + runner pid) and the plugin's gid; no supplementary groups"
            : "the host's user (unprivileged host: threads are bounded by RLIMIT_NPROC of that user, not per instance)"
        shortfalls = plan.shortfalls
        weakerSandboxAllowed = plan.settings.allowWeaker
    }

    /// The sandbox in one line, for run reports.
    public var summary: String {
        let network = network.mode == "none" ? "no network" + (self.network.emptyNamespace ? " (empty namespace)" : "")
            : "network \(network.mode) → \(network.endpoints.joined(separator: ", "))"
        let files = landlock.abi.map { _ in "Landlock \(landlock.paths.count) paths" } ?? "NO Landlock"
        let weaker = shortfalls.isEmpty ? "" : "; WEAKER than tier requires: " + shortfalls.map(\.missing).joined(separator: ", ")
        return "seccomp \(seccomp.allowedSyscalls) syscalls (else \(seccomp.defaultAction)), \(files), \(network), "
            + "\(rlimits.addressSpaceBytes >> 20) MiB, no capabilities" + weaker
    }

    public var text: String {
        var lines = [
            "\(plugin.id) \(plugin.version) — \(plugin.kind), ABI \(plugin.abi)",
            "  \(plugin.description)",
            "  library: \(plugin.library)",
        ]
        if !plugin.tools.isEmpty { lines.append("  tools: \(plugin.tools.joined(separator: ", "))") }
        lines += [
            "",
            "Sandbox (privacy tier \(PrivacyTier(rawValue: plugin.tier)!))",
            "  seccomp: \(seccomp.allowedSyscalls) syscalls allowed (\(seccomp.conditionalRules) rules check arguments), "
                + "\(seccomp.errnoSyscalls.joined(separator: ", ")) answer an error, everything else: \(seccomp.defaultAction) "
                + "(stopped in the kernel; the host names the call and kills the plugin)",
            "           after init: no new executable mappings, no further filters (EPERM)",
            "           profile \(seccomp.profile)",
            "  network: mode \(network.mode), no socket syscalls"
                + (network.endpoints.isEmpty ? "" : "; the host connects for it (audited) only to \(network.endpoints.joined(separator: ", "))")
                + (network.emptyNamespace ? "; empty network namespace" : "; the machine's network namespace (observe), read-only"),
            "  identity: \(identity); own UTS namespace (hostname brane-sandbox)",
        ]
        if let abi = landlock.abi {
            lines.append("  landlock (ABI \(abi)): only these paths, everything else EACCES"
                + (landlock.scopedSignalsAndAbstractSockets ? "; no signals or abstract sockets outside the sandbox" : ""))
            for rule in landlock.paths {
                let exists = FileManager.default.fileExists(atPath: rule.path) ? "" : "  (absent)"
                lines.append("    \(rule.writable ? "read-write" : "read-only ") \(rule.path)\(exists)")
            }
        } else {
            lines.append("  landlock: NOT AVAILABLE on this kernel — file access is not confined (see brane doctor)")
        }
        if !shortfalls.isEmpty {
            lines.append(weakerSandboxAllowed
                ? "  WEAKER THAN TIER \(plugin.tier) REQUIRES — runs only because --\(SandboxSettings.optOutName) is set:"
                : "  WILL NOT START: this host cannot give the sandbox tier \(plugin.tier) requires:")
            lines += shortfalls.map { "    missing \($0.missing): \($0.meaning)" }
        }
        let r = rlimits
        lines += [
            "  rlimits: address space \(r.addressSpaceBytes >> 20) MiB, CPU \(r.cpuSeconds) s, \(r.openFiles) open files, "
                + (r.fileSizeBytes == 0 ? "no file writes" : "files up to \(r.fileSizeBytes >> 10) KiB") + ", \(r.processes) threads",
            "  calls: \(callTimeoutMilliseconds) ms wall-clock each (killed past it), replies up to \(maxOutputBytes >> 10) KiB",
            "  always: no_new_privs, every capability dropped (bounding and ambient too), new session, an environment of the host's making only (SWIFT_BACKTRACE off; the Swift runtime preloaded for Swift plugins)",
        ]
        return lines.joined(separator: "\n")
    }
}

private func errnoName(_ code: UInt32) -> String {
    switch Int32(code) {
    case ENOSYS: "ENOSYS"
    case EPERM: "EPERM"
    case EACCES: "EACCES"
    default: "errno \(code)"
    }
}
