import Foundation

/// Durations as people write them in manifests and on the command line: "250ms", "5s", "2m",
/// "1h", "7d".
public enum DurationText {
    static let units: [(suffix: String, milliseconds: Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]

    /// The longest duration anything takes: 100 years (`1e400s`, `infs` and `1e20ms` are past it).
    public static let maximumMilliseconds = 100 * 365 * 86_400_000

    /// Milliseconds, or nil when `text` is not a finite, non-negative number followed by a unit,
    /// at most `maximumMilliseconds`.
    public static func milliseconds(_ text: String) -> Int? {
        let text = text.trimmingCharacters(in: .whitespaces)
        for unit in units where text.hasSuffix(unit.suffix) {
            // "5ms" also ends in "s": accept only when what precedes the unit is a decimal number
            // (Double would also read "0x10" and "1e3").
            let number = text.dropLast(unit.suffix.count)
            if !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
               let value = Double(number), value.isFinite, value >= 0,
               value * unit.milliseconds <= Double(maximumMilliseconds) {
                return Int((value * unit.milliseconds).rounded())
            }
        }
        return nil
    }
}
