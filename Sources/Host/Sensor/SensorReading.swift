import Foundation

/// A sensor's answer to sensor/sample: numbers compared against thresholds, states where any
/// change counts, and the whole JSON as the sensor sent it.
public struct SensorReading: Sendable, Equatable {
    public var metrics: [String: Double]
    public var states: [String: String]
    public var json: JSONValue

    public init(json: JSONValue) {
        self.json = json
        var metrics: [String: Double] = [:], states: [String: String] = [:]
        if case .object(let values)? = json["metrics"] {
            for (key, value) in values { if let number = value.numberValue { metrics[key] = number } }
        }
        if case .object(let values)? = json["states"] {
            for (key, value) in values { if let text = value.stringValue { states[key] = text } }
        }
        self.metrics = metrics
        self.states = states
    }
}

/// One stored reading.
public struct StoredReading: Sendable {
    public var sensor: String
    public var takenAt: Date
    public var reading: SensorReading
    /// What made it worth storing: metrics that crossed their threshold, states that changed, or "first".
    public var changed: [String]

    public init(sensor: String, takenAt: Date, reading: SensorReading, changed: [String]) {
        (self.sensor, self.takenAt, self.reading, self.changed) = (sensor, takenAt, reading, changed)
    }
}
