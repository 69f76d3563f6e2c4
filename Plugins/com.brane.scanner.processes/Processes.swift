import BranePluginCodable
import BraneProcFS
import Glibc

/// com.brane.scanner.processes — running processes with parent, user and command line; values of
/// secret-looking arguments (--password=…, --token …, user:pass@ in URLs, KEY=… assignments) are
/// redacted, and command lines cut to 4 KiB, before they leave the sandbox. Environments are never
/// read: the kernel refuses /proc/PID/environ to a sandboxed reader anyway (Landlock's ptrace scope).
struct Processes: BranePlugin {
    static let id = "com.brane.scanner.processes"
    static let version = "0.1.0"
    static let kind = PluginKind.scanner

    init(host: PluginHost) {}

    /// What the answer may hold, well inside the host's 8 MiB frame: processes listed, and the
    /// bytes of their command lines as JSON writes them (a control character takes six).
    static let maximumProcesses = 10_000, commandBudget = 3 << 20

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "scanner/scan" else { throw PluginError("unknown method \(method); this scanner answers scanner/scan") }
        let users = Self.userNames((try? ProcFS.read("/etc/passwd")) ?? "")
        var assets: [Asset] = []
        var notes = ["environments are not collected"]
        var commandBytes = 0, commandsCut = false
        for pid in try Self.pids() {
            // A process may exit between listing and reading: skip it.
            guard let stat = try? ProcFS.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { continue }
            let name = String(stat[stat.index(after: stat.firstIndex(of: "(")!)..<close])
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")  // state ppid … (field 22 = starttime)
            guard fields.count > 19 else { continue }
            let uid = (try? ProcFS.read("/proc/\(pid)/status")).flatMap { status in
                status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first
            }.map(String.init) ?? "?"
            let argv = ((try? ProcFS.read("/proc/\(pid)/cmdline")) ?? "").split(separator: "\0").map(String.init)
            var command = argv.isEmpty ? "[\(name)]" : Self.shown(Self.redact(argv))
            let cost = JSONValue.string(command).bytes.count
            if commandBytes + cost <= Self.commandBudget {
                commandBytes += cost
            } else {
                command = "[not shown]"
                commandsCut = true
            }
            assets.append(Asset(kind: "process", key: "\(pid)@\(fields[19])", name: name,
                                properties: ["pid": String(pid), "ppid": String(fields[1]), "state": String(fields[0]),
                                             "user": users[uid] ?? uid, "command": command]))
            if assets.count == Self.maximumProcesses {
                notes.append("the first \(Self.maximumProcesses) processes are listed, any more are not")
                break
            }
        }
        if commandsCut { notes.append("command lines past \(Self.commandBudget >> 20) MiB in all are shown as [not shown]") }
        return try encodeJSON(ScanResult(assets: assets, notes: notes))
    }

    static func pids() throws -> [Int] {
        guard let directory = opendir("/proc") else { throw PluginError("cannot list /proc") }
        defer { closedir(directory) }
        var pids: [Int] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let pid = Int(name) { pids.append(pid) }
        }
        return pids.sorted()
    }

    static func userNames(_ passwd: String) -> [String: String] {
        passwd.split(separator: "\n").reduce(into: [:]) { names, line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 2 { names[String(fields[2])] = String(fields[0]) }
        }
    }

    /// Substrings that make an argument's name secret-looking. Over-redaction is the safe side:
    /// "pass" also catches passwd, passphrase and --db-pass.
    static let secretWords = ["pass", "pwd", "secret", "token", "apikey", "api-key", "api_key", "key", "credential", "auth", "private", "bearer", "cookie"]
        .map { Array($0.utf8) }

    /// Whether a name (ASCII letters compared without case; nothing else is folded) holds a secret word.
    static func isSecretName(_ name: ArraySlice<UInt8>) -> Bool {
        let lowered = name.map { (0x41...0x5a).contains($0) ? $0 | 0x20 : $0 }
        return secretWords.contains { start(of: $0, in: lowered[...]) != nil }
    }

    /// Where `needle` first starts in `bytes` (the standard library alone has no substring search).
    static func start(of needle: [UInt8], in bytes: ArraySlice<UInt8>) -> Int? {
        bytes.indices.first { bytes[$0...].starts(with: needle) }
    }

    static let redacted = Array("[redacted]".utf8)

    /// Replaces secret values with "[redacted]": `--password=x`, `--token x`, `API_KEY=x`,
    /// `Authorization: x`, and the password of every `scheme://user:x@host` in an argument.
    /// Everything is matched on UTF-8 bytes, so a combining mark after `=`, `:` or `@` (which would
    /// join it into one Character) hides nothing.
    static func redact(_ argv: [String]) -> [String] {
        var hideNext = false
        return argv.map { argument in
            if hideNext {
                hideNext = false
                return "[redacted]"
            }
            var bytes = withoutURLPasswords(Array(argument.utf8))
            let hasEquals = bytes.contains(UInt8(ascii: "="))
            if let separator = bytes.firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ":") }), isSecretName(bytes[..<separator]) {
                bytes = Array(bytes[...separator]) + redacted
            } else if !hasEquals, bytes.first(where: { $0 < 0x80 }) == UInt8(ascii: "-"), isSecretName(bytes[...]) {
                hideNext = true  // --token x: the value is the next argument
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// `scheme://user:secret@host` → `scheme://user:[redacted]@host`, for every URL in the text.
    static func withoutURLPasswords(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var rest = text[...]
        while let scheme = start(of: Array("://".utf8), in: rest) {
            let authority = scheme + 3
            out += rest[..<authority]
            // To the next space or comma, not the next /: a password with a raw / or @ in it is still
            // hidden, at the cost of hiding a path that has both : and @.
            let end = rest[authority...].firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: ",") } ?? rest.endIndex
            if let at = rest[authority..<end].lastIndex(of: UInt8(ascii: "@")), let colon = rest[authority..<at].firstIndex(of: UInt8(ascii: ":")) {
                out += rest[authority...colon] + redacted
                rest = rest[at...]
            } else {
                rest = rest[authority...]
            }
        }
        return out + rest
    }

    /// A command line as shown: each argument at most 1 KiB and the whole at most 4 KiB, cut at a
    /// character boundary and marked, so no process can make the scan's answer outgrow its frame.
    static func shown(_ argv: [String]) -> String {
        var line: [UInt8] = []
        for argument in argv {
            if !line.isEmpty { line.append(UInt8(ascii: " ")) }
            line += truncated(Array(argument.utf8), to: 1024)
        }
        return String(decoding: truncated(line, to: 4096), as: UTF8.self)
    }

    static func truncated(_ bytes: [UInt8], to limit: Int) -> [UInt8] {
        guard bytes.count > limit else { return bytes }
        var end = limit
        while end > 0, bytes[end] & 0xC0 == 0x80 { end -= 1 }  // never half a UTF-8 sequence
        return Array(bytes[..<end]) + Array("…[cut]".utf8)
    }
}

@_cdecl("brane_plugin_entry")
public func braneProcessesEntry() -> UnsafeRawPointer { exportPlugin(Processes.self) }
