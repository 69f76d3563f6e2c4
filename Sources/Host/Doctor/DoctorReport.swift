import Foundation

/// `brane doctor`: each protection Brane relies on, whether this host has it, and what it means.
public struct DoctorReport: Encodable, Sendable {
    public struct Check: Encodable, Sendable {
        public var name: String
        public var ok: Bool
        public var required: Bool
        public var detail: String
        public var meaning: String
    }

    public var checks: [Check]
    /// True when every required check passed.
    public var ready: Bool { checks.allSatisfy { $0.ok || !$0.required } }

    public static func probe(locator: ResourceLocator = .current) -> DoctorReport {
        var checks: [Check] = []
        let seccomp = HostCapabilities.seccompKillProcess
        checks.append(Check(name: "seccomp", ok: seccomp, required: true,
                            detail: seccomp ? "filters available" : "unavailable",
                            meaning: seccomp ? "each tier's filter narrows what a plugin may call (see seccomp user notification)"
                                : "Brane cannot restrict system calls here and refuses to run plugins"))
        let landlock = HostCapabilities.landlockABI
        checks.append(Check(name: "landlock", ok: landlock != nil, required: true,
                            detail: landlock.map { "ABI \($0)" } ?? "unavailable (kernel < 5.13 or not in the lsm= list)",
                            meaning: landlock.map { abi in
                                "plugins see only allow-listed paths" + (abi >= 4 ? "; TCP bind and connect denied beneath seccomp" : "")
                                    + (abi >= 6 ? "; no signals or abstract sockets outside the sandbox" : "")
                            } ?? "file access of plugins would not be confined: Brane refuses to start them (--\(SandboxSettings.optOutName) for development)"))
        let notify = HostCapabilities.seccompUserNotification
        checks.append(Check(name: "seccomp user notification", ok: notify, required: true,
                            detail: notify ? "SECCOMP_RET_USER_NOTIF, listener held by the host" : "unavailable (kernel < 5.0)",
                            meaning: notify ? "a forbidden call is stopped before it runs and reported by name, e.g. socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP)"
                                : "Brane refuses to run plugins here"))
        let netns = HostCapabilities.networkNamespaces
        let namespaces = HostCapabilities.namespaces
        checks.append(Check(name: "namespaces", ok: namespaces, required: true,
                            detail: !namespaces ? "unavailable" : netns ? "can create (privileged)" : "through a user namespace",
                            meaning: namespaces ? "every plugin gets its own UTS namespace and an empty network namespace (the host connects for it)"
                                : "plugins would share the host's network and hostname: Brane refuses to start them (--\(SandboxSettings.optOutName) for development)"))
        let caps = HostCapabilities.effectiveCapabilities ?? 0
        checks.append(Check(name: "host privileges", ok: true, required: false,
                            detail: getuid() == 0 ? "root (capabilities \(String(caps, radix: 16)))" : "unprivileged user",
                            meaning: "every plugin drops all capabilities, including the bounding set, and sets no_new_privs"
                                + (getuid() == 0 ? "; each instance runs under its own uid from \(SandboxSettings.current.identityBase), so resources.threads is enforced"
                                    : "; instances run as this user: resources.threads bounds the user's processes (RLIMIT_NPROC), not each instance's")))
        if !SandboxSettings.current.diagnostics.isEmpty {
            checks.append(Check(name: "host settings", ok: false, required: false,
                                detail: SandboxSettings.current.diagnostics.map(\.description).joined(separator: "; "),
                                meaning: "the settings named there are ignored until the file is fixed"))
        }
        if SandboxSettings.current.allowWeaker {
            checks.append(Check(name: "development opt-out", ok: false, required: false,
                                detail: "set (\(SandboxSettings.current.optOutSource ?? SandboxSettings.optOutName))",
                                meaning: "plugins start even where the sandbox is weaker than their tier requires; every such start warns and is audited"))
        }
        let runner = try? locator.runner()
        checks.append(Check(name: "sandbox runner", ok: runner != nil, required: true, detail: runner ?? "not found",
                            meaning: runner != nil ? "plugins can be started" : "build it with `swift build` or set BRANE_SANDBOX_RUNNER"))
        let swiftRuntime = SandboxPlan.swiftRuntimeDirectory
        checks.append(Check(name: "swift runtime", ok: swiftRuntime != nil, required: false,
                            detail: swiftRuntime ?? "not found in \(toolchainSwiftRuntimeDirectory)",
                            meaning: swiftRuntime != nil ? "Swift plugins load the toolchain's runtime from here, read-only under Landlock"
                                : "Swift plugins are refused (C and Rust ones run): install the toolchain that built Brane there"))
        let zygote = SandboxSettings.current.zygote
        checks.append(Check(name: "instance start", ok: true, required: false,
                            detail: zygote ? "forked by a zygote per plugin" : "each runner spawned (\(SandboxSettings.zygoteVariable)=0 or zygote: false)",
                            meaning: zygote ? "a plugin's runtime is loaded once and shared; each instance still applies its whole sandbox itself "
                                + "(\(SandboxSettings.zygoteVariable)=0 spawns each instead)"
                                : "every instance pays the runner's exec and loads its runtime anew"))
        let profiles = PrivacyTier.allCases.compactMap { try? locator.profilePath(for: $0) }
        checks.append(Check(name: "security profiles", ok: profiles.count == PrivacyTier.allCases.count, required: true,
                            detail: profiles.isEmpty ? "not found" : profiles.joined(separator: ", "),
                            meaning: "one seccomp profile per privacy tier (set BRANE_PROFILES to their directory)"))
        return DoctorReport(checks: checks)
    }
}
