import Foundation

/// Samples sensors at their intervals, stores a reading only when it changed (`ChangeDetector`),
/// and adapts each interval: longer while stable or failing, shorter after a change.
/// One thread runs the loop; each sensor is its own sandboxed, supervised process.
public final class SensorScheduler: @unchecked Sendable {
    public final class Sensor: @unchecked Sendable {
        public let plugin: SupervisedPlugin
        public let detector: ChangeDetector
        public internal(set) var interval: AdaptiveInterval
        public internal(set) var lastStored: SensorReading?
        public internal(set) var latest: SensorReading?
        var due = Date.distantPast

        public var id: String { plugin.plan.bundle.manifest.id }

        /// `thresholds` and `interval` override the manifest's `sensor` block (e.g. from a neuron).
        public init(plugin: SupervisedPlugin, thresholds: [String: Double] = [:], interval: Double? = nil) {
            self.plugin = plugin
            let settings = plugin.plan.bundle.manifest.sensor
            detector = ChangeDetector(settings?.thresholds ?? [:], thresholds)
            self.interval = AdaptiveInterval(base: interval ?? settings?.intervalSeconds ?? 10)
        }
    }

    public enum Event: Sendable {
        case stored(StoredReading)
        case unchanged(sensor: String, SensorReading)
        case failed(sensor: String, String)
    }

    public let sensors: [Sensor]
    private let store: ObservationStore
    /// Readings older than this many seconds are deleted (default 7 days).
    public let retention: Double
    private var lastPrune = Date.distantPast

    public init(sensors: [Sensor], store: ObservationStore, retention: Double = 7 * 86400) throws {
        self.sensors = sensors
        self.store = store
        self.retention = retention
        for sensor in sensors { sensor.lastStored = try store.latestReading(sensor.id)?.reading }
    }

    /// Samples one sensor now, stores the reading if it changed, and schedules its next sample.
    @discardableResult
    public func sample(_ sensor: Sensor, now: Date = Date()) -> Event {
        let event: Event
        do {
            switch try sensor.plugin.call(method: "sensor/sample", input: Array("{}".utf8)) {
            case .pluginError(let bytes):
                let message = PluginInstance.CallOutcome.errorMessage(bytes)
                sensor.interval.failed()
                event = .failed(sensor: sensor.id, message)
            case .result(let bytes):
                let reading = SensorReading(json: try JSONValue(parsing: bytes))
                sensor.latest = reading
                let changed = sensor.detector.changes(from: sensor.lastStored, to: reading)
                if changed.isEmpty {
                    sensor.interval.stable()
                    event = .unchanged(sensor: sensor.id, reading)
                } else {
                    let stored = StoredReading(sensor: sensor.id, takenAt: now, reading: reading, changed: changed)
                    try store.record(stored)
                    sensor.lastStored = reading
                    if changed != ["first"] { sensor.interval.changed() }
                    event = .stored(stored)
                }
            }
        } catch {
            sensor.interval.failed()
            event = .failed(sensor: sensor.id, "\(error)")
        }
        sensor.due = now.addingTimeInterval(sensor.interval.current)
        if now.timeIntervalSince(lastPrune) > 3600 {
            _ = try? store.prune(olderThan: retention, now: now)
            lastPrune = now
        }
        return event
    }

    /// Samples every sensor that is due at `now`.
    public func sampleDue(now: Date = Date()) -> [Event] {
        sensors.filter { $0.due <= now }.map { sample($0, now: now) }
    }

    /// When the next sensor is due (distant future without sensors).
    public var nextDue: Date { sensors.map(\.due).min() ?? .distantFuture }

    /// Samples each sensor when it is due until `shouldStop` says so (checked at least every 200 ms).
    public func run(shouldStop: () -> Bool, onEvent: (Event) -> Void) {
        while !shouldStop() {
            sampleDue().forEach(onEvent)
            Thread.sleep(forTimeInterval: min(0.2, max(0.001, nextDue.timeIntervalSinceNow)))
        }
    }

    public func stop() { for sensor in sensors { sensor.plugin.stop() } }
}
