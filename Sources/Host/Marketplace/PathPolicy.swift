/// What an installed plugin may declare under `filesystem`, checked at install: the signed index
/// vouches for the paths, this policy bounds them. Never `/`; never `$BRANE_HOME` (the registry,
/// the audit key and every plugin live there) nor anything that contains it; no writing into the
/// plugin's own install tree, which must stay as installed (its receipt is checked at every
/// start); absolute reads only beneath `readableSystemPaths`, and absolute writes only where the
/// user granted them at install (`--allow-path`, shown and audited).
public enum PathPolicy {
    /// Machine facts the bundled sensors and scanners read; nothing personal, nothing of the host's.
    public static let readableSystemPaths = ["/proc", "/sys", "/etc/ssl/certs", "/etc/hostname", "/etc/os-release",
                                             "/usr/lib/os-release", "/etc/machine-id", "/etc/passwd", "/usr/share/zoneinfo"]

    /// Every entry of `read` and `write` this policy refuses, with why.
    public static func problems(read: [String], write: [String], home: BraneHome, granted: [String]) -> [String] {
        let homeRoot = normalized(home.root)
        func within(_ path: String, _ base: String) -> Bool { path == base || path.hasPrefix(base == "/" ? "/" : base + "/") }
        var problems: [String] = []
        for (entry, writable) in read.map({ ($0, false) }) + write.map({ ($0, true) }) {
            let shown = "filesystem.\(writable ? "write" : "read") entry \"\(UntrustedText.sanitized(entry, limit: 120))\""
            guard entry.hasPrefix("/") else {
                if writable { problems.append("\(shown) writes into the plugin's own install tree, which must stay as installed; declare an absolute path and grant it") }
                continue
            }
            let path = normalized(entry)
            if path == "/" {
                problems.append("\(shown) is the whole filesystem")
            } else if within(path, homeRoot) || within(homeRoot, path) {
                problems.append("\(shown) reaches BRANE_HOME (\(home.root)), where the registry, the audit key and every plugin live")
            } else if granted.map(normalized).contains(where: { within(path, $0) }) {
                continue
            } else if writable || !readableSystemPaths.contains(where: { within(path, $0) }) {
                problems.append("\(shown) is outside what an installed plugin may \(writable ? "write" : "read") without a grant "
                    + "(\(writable ? "nowhere" : readableSystemPaths.joined(separator: ", "))); pass --allow-path \(path) to grant it")
            }
        }
        return problems
    }

    /// `path` without `.` components, repeated or trailing slashes (declared entries hold no `..`).
    static func normalized(_ path: String) -> String {
        "/" + path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }
}
