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
    /// Of a command line, enough to fill what is shown (4 KiB of arguments cut to 1 KiB, each up to
    /// the kernel's 128 KiB) with room, and no more: a process's arguments can run to megabytes.
    static let commandLineRead = 1 << 20, argumentLimit = 1024, lineLimit = 4096

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "scanner/scan" else { throw PluginError("unknown method \(method); this scanner answers scanner/scan") }
        let users = Self.userNames((try? ProcFS.read("/etc/passwd")) ?? "")
        var assets: [Asset] = []
        var notes = ["environments are not collected"]
        var commandBytes = 0, commandsCut = false
        for pid in try Self.pids() {
            // A process may exit between listing and reading: skip it.
            guard let (name, fields) = (try? ProcFS.bytes("/proc/\(pid)/stat")).flatMap(ProcFS.stat),
                  fields.count > 19 else { continue }  // state ppid … (field 22 = starttime)
            let uid = (try? ProcFS.read("/proc/\(pid)/status")).flatMap { status in
                status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first
            }.map(String.init) ?? "?"
            let argv = Self.arguments((try? ProcFS.bytes("/proc/\(pid)/cmdline", limit: Self.commandLineRead)) ?? [])
            var command = argv.words.isEmpty ? "[\(name)]" : Self.shown(Self.redact(argv.words), cut: argv.cut)
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

    /// A command line's arguments, and whether its end was not read (the last, partial argument is
    /// dropped then: a password cut before its URL's `@` would otherwise show).
    static func arguments(_ bytes: [UInt8]) -> (words: [[UInt8]], cut: Bool) {
        var words = bytes.split(separator: 0, omittingEmptySubsequences: false).map(Array.init)
        if words.last?.isEmpty == true { words.removeLast() }  // the NUL that ends the last argument
        let cut = bytes.count >= commandLineRead && bytes.last != 0
        if cut { words.removeLast() }
        return (words, cut)
    }

    /// Substrings that make a name secret-looking. Over-redaction is the safe side: "pass" also
    /// catches passwd, passphrase and --db-pass, and hides --bypass's value too.
    static let secretWords = ["pass", "pwd", "secret", "token", "apikey", "api-key", "api_key", "key", "credential", "auth", "private", "bearer", "cookie"]
        .map { Array($0.utf8) }

    /// Whether `name` holds a secret word, ASCII letters compared without case (nothing else is
    /// folded). One pass, looking further only at a byte that starts some secret word.
    static func isSecretName(_ name: ArraySlice<UInt8>) -> Bool {
        let lowered = name.map { (0x41...0x5a).contains($0) ? $0 | 0x20 : $0 }
        return lowered.indices.contains { at in secretWordsByFirstByte[Int(lowered[at])].contains { lowered[at...].starts(with: $0) } }
    }

    static let secretWordsByFirstByte: [[[UInt8]]] = (0..<256).map { byte in secretWords.filter { Int($0[0]) == byte } }

    static let redacted = Array("[redacted]".utf8)
    static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0d).contains(byte) }

    /// Replaces secret values with "[redacted]", in these forms (and errs towards hiding):
    /// - `--token x` and `--password<TAB>x`: a flag (its first ASCII byte `-`, no `=`) with a secret
    ///   name hides the word after it, in the same argument or the next, hidden or not itself;
    /// - `API_KEY=x`, `--env=DB_PASSWORD=x`, `-o user=a,password=x`: a secret name before any `=`
    ///   hides the value, to the next comma or word;
    /// - `Authorization: Bearer x`, `{"password":"x"}`: a secret name before a `:` hides the rest of
    ///   the argument;
    /// - `-u alice:x`, `--user=alice:x`: what follows the first `:` of a user's value;
    /// - every `scheme://user:x@host` password, and a `scheme://token@host` user.
    /// Words are matched as UTF-8 bytes, so a combining mark after `=`, `:` or `@` hides nothing.
    static func redact(_ argv: [[UInt8]]) -> [[UInt8]] {
        var hideNext = false, userNext = false
        var result: [[UInt8]] = [], shownLength = 0
        for argument in argv where shownLength <= lineLimit {  // past the shown line, nothing is looked at
            var out: [UInt8] = []
            var at = 0
            let bytes = withoutURLPasswords(argument)
            while at < bytes.count {
                if isSpace(bytes[at]) { out.append(bytes[at]); at += 1; continue }
                var end = at
                while end < bytes.count, !isSpace(bytes[end]) { end += 1 }
                let word = bytes[at..<end]
                let (shown, hidesNext, hidesRest) = redactWord(word, userValue: userNext)
                userNext = word.elementsEqual("-u".utf8) || word.elementsEqual("--user".utf8)
                out += hideNext ? redacted : shown
                // A header name alone in its argument (`-H "Authorization:" value`) hides the next one.
                hideNext = hidesNext && !(hidesRest && bytes[end...].contains { !isSpace($0) })
                if hidesRest { break }
                at = end
            }
            result.append(out)
            shownLength += min(out.count, argumentLimit) + 1
        }
        return result
    }

    /// One word's redaction, and whether it hides the next word or the rest of its argument.
    static func redactWord(_ word: ArraySlice<UInt8>, userValue: Bool) -> (shown: [UInt8], hidesNext: Bool, hidesRest: Bool) {
        let isFlag = !word.contains(UInt8(ascii: "=")) && word.first(where: { $0 < 0x80 }) == UInt8(ascii: "-")
        var hidesNext = isFlag && isSecretName(word)
        if userValue, let colon = word.firstIndex(of: UInt8(ascii: ":")) { return (Array(word[...colon]) + redacted, hidesNext, false) }
        var out: [UInt8] = []
        var copied = word.startIndex, nameStart = word.startIndex, at = word.startIndex
        while at < word.endIndex {
            let separator = word[at]
            at += 1
            if separator == UInt8(ascii: ",") { nameStart = at }
            guard separator == UInt8(ascii: "=") || separator == UInt8(ascii: ":") else { continue }
            let name = word[nameStart..<(at - 1)]
            nameStart = at
            let isUser = separator == UInt8(ascii: "=") && (name.elementsEqual("-u".utf8) || name.elementsEqual("--user".utf8))
            guard isUser || isSecretName(name) else { continue }
            out += word[copied..<at]
            if separator == UInt8(ascii: ":") { return (out + redacted, at == word.endIndex, true) }  // a header: all that follows
            let valueEnd = word[at...].firstIndex(of: UInt8(ascii: ",")) ?? word.endIndex
            let value = word[at..<valueEnd]
            if value.isEmpty && valueEnd == word.endIndex { hidesNext = true }  // --password= x: the value is the next word
            if isUser { out += value.firstIndex(of: UInt8(ascii: ":")).map { word[at...$0] + redacted } ?? Array(value) }
            else if !value.isEmpty { out += redacted }
            (copied, nameStart, at) = (valueEnd, valueEnd, valueEnd)
        }
        return (out + word[copied...], hidesNext, false)
    }

    /// `scheme://user:secret@host` → `scheme://user:[redacted]@host` and `scheme://secret@host` →
    /// `scheme://[redacted]@host`, for every URL in the text: the authority runs to the last `@`
    /// before the next space, so a password with a raw `/`, `,` or `@` in it is still hidden (and
    /// a path holding `@` may be hidden with it). One pass: each byte is looked at a few times.
    static func withoutURLPasswords(_ text: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var at = 0
        while let scheme = start(of: Array("://".utf8), in: text, from: at) {
            let authority = scheme + 3
            out += text[at..<authority]
            var end = authority
            while end < text.count, !isSpace(text[end]) { end += 1 }
            if let userEnd = text[authority..<end].lastIndex(of: UInt8(ascii: "@")) {
                if let colon = text[authority..<userEnd].firstIndex(of: UInt8(ascii: ":")) { out += text[authority...colon] }
                out += redacted
                at = userEnd
            } else {
                out += text[authority..<end]
                at = end
            }
        }
        return out + text[at...]
    }

    /// Where `needle` next starts in `bytes`, from `from`.
    static func start(of needle: [UInt8], in bytes: [UInt8], from: Int) -> Int? {
        guard needle.count <= bytes.count else { return nil }
        var at = from
        while at + needle.count <= bytes.count {
            if bytes[at] == needle[0], bytes[at..<at + needle.count].elementsEqual(needle) { return at }
            at += 1
        }
        return nil
    }

    /// A command line as shown: each argument at most 1 KiB and the whole at most 4 KiB, cut at a
    /// character boundary and marked, so no process can make the scan's answer outgrow its frame.
    static func shown(_ argv: [[UInt8]], cut: Bool) -> String {
        var line: [UInt8] = []
        for argument in argv {
            if !line.isEmpty { line.append(UInt8(ascii: " ")) }
            line += truncated(argument, to: argumentLimit)
        }
        let shownLine = truncated(line, to: lineLimit)
        return String(decoding: cut && shownLine.count == line.count ? line + Array("…[cut]".utf8) : shownLine, as: UTF8.self)
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
