import CBraneSystem
import CSeccomp
import Glibc
import Synchronization

/// Compiles a `SecurityProfile` to a classic-BPF program with libseccomp. The host compiles,
/// the runner only installs: the runner stays small and needs no JSON parser, and the program
/// can name the instance's own pid (for kill/tgkill to itself), which exists only after spawn.
public enum SeccompCompiler {
    public struct Options: Sendable {
        public var selfPID: pid_t
        /// Manifest facts that switch `braneWhen` rules on, e.g. "filesystem.write".
        public var declared: Set<String>

        public init(selfPID: pid_t, declared: Set<String>) {
            self.selfPID = selfPID
            self.declared = declared
        }
    }

    public static func compile(_ profile: SecurityProfile, options: Options) throws -> [UInt8] {
        guard let context = seccomp_init(try action(profile.defaultAction, errno: nil)) else {
            throw SeccompError.libseccomp(call: "seccomp_init", code: -ENOMEM)
        }
        defer { seccomp_release(context) }
        // A syscall from another ABI (i386, x32) on this arch is stopped and named like any unknown one.
        try check(seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_NOTIFY), "seccomp_attr_set")

        for rule in profile.syscalls where rule.braneWhen.map(options.declared.contains) ?? true {
            let ruleAction = try action(rule.action, errno: rule.errnoRet)
            for comparisons in try alternatives(rule, selfPID: options.selfPID) {
                for name in rule.names {
                    let number = seccomp_syscall_resolve_name(name)
                    guard number != __NR_SCMP_ERROR else { throw SeccompError.unknownSyscall(name) }
                    try check(comparisons.withUnsafeBufferPointer {
                        seccomp_rule_add_array(context, ruleAction, number, UInt32($0.count), $0.baseAddress)
                    }, "seccomp_rule_add(\(name))")
                }
            }
        }
        return try export(context)
    }

    /// `compile`'s program, made from a template: compiling costs ~0.4 ms, which is on the critical
    /// path of a start now that a zygote forks the instance in microseconds (there is no exec for it
    /// to overlap). Two instances' programs differ only in the pid, so a profile is compiled twice,
    /// for two pids; where the programs differ is where the pid goes, and another instance's program
    /// is the first with its pid written there. When they differ in any other way — another length,
    /// another instruction, a value that is not the pid — each instance is compiled itself.
    public static func program(_ profile: SecurityProfile, options: Options) throws -> [UInt8] {
        let key = TemplateKey(profile: profile, declared: options.declared)
        if let known = templates.withLock({ $0[key] }) {
            return try known.map { $0.program(for: options.selfPID) } ?? compile(profile, options: options)
        }
        let template = try PIDTemplate(profile, declared: options.declared)
        templates.withLock { templates in
            if templates.count >= 64 { templates.removeAll() }
            templates[key] = .some(template)
        }
        return try template.map { $0.program(for: options.selfPID) } ?? compile(profile, options: options)
    }

    private struct TemplateKey: Hashable {
        var profile: SecurityProfile
        var declared: Set<String>
    }
    /// nil for a profile whose programs differ in more than the pid.
    private static let templates = Mutex<[TemplateKey: PIDTemplate?]>([:])

    /// A compiled program and the byte offsets of each `k` (32 bits) that holds the instance's pid.
    struct PIDTemplate {
        static let pids: (Int32, Int32) = (0x2A5A_5A5A, 0x15A5_A5A5)
        let program: [UInt8]
        let pidOffsets: [Int]

        init?(_ profile: SecurityProfile, declared: Set<String>) throws {
            let first = try compile(profile, options: .init(selfPID: Self.pids.0, declared: declared))
            let second = try compile(profile, options: .init(selfPID: Self.pids.1, declared: declared))
            guard first.count == second.count, first.count % 8 == 0 else { return nil }
            func word(_ bytes: [UInt8], _ at: Int) -> UInt32 { bytes[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
            var offsets: [Int] = []
            for at in stride(from: 0, to: first.count, by: 8) where first[at..<at + 8] != second[at..<at + 8] {
                // struct sock_filter { u16 code; u8 jt, jf; u32 k }: only k may differ, as the pid.
                guard first[at..<at + 4] == second[at..<at + 4], word(first, at + 4) == UInt32(Self.pids.0),
                      word(second, at + 4) == UInt32(Self.pids.1) else { return nil }
                offsets.append(at + 4)
            }
            program = first
            pidOffsets = offsets
            // Sentinels larger than any pid could sort differently from real ones (a libseccomp that
            // orders comparisons by value): the template must also give exactly the programs
            // compiled for the smallest and the largest pid a kernel hands out.
            for pid: Int32 in [1, 4_194_304] where self.program(for: pid) != (try compile(profile, options: .init(selfPID: pid, declared: declared))) {
                return nil
            }
        }

        func program(for pid: Int32) -> [UInt8] {
            var program = program
            for offset in pidOffsets {
                withUnsafeBytes(of: UInt32(bitPattern: pid).littleEndian) { program.replaceSubrange(offset..<offset + 4, with: $0) }
            }
            return program
        }
    }

    /// The comparison lists a rule compiles to, any of which lets the call through. Usually one;
    /// a 32-bit "not equal" (`braneWidth: 32`) becomes 32, because libseccomp compares all 64 bits
    /// and compares an argument only once per rule: `x != v` for an int holds when the high half is
    /// zero and some bit k of the low half differs from v's — one masked comparison per bit k.
    private static func alternatives(_ rule: SecurityProfile.Rule, selfPID: Int32) throws -> [[scmp_arg_cmp]] {
        let arguments = rule.args ?? []
        if let narrow = arguments.first(where: { $0.braneWidth != nil }) {
            guard narrow.braneWidth == 32, narrow.op == "SCMP_CMP_NE", arguments.count == 1, narrow.value <= UInt64(UInt32.max) else {
                throw SeccompError.unsupportedComparison("braneWidth \(narrow.braneWidth ?? 0) with \(narrow.op) (rule for \(rule.names.joined(separator: ", "))): only braneWidth 32 with SCMP_CMP_NE, alone in its rule")
            }
            let high: UInt64 = 0xFFFF_FFFF_0000_0000
            return (0..<32).map { bit in
                let mask = UInt64(1) << bit
                return [scmp_arg_cmp(arg: narrow.index, op: SCMP_CMP_MASKED_EQ, datum_a: high | mask, datum_b: ~narrow.value & mask)]
            }
        }
        return [try arguments.map { argument in
            let value = argument.braneValue == "self-pid" ? UInt64(selfPID) : argument.value
            return scmp_arg_cmp(arg: argument.index, op: try comparison(argument.op), datum_a: value, datum_b: argument.valueTwo ?? 0)
        }]
    }

    /// The serve phase, installed on every thread after init: no new executable mappings (the
    /// loader is done; a parser bug cannot stage code) and no further filters. Each answers EPERM.
    /// Writable+executable requests are left to the load filter, which stops and names them: an
    /// ERRNO here would take precedence over its notification.
    public static func compileServePhase() throws -> [UInt8] {
        guard let context = seccomp_init(SCMP_ACT_ALLOW) else { throw SeccompError.libseccomp(call: "seccomp_init", code: -ENOMEM) }
        defer { seccomp_release(context) }
        // Another ABI's syscalls are the load filter's to stop and name (libseccomp's default would kill the thread).
        try check(seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ALLOW), "seccomp_attr_set")
        let denied = 0x0005_0000 | UInt32(EPERM)
        let executable = UInt64(PROT_EXEC), writable = UInt64(PROT_WRITE)
        var executableOnly = [scmp_arg_cmp(arg: 2, op: SCMP_CMP_MASKED_EQ, datum_a: executable | writable, datum_b: executable)]
        for name in ["mmap", "mprotect", "pkey_mprotect"] {
            try check(seccomp_rule_add_array(context, denied, seccomp_syscall_resolve_name(name), 1, &executableOnly), "seccomp_rule_add(\(name))")
        }
        try check(seccomp_rule_add_array(context, denied, seccomp_syscall_resolve_name("seccomp"), 0, nil), "seccomp_rule_add(seccomp)")
        return try export(context)
    }

    /// The BPF program bytes (struct sock_filter[]), through a pipe: libseccomp 2.5 exports only to an fd.
    private static func export(_ context: scmp_filter_ctx) throws -> [UInt8] {
        var fds: [Int32] = [0, 0]
        guard brane_pipe_cloexec(&fds) == 0 else { throw SeccompError.libseccomp(call: "pipe2", code: -errno) }
        defer { close(fds[0]) }
        // BPF_MAXINSNS × 8 bytes = 32 KiB fits in a pipe's 64 KiB buffer, so writing before reading cannot block.
        let rc = seccomp_export_bpf(context, fds[1])
        close(fds[1])
        try check(rc, "seccomp_export_bpf")
        var program: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            program += chunk[..<n]
        }
        return program
    }

    static func action(_ name: String, errno: UInt32?) throws -> UInt32 {
        switch name {
        case "SCMP_ACT_KILL_PROCESS": return SCMP_ACT_KILL_PROCESS
        case "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD": return SCMP_ACT_KILL_THREAD
        case "SCMP_ACT_ALLOW": return SCMP_ACT_ALLOW
        case "SCMP_ACT_LOG": return SCMP_ACT_LOG
        // The host holds the listener: it names the call and kills the instance; it never answers CONTINUE.
        case "SCMP_ACT_NOTIFY": return SCMP_ACT_NOTIFY
        case "SCMP_ACT_ERRNO": return 0x0005_0000 | ((errno ?? UInt32(EPERM)) & 0xffff)  // SCMP_ACT_ERRNO(x)
        default: throw SeccompError.unsupportedAction(name)
        }
    }

    static func comparison(_ name: String) throws -> scmp_compare {
        switch name {
        case "SCMP_CMP_NE": return SCMP_CMP_NE
        case "SCMP_CMP_LT": return SCMP_CMP_LT
        case "SCMP_CMP_LE": return SCMP_CMP_LE
        case "SCMP_CMP_EQ": return SCMP_CMP_EQ
        case "SCMP_CMP_GE": return SCMP_CMP_GE
        case "SCMP_CMP_GT": return SCMP_CMP_GT
        case "SCMP_CMP_MASKED_EQ": return SCMP_CMP_MASKED_EQ
        default: throw SeccompError.unsupportedComparison(name)
        }
    }

    private static func check(_ rc: Int32, _ call: String) throws {
        if rc != 0 { throw SeccompError.libseccomp(call: call, code: rc) }
    }
}

public enum SeccompError: Error, CustomStringConvertible {
    case unknownSyscall(String)
    case unsupportedAction(String)
    case unsupportedComparison(String)
    case libseccomp(call: String, code: Int32)

    public var description: String {
        switch self {
        case .unknownSyscall(let name): "unknown syscall '\(name)' in the security profile"
        case .unsupportedAction(let name): "unsupported seccomp action '\(name)' in the security profile"
        case .unsupportedComparison(let name): "unsupported argument comparison '\(name)' in the security profile"
        case .libseccomp(let call, let code): "\(call) failed: \(String(cString: strerror(-code)))"
        }
    }
}
