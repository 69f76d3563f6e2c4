import CBraneSystem
import CSeccomp
import Glibc

/// A system call the sandbox stopped, as the host saw it through the seccomp listener: its name
/// and its arguments decoded, e.g. `socket(AF_INET6, SOCK_STREAM, IPPROTO_MPTCP)`. The call
/// never ran: the instance was killed while blocked in it.
public struct ForbiddenCall: Sendable, Equatable, Codable, CustomStringConvertible {
    public var name: String
    public var number: Int32
    public var arguments: [String]
    /// The privacy tier whose filter refused it.
    public var tier: Int

    public var description: String { "\(name)(\(arguments.joined(separator: ", ")))" }

    init(_ event: brane_seccomp_event, tier: Int) {
        self.tier = tier
        number = event.nr
        let native = seccomp_arch_native()
        if event.arch != native, let foreign = Self.architectureName(event.arch) {
            name = "\(foreign) syscall \(event.nr)"
            arguments = []
            return
        }
        if let resolved = seccomp_syscall_resolve_num_arch(native, event.nr) {
            name = String(cString: resolved)
            free(resolved)
        } else {
            name = "syscall \(event.nr)"
        }
        let args = withUnsafeBytes(of: event.args) { Array($0.bindMemory(to: UInt64.self)) }
        arguments = Self.decode(name, args, pid: pid_t(truncatingIfNeeded: event.pid))
    }

    private static func architectureName(_ arch: UInt32) -> String? {
        switch Int32(bitPattern: arch) {
        case Int32(bitPattern: UInt32(SCMP_ARCH_X86)): "i386"
        case Int32(bitPattern: UInt32(SCMP_ARCH_X32)): "x32"
        case Int32(bitPattern: UInt32(SCMP_ARCH_ARM)): "arm"
        default: "foreign-ABI"
        }
    }

    static func decode(_ name: String, _ a: [UInt64], pid: pid_t) -> [String] {
        func string(_ address: UInt64) -> String { Self.string(at: address, pid: pid) }
        switch name {
        case "socket", "socketpair":
            return [Self.family(a[0]), Self.socketType(a[1]), Self.proto(family: a[0], a[2])]
        case "connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg", "sendmmsg", "recvfrom", "recvmsg", "setsockopt", "getsockopt":
            var decoded = ["fd \(Int32(truncatingIfNeeded: a[0]))"]
            if name == "connect" || name == "bind" { decoded.append(Self.socketAddress(at: a[1], length: a[2], pid: pid)) }
            if name == "sendto" {
                decoded += ["flags \(Self.flags(a[3], [(0x2000_0000, "MSG_FASTOPEN"), (0x4000, "MSG_NOSIGNAL")]))",
                            a[4] == 0 ? "no address" : Self.socketAddress(at: a[4], length: a[5], pid: pid)]
            }
            return decoded
        case "close", "dup": return ["fd \(Int32(truncatingIfNeeded: a[0]))"]
        case "dup2", "dup3": return ["fd \(Int32(truncatingIfNeeded: a[0]))", "fd \(Int32(truncatingIfNeeded: a[1]))"]
        case "kill", "tkill": return ["\(Int32(truncatingIfNeeded: a[0]))", signalName(Int32(truncatingIfNeeded: a[1]))]
        case "tgkill": return ["\(Int32(truncatingIfNeeded: a[0]))", "\(Int32(truncatingIfNeeded: a[1]))", signalName(Int32(truncatingIfNeeded: a[2]))]
        case "execve": return [string(a[0]), "…"]
        case "execveat": return [Self.directory(a[0]), string(a[1]), "…"]
        case "openat", "openat2": return [Self.directory(a[0]), string(a[1])] + (name == "openat" ? [Self.openFlags(a[2])] : [])
        case "open", "creat", "unlink", "rmdir", "mkdir", "chmod", "chown", "chroot", "uselib", "mknod": return [string(a[0])]
        case "unlinkat", "mkdirat", "mknodat", "fchmodat", "fchownat", "symlinkat", "linkat", "renameat", "renameat2":
            return [Self.directory(a[0]), string(a[1])]
        case "unshare", "clone": return [Self.flags(a[0], Self.cloneFlags)]
        case "mmap": return ["len \(a[1])", Self.protection(a[2])]
        case "mprotect", "pkey_mprotect": return ["len \(a[1])", Self.protection(a[2])]
        case "ioctl": return ["fd \(Int32(truncatingIfNeeded: a[0]))", "0x" + String(a[1] & 0xffff_ffff, radix: 16)]
        case "prctl": return [Self.named(a[0], [1: "PR_SET_PDEATHSIG", 4: "PR_SET_DUMPABLE", 22: "PR_SET_SECCOMP", 23: "PR_CAPBSET_READ", 24: "PR_CAPBSET_DROP", 38: "PR_SET_NO_NEW_PRIVS", 47: "PR_CAP_AMBIENT"])]
        case "ptrace": return [Self.named(a[0], [0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 16: "PTRACE_ATTACH", 0x4206: "PTRACE_SEIZE"]), "\(Int32(truncatingIfNeeded: a[1]))"]
        case "setuid", "setgid": return ["\(Int32(truncatingIfNeeded: a[0]))"]
        case "seccomp": return [Self.named(a[0], [0: "SECCOMP_SET_MODE_STRICT", 1: "SECCOMP_SET_MODE_FILTER"]), "flags 0x" + String(a[1], radix: 16)]
        default: return a.prefix(3).map { "0x" + String($0, radix: 16) }
        }
    }

    /// A string argument as the plugin passed it (sanitised, at most 200 bytes), read from its memory.
    private static func string(at address: UInt64, pid: pid_t) -> String {
        guard address != 0 else { return "NULL" }
        var buffer = [UInt8](repeating: 0, count: 256)
        // Read at most to the end of the page first, so an argument near unmapped memory still reads.
        let toPageEnd = 4096 - Int(address % 4096)
        var count = buffer.withUnsafeMutableBytes { brane_read_process_memory(pid, address, $0.baseAddress, min(256, toPageEnd)) }
        if count == min(256, toPageEnd) && toPageEnd < 256 {
            count = buffer.withUnsafeMutableBytes { brane_read_process_memory(pid, address, $0.baseAddress, 256) }
            if count < 0 { count = toPageEnd }
        }
        guard count > 0 else { return "0x" + String(address, radix: 16) }
        let bytes = buffer[..<count].prefix { $0 != 0 }
        return "\"" + UntrustedText.sanitized(String(decoding: bytes.prefix(200), as: UTF8.self)) + "\""
    }

    /// A socket address argument as the plugin passed it, e.g. `127.0.0.1:9` or a unix path.
    private static func socketAddress(at address: UInt64, length: UInt64, pid: pid_t) -> String {
        guard address != 0 else { return "NULL" }
        var bytes = [UInt8](repeating: 0, count: Int(min(length, 128)))
        let count = bytes.withUnsafeMutableBytes { brane_read_process_memory(pid, address, $0.baseAddress, $0.count) }
        guard count >= 2, let decoded = SocketAddress(bytes: bytes.prefix(count)) else { return "0x" + String(address, radix: 16) }
        return UntrustedText.sanitized(decoded.description, limit: 120)
    }

    private static func directory(_ value: UInt64) -> String {
        Int32(truncatingIfNeeded: value) == -100 ? "AT_FDCWD" : "fd \(Int32(truncatingIfNeeded: value))"
    }

    private static func named(_ value: UInt64, _ names: [UInt64: String]) -> String { names[value] ?? "\(value)" }

    private static func flags(_ value: UInt64, _ names: [(UInt64, String)]) -> String {
        var rest = value
        var parts: [String] = []
        for (bit, name) in names where value & bit == bit && bit != 0 {
            parts.append(name)
            rest &= ~bit
        }
        if rest != 0 || parts.isEmpty { parts.append("0x" + String(rest, radix: 16)) }
        return parts.joined(separator: "|")
    }

    static func family(_ value: UInt64) -> String {
        named(value, [1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET", 38: "AF_ALG", 40: "AF_VSOCK", 44: "AF_XDP"])
    }

    static func socketType(_ value: UInt64) -> String {
        let base = named(value & 0xf, [1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 5: "SOCK_SEQPACKET"])
        let extra = flags(value & ~0xf, [(0o4000, "SOCK_NONBLOCK"), (0o2000000, "SOCK_CLOEXEC")])
        return value & ~0xf == 0 ? base : base + "|" + extra
    }

    static func proto(family: UInt64, _ value: UInt64) -> String {
        if family == 17 { return "htons(0x" + String(UInt16(truncatingIfNeeded: value).byteSwapped, radix: 16) + ")" }
        return named(value, [0: "0", 1: "IPPROTO_ICMP", 6: "IPPROTO_TCP", 17: "IPPROTO_UDP", 58: "IPPROTO_ICMPV6", 132: "IPPROTO_SCTP", 255: "IPPROTO_RAW", 262: "IPPROTO_MPTCP"])
    }

    private static func protection(_ value: UInt64) -> String {
        flags(value, [(1, "PROT_READ"), (2, "PROT_WRITE"), (4, "PROT_EXEC")])
    }

    private static func openFlags(_ value: UInt64) -> String {
        let access = named(value & 3, [0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"])
        let rest = value & ~3
        return rest == 0 ? access : access + "|" + flags(rest, [(0o100, "O_CREAT"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
                                                                  (0o20200000, "O_TMPFILE"), (0o2000000, "O_CLOEXEC"), (0o200000, "O_DIRECTORY")])
    }

    private static let cloneFlags: [(UInt64, String)] = [
        (0x100, "CLONE_VM"), (0x200, "CLONE_FS"), (0x400, "CLONE_FILES"), (0x800, "CLONE_SIGHAND"), (0x10000, "CLONE_THREAD"),
        (0x20000, "CLONE_NEWNS"), (0x4000000, "CLONE_NEWUTS"), (0x8000000, "CLONE_NEWIPC"), (0x10000000, "CLONE_NEWUSER"),
        (0x20000000, "CLONE_NEWPID"), (0x40000000, "CLONE_NEWNET"), (0x2000000, "CLONE_NEWCGROUP"), (0x80000, "CLONE_SETTLS"),
        (0x100000, "CLONE_PARENT_SETTID"), (0x200000, "CLONE_CHILD_CLEARTID"), (0x1000000, "CLONE_CHILD_SETTID"), (0x11, "SIGCHLD"),
    ]
}
