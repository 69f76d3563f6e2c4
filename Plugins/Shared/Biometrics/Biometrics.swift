/// The daily biometric record both coaching specialists read, and the rolling statistics
/// they compute over it. Linked statically into each specialist.
public struct DailyReading: Codable, Sendable, Equatable {
    /// ISO date (YYYY-MM-DD); readings arrive one per day, in order.
    public var date: String
    /// Heart-rate variability, root mean square of successive differences, ms.
    public var rmssd: Double
    /// Resting heart rate, beats per minute.
    public var restingHR: Double
    public var sleepHours: Double
    /// Subjective or wearable sleep score, 0–100.
    public var sleepQuality: Double
    /// Session load in arbitrary units (e.g. session RPE × minutes).
    public var load: Double

    enum CodingKeys: String, CodingKey { case date, rmssd, restingHR, sleepHours, sleepQuality, load }

    /// The range each measure can take on a person: a reading outside it is refused where it is
    /// read, with its path, so no absurd value reaches a baseline, a streak or an answer.
    static let bounds: [(CodingKeys, ClosedRange<Double>)] = [
        (.rmssd, 1...1000), (.restingHR, 20...250), (.sleepHours, 0...24), (.sleepQuality, 0...100), (.load, 0...100_000),
    ]

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        date = try container.decode(String.self, forKey: .date)
        guard Self.isISODate(date) else {
            throw DecodingError.dataCorruptedError(forKey: .date, in: container, debugDescription: "expected a date as YYYY-MM-DD")
        }
        var values: [CodingKeys: Double] = [:]
        for (key, range) in Self.bounds {
            let value = try container.decode(Double.self, forKey: key)
            guard range.contains(value) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container,
                    debugDescription: "\(value) is outside \(Int(range.lowerBound))–\(Int(range.upperBound))")
            }
            values[key] = value
        }
        (rmssd, restingHR, sleepHours, sleepQuality, load) = (values[.rmssd]!, values[.restingHR]!, values[.sleepHours]!, values[.sleepQuality]!, values[.load]!)
    }

    static func isISODate(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes.enumerated().allSatisfy({ i, b in i == 4 || i == 7 ? b == UInt8(ascii: "-") : (0x30...0x39).contains(b) }) else { return false }
        func number(_ range: Range<Int>) -> Int { bytes[range].reduce(0) { $0 * 10 + Int($1 - 0x30) } }
        return (1...12).contains(number(5..<7)) && (1...31).contains(number(8..<10))
    }
}

/// A request carrying a history of readings, oldest first.
public struct ReadingHistory: Codable, Sendable {
    public var readings: [DailyReading]
}

/// Arithmetic mean; 0 for no values.
public func mean(_ values: some Collection<Double>) -> Double {
    values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
}

/// Sample standard deviation; 0 for fewer than two values.
public func standardDeviation(_ values: some Collection<Double>) -> Double {
    guard values.count > 1 else { return 0 }
    let m = mean(values)
    return (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)).squareRoot()
}

/// Acute (7-day) over chronic (28-day) mean load, the workload ratio both specialists use.
public struct WorkloadRatio: Sendable {
    public var acute: Double
    public var chronic: Double
    public var ratio: Double? { chronic > 0 ? acute / chronic : nil }

    public init(_ readings: some BidirectionalCollection<DailyReading>) {
        acute = mean(readings.suffix(7).map(\.load))
        chronic = mean(readings.suffix(28).map(\.load))
    }
}

/// Rounds for presentation (two decimals) so answers are stable and readable.
public func rounded(_ value: Double, _ places: Double = 100) -> Double { (value * places).rounded() / places }
