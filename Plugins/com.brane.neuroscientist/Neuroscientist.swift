import BraneBiometrics
import BranePluginCodable

/// com.brane.neuroscientist — a recovery specialist over daily HRV, resting HR, sleep and load.
///
/// `specialist/consult` {readings: [...]} → an assessment: 7-day against 28-day baselines, the
/// deviation in standard units, a recovery / CNS-fatigue status and recommendations with reasons.
/// `specialist/event` {one reading} → {alerts: [...]}: the HRV-drop rule over the readings fed so far.
/// General-wellness wording only: it never names a condition or a diagnosis.
struct Neuroscientist: BranePlugin {
    static let id = "com.brane.neuroscientist"
    static let version = "0.1.0"
    static let kind = PluginKind.specialist

    let rule: HRVDropRule
    /// Events fed so far (a class: invoke is non-mutating, the state lives for the process).
    let stream = EventStream()

    init(host: PluginHost) throws {
        struct Config: Decodable { var hrvDrop: HRVDropRule.Settings? }
        rule = HRVDropRule(try decodeJSON(Config.self, from: host.configJSON).hrvDrop ?? .init())
        // A replay of the manifest's window must rebuild the rule's state: a full baseline and then
        // a streak long enough to decide (see Settings.replayedDays) — with room for corrections
        // (a day sent again replaces it, but is one more event in the window).
        guard rule.settings.replayedDays * Self.eventsPerDay <= Self.window else {
            throw PluginError("hrvDrop: baselineDays + consecutiveDays + 1 is \(rule.settings.replayedDays), more than the "
                + "\(Self.window / Self.eventsPerDay) days the host replays after a restart (specialist.window in the manifest, "
                + "\(Self.window) events at up to \(Self.eventsPerDay) a day)")
        }
        try rule.settings.check()
    }

    /// The manifest's `specialist.window`, in events, and the events a day it allows for (the
    /// reading and up to three corrections).
    static let window = 256, eventsPerDay = 4

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        switch method {
        case "specialist/consult":
            let history = try decodeJSON(ReadingHistory.self, from: input).readings
            guard !history.isEmpty else { throw PluginError("readings is empty; send at least one day") }
            return try encodeJSON(Assessment(history, rule: rule))
        case "specialist/event":
            stream.append(try decodeJSON(DailyReading.self, from: input), keeping: rule.settings.baselineDays + 1)
            return try encodeJSON(["alerts": rule.evaluate(stream)])
        default:
            throw PluginError("unknown method \(method); this specialist answers specialist/consult and specialist/event")
        }
    }
}

final class EventStream {
    private(set) var readings: [DailyReading] = []
    /// Consecutive days, up to today, that met the drop condition; and whether yesterday met the compound one.
    var dropStreak = 0
    var compoundYesterday = false

    func append(_ reading: DailyReading, keeping limit: Int) {
        if readings.last?.date == reading.date { readings.removeLast() }  // a corrected reading replaces the day
        readings.append(reading)
        if readings.count > limit { readings.removeFirst(readings.count - limit) }
    }
}

/// The complex-event rule "HRV drop".
struct HRVDropRule {
    struct Settings: Decodable {
        var dropPercent = 10.0
        var consecutiveDays = 3
        var baselineDays = 28
        var minimumHistory = 14
        var poorSleepHours = 6.0
        var poorSleepQuality = 60.0
        var highLoadRatio = 1.3

        /// Days a fresh instance needs replayed to raise exactly what a long-lived one would: the
        /// baseline is exact from day `baselineDays + 1` of a replay, and a streak is decided once
        /// `consecutiveDays` exact days are in (a longer one has already fired either way).
        var replayedDays: Int { baselineDays + consecutiveDays + 1 }

        /// Refuses a setting the rule cannot run with (a count below 1 would make a window negative);
        /// the replay window bounds the counts from above.
        func check() throws {
            for (name, value, range) in [("dropPercent", dropPercent, 0.1...100), ("poorSleepHours", poorSleepHours, 0...24),
                                         ("poorSleepQuality", poorSleepQuality, 0...100), ("highLoadRatio", highLoadRatio, 0.1...10)] {
                guard range.contains(value) else { throw PluginError("hrvDrop.\(name): \(value) is outside \(range.lowerBound)–\(range.upperBound)") }
            }
            for (name, value) in [("consecutiveDays", consecutiveDays), ("baselineDays", baselineDays), ("minimumHistory", minimumHistory)] {
                guard value >= 1 else { throw PluginError("hrvDrop.\(name): \(value) is below 1") }
            }
            guard minimumHistory <= baselineDays else {
                throw PluginError("hrvDrop.minimumHistory: \(minimumHistory) is more than baselineDays (\(baselineDays)), so no baseline would ever form")
            }
        }
    }

    struct Alert: Encodable {
        var rule = "hrv-drop"
        var date: String
        var trigger: String
        var message: String
        var rmssd: Double
        var baseline: Double
        var percentBelow: Double
    }

    let settings: Settings
    init(_ settings: Settings) { self.settings = settings }

    /// The baseline for the newest reading: the mean of the days before it, up to `baselineDays`.
    func baseline(_ readings: [DailyReading]) -> Double? {
        let before = readings.dropLast().suffix(settings.baselineDays)
        return before.count >= settings.minimumHistory ? mean(before.map(\.rmssd)) : nil
    }

    /// Fires once when a condition starts (edge-triggered), so an episode is one alert, not one a day.
    func evaluate(_ stream: EventStream) -> [Alert] {
        guard let today = stream.readings.last, let baseline = baseline(stream.readings) else { return [] }
        let below = (baseline - today.rmssd) / baseline * 100
        stream.dropStreak = below > settings.dropPercent ? stream.dropStreak + 1 : 0
        let poorSleep = today.sleepHours < settings.poorSleepHours || today.sleepQuality < settings.poorSleepQuality
        let highLoad = (WorkloadRatio(stream.readings).ratio ?? 0) >= settings.highLoadRatio
        let compound = below > 0 && poorSleep && highLoad
        defer { stream.compoundYesterday = compound }

        var alerts: [Alert] = []
        func alert(_ trigger: String, _ message: String) {
            alerts.append(Alert(date: today.date, trigger: trigger, message: message, rmssd: today.rmssd,
                                baseline: rounded(baseline), percentBelow: rounded(below, 10)))
        }
        if stream.dropStreak == settings.consecutiveDays {
            alert("sustained-drop", "HRV has been more than \(format(settings.dropPercent))% below your \(settings.baselineDays)-day baseline for \(settings.consecutiveDays) days in a row: recovery is lagging behind training.")
        }
        if compound && !stream.compoundYesterday {
            alert("drop-with-poor-sleep-and-high-load", "HRV is below baseline while sleep was poor and training load is high: a sign of accumulating fatigue.")
        }
        return alerts
    }
}

/// What a consult answers.
struct Assessment: Encodable {
    struct Baseline: Encodable {
        var rmssd7: Double
        var rmssd28: Double
        var rmssdSD28: Double
        var restingHR7: Double
        var restingHR28: Double
    }

    struct Recommendation: Encodable {
        var action: String
        var reason: String
    }

    var date: String
    var days: Int
    var baseline: Baseline
    /// (7-day mean − 28-day mean) / 28-day SD of RMSSD; the 28 days are those before the 7.
    var deviation: Double
    /// recovered | normal | strained | fatigued
    var status: String
    /// low | moderate | high
    var cnsFatigue: String
    var alerts: [HRVDropRule.Alert]
    var recommendations: [Recommendation]
    var note = "General wellness guidance from trends in your own data; not a medical assessment. See a clinician about symptoms or concerns."

    init(_ history: [DailyReading], rule: HRVDropRule) {
        // The 7-day window against the 28 days before it, so a bad week does not dilute its own baseline.
        let last7 = history.suffix(7)
        let before = history.dropLast(7)
        let last28 = before.count >= 7 ? before.suffix(28) : history.suffix(28)
        let rmssd28 = mean(last28.map(\.rmssd)), sd28 = standardDeviation(last28.map(\.rmssd))
        let rmssd7 = mean(last7.map(\.rmssd))
        let hr7 = mean(last7.map(\.restingHR)), hr28 = mean(last28.map(\.restingHR))
        date = history.last!.date
        days = history.count
        baseline = Baseline(rmssd7: rounded(rmssd7), rmssd28: rounded(rmssd28), rmssdSD28: rounded(sd28),
                            restingHR7: rounded(hr7), restingHR28: rounded(hr28))
        deviation = sd28 > 0 ? rounded((rmssd7 - rmssd28) / sd28) : 0

        // Replay the rule over the history so a consult sees the alerts a feed would have raised.
        let stream = EventStream()
        var alerts: [HRVDropRule.Alert] = []
        for reading in history {
            stream.append(reading, keeping: rule.settings.baselineDays + 1)
            alerts += rule.evaluate(stream)
        }
        self.alerts = alerts.filter { alert in last7.contains { $0.date == alert.date } }

        let heartRateUp = hr7 - hr28 >= 3
        let sleep7 = mean(last7.map(\.sleepHours))
        let fatigueSigns = (deviation <= -1.5 ? 2 : deviation <= -0.75 ? 1 : 0) + (heartRateUp ? 1 : 0) + (sleep7 < 6.5 ? 1 : 0)
        (status, cnsFatigue) = switch fatigueSigns {
        case 3...: ("fatigued", "high")
        case 2: ("strained", "moderate")
        case 1: ("normal", "low")
        default: deviation >= 0.5 ? ("recovered", "low") : ("normal", "low")
        }

        var advice: [Recommendation] = []
        if deviation <= -0.75 {
            advice.append(.init(action: "Replace the next hard session with easy aerobic work or rest until HRV returns to your 28-day range.",
                                reason: "7-day HRV is \(format(-deviation)) standard deviations below your 28-day baseline."))
        }
        if heartRateUp {
            advice.append(.init(action: "Keep intensity low while resting heart rate is elevated.",
                                reason: "7-day resting HR is \(format(rounded(hr7 - hr28))) bpm above your 28-day average."))
        }
        if sleep7 < 7 {
            advice.append(.init(action: "Aim for at least 7–9 hours of sleep with a regular bedtime.",
                                reason: "You averaged \(format(rounded(sleep7))) h of sleep over the last 7 days."))
        }
        if advice.isEmpty {
            advice.append(.init(action: "Train as planned; keep measuring HRV at the same time each morning.",
                                reason: "HRV, resting HR and sleep are within your usual range."))
        }
        recommendations = advice
    }
}

func format(_ value: Double) -> String {
    value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(rounded(value))
}

@_cdecl("brane_plugin_entry")
public func braneNeuroscientistEntry() -> UnsafeRawPointer { exportPlugin(Neuroscientist.self) }
