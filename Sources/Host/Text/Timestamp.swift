import Foundation

/// The one textual form of a time in Brane's files, tables and audit log: ISO 8601 in UTC to the
/// second, `2026-12-01T13:24:53Z`. Formatting is done here by hand: Foundation's
/// ISO8601DateFormatter builds an ICU formatter per instance, which cost `brane plugin list`
/// 5 ms of its 30 with 100 plugins installed. Parsing, rare, keeps Foundation's grammar.
public enum Timestamp {
    /// Years 1 to 9999; a time outside them (a hostile row, NaN) is shown as the nearest end.
    public static func string(_ date: Date) -> String {
        let since1970 = date.timeIntervalSince1970
        var seconds = time_t(since1970.isNaN ? 0 : min(max(since1970.rounded(.down), -62_135_596_800), 253_402_300_799))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(digits(parts.tm_year + 1900, 4))-\(digits(parts.tm_mon + 1, 2))-\(digits(parts.tm_mday, 2))"
            + "T\(digits(parts.tm_hour, 2)):\(digits(parts.tm_min, 2)):\(digits(parts.tm_sec, 2))Z"
    }

    /// A time such as `2027-01-31T00:00:00Z` or `2027-01-31T01:00:00+01:00`, or nil.
    public static func date(_ text: String) -> Date? { ISO8601DateFormatter().date(from: text) }
}
