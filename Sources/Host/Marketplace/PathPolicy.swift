import Glibc

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
        // Every path as written and as it resolves now (links, /proc/self/root): a rule must hold for both.
        func forms(_ path: String) -> [String] { [normalized(path)] + (resolved(path).map { [$0] } ?? []) }
        let homes = forms(home.root), grants = granted.flatMap(forms)
        func within(_ path: String, _ base: String) -> Bool { path == base || path.hasPrefix(base == "/" ? "/" : base + "/") }
        var problems: [String] = []
        for (entry, writable) in read.map({ ($0, false) }) + write.map({ ($0, true) }) {
            let shown = "filesystem.\(writable ? "write" : "read") entry \"\(UntrustedText.sanitized(entry, limit: 120))\""
            guard entry.hasPrefix("/") else {
                if writable { problems.append("\(shown) writes into the plugin's own install tree, which must stay as installed; declare an absolute path and grant it") }
                continue
            }
            let paths = forms(entry), path = paths[0]
            let magic = ["root", "cwd", "exe", "fd", "map_files", "ns"]
            if paths.contains("/") {
                problems.append("\(shown) is the whole filesystem")
            } else if path.hasPrefix("/proc/") && path.split(separator: "/").dropFirst(2).contains(where: { magic.contains(String($0)) }) {
                problems.append("\(shown) passes through a /proc magic link (a process's root, cwd, exe, fd or namespaces), which leads anywhere")
            } else if paths.contains(where: { p in homes.contains { within(p, $0) || within($0, p) } }) {
                problems.append("\(shown) reaches BRANE_HOME (\(home.root)), where the registry, the audit key and every plugin live")
            } else if paths.allSatisfy({ p in grants.contains { within(p, $0) } }) {
                continue
            } else if writable || !paths.allSatisfy({ p in readableSystemPaths.contains { within(p, $0) } }) {
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

    /// Where `path` leads now, every link followed: its deepest existing ancestor resolved, the
    /// rest appended (a path that does not exist yet still says where it would be).
    private static func resolved(_ path: String) -> String? {
        var components = normalized(path).split(separator: "/").map(String.init)
        var rest: [String] = []
        while true {
            if let real = realpath("/" + components.joined(separator: "/"), nil) {
                defer { free(real) }
                return normalized(([String(cString: real)] + rest).joined(separator: "/"))
            }
            guard let last = components.popLast() else { return nil }
            rest.insert(last, at: 0)
        }
    }
}
