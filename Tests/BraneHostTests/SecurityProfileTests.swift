@testable import BraneHost
import XCTest

/// Lints the profiles in security-profiles/: what they must never allow, and that every
/// dangerous syscall they do allow is narrowed by an argument rule.
final class SecurityProfileTests: XCTestCase {
    let profiles = PrivacyTier.allCases.map { tier in
        (tier, try! SecurityProfile.load(path: try! ResourceLocator.current.profilePath(for: tier)))
    }
    static let neverAllowed: Set<String> = ["execve", "execveat", "ptrace", "io_uring_setup", "io_uring_enter",
        "io_uring_register", "bpf", "mount", "umount2", "unshare", "setns", "keyctl", "add_key", "request_key",
        "init_module", "finit_module", "delete_module", "kexec_load", "perf_event_open", "userfaultfd",
        "process_vm_readv", "process_vm_writev", "chroot", "pivot_root", "fork", "vfork", "setuid", "setgid",
        "capset", "bind", "listen", "accept", "accept4", "tkill", "memfd_create", "pidfd_open", "open_by_handle_at"]
    static let needArgumentRules: Set<String> = ["clone", "socket", "mmap", "mprotect", "prctl", "ioctl", "kill",
        "tgkill", "fcntl", "futex", "openat", "getrandom", "prlimit64", "seccomp"]
    static let networkSyscalls: Set<String> = ["socket", "socketpair", "connect", "sendto", "recvfrom", "sendmsg", "recvmsg",
        "bind", "listen", "accept", "accept4", "getsockopt", "setsockopt"]

    /// Anything not allowed goes to the host's listener, which names the call and kills the instance.
    func testDefaultActionNotifiesTheHost() {
        for (tier, profile) in profiles {
            XCTAssertEqual(profile.defaultAction, "SCMP_ACT_NOTIFY", "tier \(tier.rawValue)")
            XCTAssertEqual(profile.brane.tier, tier.rawValue)
        }
    }

    func testNoProfileAllowsTheForbiddenSyscalls() {
        for (tier, profile) in profiles {
            for rule in profile.syscalls where rule.action == "SCMP_ACT_ALLOW" {
                let forbidden = Set(rule.names).intersection(Self.neverAllowed)
                XCTAssertTrue(forbidden.isEmpty, "tier \(tier.rawValue) allows \(forbidden)")
            }
        }
    }

    func testDangerousSyscallsCarryArgumentRulesAndEveryRuleSaysWhy() {
        for (tier, profile) in profiles {
            for rule in profile.syscalls {
                XCTAssertFalse((rule.comment ?? "").isEmpty, "tier \(tier.rawValue): rule for \(rule.names) has no comment")
                let dangerous = Set(rule.names).intersection(Self.needArgumentRules)
                if !dangerous.isEmpty && rule.action == "SCMP_ACT_ALLOW" && rule.braneWhen == nil {
                    XCTAssertFalse((rule.args ?? []).isEmpty, "tier \(tier.rawValue): \(dangerous) allowed without an argument rule")
                }
            }
        }
    }

    func testTierZeroHasNoNetworkSyscallAtAllAndAnEmptyNamespace() {
        let tierZero = profiles[0].1
        let allowed = Set(tierZero.syscalls.filter { $0.action == "SCMP_ACT_ALLOW" }.flatMap(\.names))
        XCTAssertTrue(allowed.isDisjoint(with: Self.networkSyscalls), "\(allowed.intersection(Self.networkSyscalls))")
        XCTAssertTrue(tierZero.brane.isolateNetwork)
    }

    func testHigherTiersOnlyAddToLowerOnes() {
        func names(_ p: SecurityProfile) -> Set<String> { Set(p.syscalls.filter { $0.action == "SCMP_ACT_ALLOW" }.flatMap(\.names)) }
        XCTAssertTrue(names(profiles[0].1).isSubset(of: names(profiles[1].1)))
        XCTAssertTrue(names(profiles[1].1).isSubset(of: names(profiles[2].1)))
    }

    func testEveryProfileCompilesWithLibseccomp() throws {
        for (tier, profile) in profiles {
            let program = try SeccompCompiler.compile(profile, options: .init(selfPID: 4242, declared: ["filesystem.write"]))
            XCTAssertEqual(program.count % 8, 0)
            XCTAssertGreaterThan(program.count / 8, 50, "tier \(tier.rawValue)")
        }
    }
}
