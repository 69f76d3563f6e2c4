import Foundation

/// Processes as /proc shows them: whose children they are, and whether they are still alive (a clean stop
/// of a neuron leaves no plugin process; its report and the tests check this).
public enum ProcessTable {
    /// The children of `parent`, from each of its threads' /proc children list (children of a
    /// process are listed under the thread that started them).
    public static func children(of parent: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(parent)/task")) ?? []
        return tasks.flatMap { task in
            ((try? String(contentsOfFile: "/proc/\(parent)/task/\(task)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0) }
        }
    }

    /// Whether `pid` is a live process (not gone, not a zombie).
    public static func isAlive(_ pid: Int32) -> Bool {
        guard let state = stat(pid)?.first else { return false }
        return state != "Z" && state != "X"
    }

    /// The fields of /proc/PID/stat after the command name: state, parent pid, … The name is the
    /// process's own choice, so it is skipped on bytes, to the last `)`: read as UTF-8 Characters, a
    /// name that is not UTF-8, or ends in a mark that merges with the `)`, would make a live plugin
    /// process look gone.
    private static func stat(_ pid: Int32) -> [Substring]? {
        guard let bytes = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        return String(decoding: bytes[(close + 1)...], as: UTF8.self).split(separator: " ")
    }
}
