import Foundation

/// What a run prints: the Markdown tables of docs/performance.md, or, with `--json`, every
/// figure under a stable key — median, interquartile range, unit, and its ratio to the baseline
/// measured in the same run — for scripts. The keys are the contract; the tables may change.
enum Report {
    static let json = CommandLine.arguments.contains("--json")
    nonisolated(unsafe) private static var figures: [Figure] = []

    struct Figure: Encodable {
        var key: String
        var unit: String
        var median: Double
        var p25: Double?
        var p75: Double?
        /// The key of the same-run baseline this figure is compared with, and the ratio of medians.
        var baseline: String?
        var ratio: Double?
        var target: String?
    }

    /// Records `stats` (nanoseconds, or KiB for memory) divided by `scale`.
    static func record(_ key: String, _ stats: Stats, scale: Double, unit: String, baseline: (key: String, stats: Stats)? = nil, target: String? = nil) {
        figures.append(Figure(key: key, unit: unit, median: stats.median / scale, p25: stats.quantile(0.25) / scale, p75: stats.quantile(0.75) / scale,
                              baseline: baseline?.key, ratio: baseline.map { stats.median / $0.stats.median }, target: target))
    }

    /// Records one value that has no spread (a total, a share).
    static func record(_ key: String, value: Double, unit: String, baseline: String? = nil, ratio: Double? = nil, target: String? = nil) {
        figures.append(Figure(key: key, unit: unit, median: value, baseline: baseline, ratio: ratio, target: target))
    }

    /// Prints the figures as JSON when asked for; call once, at the end of the run.
    static func finish() {
        guard json else { return }
        struct Document: Encodable { var machine: [String: String]; var figures: [Figure] }
        let machine = ["cpus": "\(ProcessInfo.processInfo.activeProcessorCount)",
                       "kernel": (try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8))?
                           .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let text = String(decoding: try! encoder.encode(Document(machine: machine, figures: figures)), as: UTF8.self)
        Swift.print(text)
    }
}

/// The Markdown report goes to standard output only without `--json`.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    if !Report.json { Swift.print(items.map { "\($0)" }.joined(separator: separator), terminator: terminator) }
}
