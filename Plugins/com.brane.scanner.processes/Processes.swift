import BranePluginCodable
import BraneProcFS
import Glibc

/// com.brane.scanner.processes — running processes with parent, user and command line; values of
/// secret-looking arguments (--password=…, --token …, user:pass@ in URLs, KEY=… assignments) are
/// redacted before they leave the sandbox. Environments are never read: the kernel refuses
/// /proc/PID/environ to a sandboxed reader anyway (Landlock's ptrace scope).
struct Processes: BranePlugin {
    static let id = "com.brane.scanner.processes"
    static let version = "0.1.0"
    static let kind = PluginKind.scanner

    init(host: PluginHost) {}

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "scanner/scan" else { throw PluginError("unknown method \(method); this scanner answers scanner/scan") }
        let users = Self.userNames((try? ProcFS.read("/etc/passwd")) ?? "")
        var assets: [Asset] = []
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
            assets.append(Asset(kind: "process", key: "\(pid)@\(fields[19])", name: name,
                                properties: ["pid": String(pid), "ppid": String(fields[1]), "state": String(fields[0]),
                                             "user": users[uid] ?? uid, "command": argv.isEmpty ? "[\(name)]" : Self.redact(argv).joined(separator: " ")]))
        }
        return try encodeJSON(ScanResult(assets: assets, notes: ["environments are not collected"]))
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

    static let secretWords = ["password", "passwd", "pwd", "secret", "token", "apikey", "api-key", "api_key", "key", "credential", "auth", "private"]

    static func isSecretName(_ name: Substring) -> Bool {
        let lowered = name.lowercased()
        return secretWords.contains { start(of: $0, in: lowered) != nil }
    }

    /// Where `needle` first starts in `text`, compared as UTF-8 (the standard library alone has no
    /// substring search, and comparing Characters would break graphemes at every step).
    static func start(of needle: String, in text: String) -> String.Index? {
        let pattern = Array(needle.utf8)
        return text.utf8.indices.first { text.utf8[$0...].starts(with: pattern) }
    }

    /// Replaces secret values with "[redacted]": `--password=x`, `--token x`, `API_KEY=x`, `https://user:x@host`.
    static func redact(_ argv: [String]) -> [String] {
        var result: [String] = []
        var hideNext = false
        for argument in argv {
            if hideNext {
                result.append("[redacted]")
                hideNext = false
                continue
            }
            if let equals = argument.firstIndex(of: "="), isSecretName(argument[..<equals]) {
                result.append(argument[...equals] + "[redacted]")
            } else if argument.hasPrefix("-") && isSecretName(argument[...]) {
                result.append(argument)
                hideNext = true
            } else if let scheme = start(of: "://", in: argument),
                      case let authority = argument.utf8.index(scheme, offsetBy: 3), let at = argument[authority...].firstIndex(of: "@"),
                      let colon = argument[authority..<at].firstIndex(of: ":") {
                result.append(String(argument[..<argument.index(after: colon)]) + "[redacted]" + argument[at...])
            } else {
                result.append(argument)
            }
        }
        return result
    }
}

@_cdecl("brane_plugin_entry")
public func braneProcessesEntry() -> UnsafeRawPointer { exportPlugin(Processes.self) }
