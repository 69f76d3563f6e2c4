import BranePluginKit
import Glibc

/// Reading /proc and /sys from inside the sandbox: whole small files, with the errno in the
/// error (EACCES when a path is outside the plugin's Landlock allow-list). Shared by the sensors
/// and scanners, linked statically into each.
public enum ProcFS {
    /// The whole file as text (files under /proc report size 0, so read until end of file).
    public static func read(_ path: String) throws -> String {
        String(decoding: try bytes(path), as: UTF8.self)
    }

    /// The file's bytes, up to `limit` of them: a process's command line can run to megabytes.
    public static func bytes(_ path: String, limit: Int = .max) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PluginError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, limit - bytes.count)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw PluginError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[..<n]
        }
        return bytes
    }

    /// /proc/PID/stat split as the kernel writes it: the command name between the first `(` and
    /// the last `)` (the name is the process's to choose, parentheses, spaces and any bytes
    /// included), then the fields after it (state, parent pid, …). Found on bytes: as Characters,
    /// a combining mark after `(` or a prepending one before `)` would merge with it and hide it.
    public static func stat(_ bytes: [UInt8]) -> (name: String, fields: [Substring])? {
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")), let close = bytes.lastIndex(of: UInt8(ascii: ")")), open < close else { return nil }
        let name = String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
        let fields = String(decoding: bytes[(close + 1)...], as: UTF8.self).split(separator: " ")
        return (name, fields)
    }

    /// Lines split into whitespace-separated fields.
    public static func table(_ text: String) -> [[Substring]] {
        text.split(separator: "\n").map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }) }
    }

    /// A path as /proc/*/mounts writes it, with its octal escapes undone (\040 space, \011 tab,
    /// \012 newline, \134 backslash: the characters that would break the table's fields).
    public static func unescapedPath(_ field: Substring) -> String {
        let escaped = Array(field.utf8)
        func octal(_ byte: UInt8) -> UInt8? { (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte) ? byte - UInt8(ascii: "0") : nil }
        var bytes: [UInt8] = []
        var i = 0
        while i < escaped.count {
            if escaped[i] == UInt8(ascii: "\\"), i + 3 < escaped.count, let high = octal(escaped[i + 1]), high <= 3,
               let middle = octal(escaped[i + 2]), let low = octal(escaped[i + 3]) {
                bytes.append(high << 6 | middle << 3 | low)
                i += 4
            } else {
                bytes.append(escaped[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// "Key:   123 kB" lines (/proc/meminfo, /proc/PID/status) as key → first number.
    public static func keyedNumbers(_ text: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let value = line[line.index(after: colon)...].split(separator: " ").first.flatMap { Double($0) }
            if let value { values[String(line[..<colon])] = value }
        }
        return values
    }

    /// Seconds on the monotonic clock, for rates between samples.
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    public static func sleep(seconds: Double) {
        var time = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        nanosleep(&time, nil)
    }
}

/// What every sensor answers to sensor/sample: numbers the host's change detection compares
/// against the manifest's thresholds, states where any change counts, and detail for people.
public struct SensorReading {
    public var metrics: [String: Double]
    public var states: [String: String]
    public var detail: [String: [String: Double]]

    public init(metrics: [String: Double] = [:], states: [String: String] = [:], detail: [String: [String: Double]] = [:]) {
        self.metrics = metrics
        self.states = states
        self.detail = detail
    }

    /// The wire form, written without Foundation so a sensor process stays small.
    public var json: [UInt8] {
        JSONValue.object([
            "metrics": .object(metrics.mapValues { .number($0) }),
            "states": .object(states.mapValues { .string($0) }),
            "detail": .object(detail.mapValues { .object($0.mapValues { .number($0) }) }),
        ]).bytes
    }
}

/// Rounds to two decimals for stable, readable readings.
public func twoDecimals(_ value: Double) -> Double { (value * 100).rounded() / 100 }

/// A sensor's rates need two samples; the first call takes both, `settle` seconds apart.
public final class Deltas<Key: Hashable> {
    private var previous: (time: Double, values: [Key: Double])?
    public init() {}

    /// Per-second rates of each counter since the previous call (nil on the first).
    public func rates(_ values: [Key: Double]) -> [Key: Double]? {
        let time = ProcFS.now()
        defer { previous = (time, values) }
        guard let previous, time > previous.time else { return nil }
        var rates: [Key: Double] = [:]
        for (key, value) in values {
            if let before = previous.values[key] { rates[key] = max(0, value - before) / (time - previous.time) }
        }
        return rates
    }
}

/// One discovered asset: `kind` and `key` together identify it across scans (the host derives the
/// stable asset id from them); `properties` are compared between scans to report what changed.
public struct Asset: Encodable {
    public var kind: String
    public var key: String
    public var name: String
    public var properties: [String: String]

    public init(kind: String, key: String, name: String, properties: [String: String]) {
        self.kind = kind
        self.key = key
        self.name = name
        self.properties = properties
    }
}

/// What every scanner answers to scanner/scan.
public struct ScanResult: Encodable {
    public var assets: [Asset]
    /// Things a person should know about the scan (e.g. "no container engine found").
    public var notes: [String]

    public init(assets: [Asset], notes: [String] = []) {
        self.assets = assets
        self.notes = notes
    }
}
