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
