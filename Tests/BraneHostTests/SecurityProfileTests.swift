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
        "capset", "bind", "listen", "accept", "accept4", "tkill", "memfd_create", "pidfd_open", "open_by_handle_at",
        // No plugin creates or addresses a socket: the host connects for it (ABI 1.2).
        "socket", "connect", "sendmsg", "sendmmsg", "socketpair"]
    static let needArgumentRules: Set<String> = ["clone", "socket", "mmap", "mprotect", "prctl", "ioctl", "kill",
        "tgkill", "fcntl", "futex", "openat", "getrandom", "prlimit64", "seccomp", "sendto", "recvmsg"]
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

    /// Tier 0 may only receive on the runner's own socket (fd 3), where a brokered stream would arrive — and the host never sends one.
    func testTierZeroHasNoNetworkSyscallButReceivingOnItsOwnSocket() {
        let tierZero = profiles[0].1
        let allowed = tierZero.syscalls.filter { $0.action == "SCMP_ACT_ALLOW" && !Set($0.names).isDisjoint(with: Self.networkSyscalls) }
        XCTAssertEqual(allowed.map(\.names), [["recvmsg"]])
        XCTAssertEqual(allowed.first?.args?.map { [$0.index, UInt32($0.value)] }, [[0, 3]], "recvmsg(3, …) only")
    }

    func testEveryTierRunsInAnEmptyNetworkNamespace() {
        for (tier, profile) in profiles { XCTAssertTrue(profile.brane.isolateNetwork, "tier \(tier.rawValue)") }
    }

    /// Tiers 1 and 2 send only without an address and without MSG_FASTOPEN, which would connect.
    func testSendingCarriesNoAddress() {
        for (tier, profile) in profiles.dropFirst() {
            let sendto = profile.syscalls.filter { $0.names.contains("sendto") }
            XCTAssertEqual(sendto.count, 1, "tier \(tier.rawValue)")
            let args = sendto.first?.args ?? []
            XCTAssertTrue(args.contains { $0.index == 4 && $0.op == "SCMP_CMP_EQ" && $0.value == 0 }, "no destination address")
            XCTAssertTrue(args.contains { $0.index == 3 && $0.op == "SCMP_CMP_MASKED_EQ" && $0.value == 0x2000_0000 && $0.valueTwo == 0 }, "no MSG_FASTOPEN")
        }
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

    /// An instance's program made from its profile's template is exactly the one compiled for it.
    func testATemplateProgramIsTheCompiledOneForEveryPID() throws {
        var patched = 0
        for (tier, profile) in profiles {
            for declared in [[], ["filesystem.write"], ["filesystem.usage"], ["filesystem.write", "filesystem.usage"]] as [Set<String>] {
                let template = try XCTUnwrap(try SeccompCompiler.PIDTemplate(profile, declared: declared), "tier \(tier.rawValue) \(declared)")
                patched += template.pidOffsets.count
                for pid: Int32 in [1, 300, 4242, 65536, 4_194_303] {
                    let compiled = try SeccompCompiler.compile(profile, options: .init(selfPID: pid, declared: declared))
                    XCTAssertEqual(template.program(for: pid), compiled, "tier \(tier.rawValue) \(declared) pid \(pid)")
                    XCTAssertEqual(try SeccompCompiler.program(profile, options: .init(selfPID: pid, declared: declared)), compiled)
                }
            }
        }
        XCTAssertGreaterThan(patched, 0, "the profiles compare arguments with the instance's pid, so a template has places for it")
    }

    /// A pid compared by order (libseccomp splits it into 32-bit words and jumps on each) is
    /// patched as exactly as one compared for equality.
    func testAPIDComparedByOrderIsPatchedAsExactly() throws {
        var profile = profiles[0].1
        profile.syscalls.append(.init(names: ["getpriority"], action: "SCMP_ACT_ALLOW", errnoRet: nil,
                                      args: [.init(index: 1, value: 0, valueTwo: nil, op: "SCMP_CMP_GT", braneValue: "self-pid", braneWidth: nil)],
                                      comment: nil, braneWhen: nil))
        for pid: Int32 in [7, 4242, 4_194_303] {
            let compiled = try SeccompCompiler.compile(profile, options: .init(selfPID: pid, declared: []))
            XCTAssertEqual(try SeccompCompiler.program(profile, options: .init(selfPID: pid, declared: [])), compiled, "pid \(pid)")
        }
    }
}
