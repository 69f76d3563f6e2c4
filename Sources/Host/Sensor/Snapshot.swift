import Foundation

/// The AAV snapshot: the newest reading of every sensor as one TOML document.
///
///     [sensors."com.brane.sensor.compute"]
///     taken_at = 2026-11-23T17:15:51Z
///     changed = ["cpu.percent"]
///     [sensors."com.brane.sensor.compute".metrics]
///     "cpu.percent" = 12.5
///
/// Written by hand: the TOML package on this machine (TOMLKit) needs a dependency that is not
/// available offline, and the document is a few tables of scalars.
public enum Snapshot {
    public static func toml(_ readings: [StoredReading], generatedAt: Date = Date()) -> String {
        var lines = ["# Brane sensor snapshot: the newest stored reading of each sensor.", "generated_at = \(timestamp(generatedAt))", ""]
        for stored in readings {
            let table = "sensors.\(key(stored.sensor))"
            lines += ["[\(table)]", "taken_at = \(timestamp(stored.takenAt))",
                      "changed = [\(stored.changed.map(string).joined(separator: ", "))]", ""]
            if !stored.reading.metrics.isEmpty {
                lines.append("[\(table).metrics]")
                lines += stored.reading.metrics.sorted { $0.key < $1.key }.map { "\(key($0.key)) = \(number($0.value))" }
                lines.append("")
            }
            if !stored.reading.states.isEmpty {
                lines.append("[\(table).states]")
                lines += stored.reading.states.sorted { $0.key < $1.key }.map { "\(key($0.key)) = \(string($0.value))" }
                lines.append("")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Writes the snapshot to `path` through a temporary file and a rename, so a reader never sees half of it.
    public static func write(_ readings: [StoredReading], to path: String) throws {
        try writeAtomically(Array(toml(readings).utf8), to: path)
    }

    static func timestamp(_ date: Date) -> String {
        date.formatted(.iso8601)  // an offset date-time in UTC, e.g. 2026-11-23T17:15:51Z
    }

    /// A bare key when TOML allows one, else a quoted key.
    static func key(_ name: String) -> String {
        name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") } && !name.isEmpty ? name : string(name)
    }

    static func string(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": quoted += "\\\""
            case "\\": quoted += "\\\\"
            case "\n": quoted += "\\n"
            case "\t": quoted += "\\t"
            case "\r": quoted += "\\r"
            default:
                quoted += scalar.value < 0x20 || scalar.value == 0x7F ? String(format: "\\u%04X", scalar.value) : String(scalar)
            }
        }
        return quoted + "\""
    }

    static func number(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value > 0 ? "inf" : "-inf" }
        return value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}
