import Foundation

/// Where events for a running neuron's specialists arrive: `<root>/<neuron>/<event kind>/*.jsonl`,
/// one JSON event per line. A file is read once, then moved to `done/` beside it (or `failed/`
/// when a specialist died on it, so it can be dropped in again). Writers should create the file
/// under another name (a dotfile or `*.tmp`) and rename it in, so a half-written file is never read.
public struct EventInbox: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: String

    public init(root: String, neuron: String) { directory = "\(root)/\(neuron)" }

    public func folder(_ kind: String) -> String { "\(directory)/\(kind)" }

    /// Creates a folder for every kind, so users see where to put files.
    public func prepare(kinds: [String]) throws {
        for kind in kinds { try FileManager.default.createDirectory(atPath: folder(kind), withIntermediateDirectories: true) }
    }

    /// Files waiting for `kind`, oldest name first.
    public func pending(_ kind: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder(kind))) ?? []
        return names.filter { $0.hasSuffix(".jsonl") && !$0.hasPrefix(".") }.sorted().map { "\(folder(kind))/\($0)" }
    }

    /// Moves a read file to `done/` (or `failed/`), replacing an older one of the same name.
    public func finish(_ file: String, failed: Bool = false) throws {
        let url = URL(fileURLWithPath: file)
        let target = url.deletingLastPathComponent().appendingPathComponent(failed ? "failed" : "done")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        let destination = target.appendingPathComponent(url.lastPathComponent).path
        guard rename(file, destination) == 0 else {
            throw Failure(description: "cannot move \(file) to \(destination): \(String(cString: strerror(errno)))")
        }
    }
}
