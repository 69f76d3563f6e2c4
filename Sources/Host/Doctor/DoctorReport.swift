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
                            detail: seccomp ? "filters with SECCOMP_RET_KILL_PROCESS" : "unavailable",
                            meaning: seccomp ? "a plugin that makes a forbidden syscall is killed (SIGSYS) before the call runs"
                                : "Brane cannot restrict system calls here and refuses to run plugins"))
        let landlock = HostCapabilities.landlockABI
        checks.append(Check(name: "landlock", ok: landlock != nil, required: true,
                            detail: landlock.map { "ABI \($0)" } ?? "unavailable (kernel < 5.13 or not in the lsm= list)",
                            meaning: landlock.map { abi in
                                "plugins see only allow-listed paths" + (abi >= 4 ? "; TCP connect limited to declared ports" : "; TCP ports NOT restricted (needs ABI 4)")
                                    + (abi >= 6 ? "; no signals or abstract sockets outside the sandbox" : "")
                            } ?? "file access of plugins is not confined; do not run untrusted plugins here"))
        let netns = HostCapabilities.networkNamespaces
        let userns = HostCapabilities.userNamespaces
        checks.append(Check(name: "network namespaces", ok: netns || userns, required: false,
                            detail: netns ? "can create (privileged)" : userns ? "through a user namespace" : "unavailable",
                            meaning: netns || userns ? "tier-0 plugins get an empty network namespace on top of the seccomp ban"
                                : "tier-0 plugins rely on seccomp alone for having no network"))
        let caps = HostCapabilities.effectiveCapabilities ?? 0
        checks.append(Check(name: "host privileges", ok: true, required: false,
                            detail: getuid() == 0 ? "root (capabilities \(String(caps, radix: 16)))" : "unprivileged user",
                            meaning: "every plugin drops all capabilities, including the bounding set, and sets no_new_privs"
                                + (getuid() == 0 ? "; RLIMIT_NPROC is not enforced for root, seccomp's ban on new processes is" : "")))
        let runner = try? locator.runner()
        checks.append(Check(name: "sandbox runner", ok: runner != nil, required: true, detail: runner ?? "not found",
                            meaning: runner != nil ? "plugins can be started" : "build it with `swift build` or set BRANE_SANDBOX_RUNNER"))
        let profiles = PrivacyTier.allCases.compactMap { try? locator.profilePath(for: $0) }
        checks.append(Check(name: "security profiles", ok: profiles.count == PrivacyTier.allCases.count, required: true,
                            detail: profiles.isEmpty ? "not found" : profiles.joined(separator: ", "),
                            meaning: "one seccomp profile per privacy tier (set BRANE_PROFILES to their directory)"))
        return DoctorReport(checks: checks)
    }
}
