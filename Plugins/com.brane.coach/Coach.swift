import BraneBiometrics
import BranePluginCodable

/// com.brane.coach — load management from the same daily stream as the neuroscientist.
///
/// `specialist/consult` {readings: [...]} → acute:chronic workload ratio, monotony, strain and a
/// push / hold / deload call with reasons. Before answering it consults com.brane.neuroscientist
/// through the host (when `consultNeuroscientist` is on) and lets its recovery status weigh in.
struct Coach: BranePlugin {
    static let id = "com.brane.coach"
    static let version = "0.1.0"
    static let kind = PluginKind.specialist
    static let neuroscientist = "com.brane.neuroscientist"

    let host: PluginHost
    let consultNeuroscientist: Bool

    init(host: PluginHost) throws {
        struct Config: Decodable { var consultNeuroscientist: Bool? }
        self.host = host
        consultNeuroscientist = try decodeJSON(Config.self, from: host.configJSON).consultNeuroscientist ?? true
    }

    /// The part of the neuroscientist's assessment the coach uses.
    struct Recovery: Codable {
        var status: String
        var cnsFatigue: String
        var deviation: Double
    }

    struct Advice: Encodable {
        var date: String
        var acuteLoad: Double
        var chronicLoad: Double
        var acwr: Double?
        var monotony: Double?
        var strain: Double?
        /// push | hold | deload
        var recommendation: String
        var reasons: [String]
        var recovery: Recovery?
        var note = "General training guidance, not medical advice."
    }

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "specialist/consult" else {
            throw PluginError("unknown method \(method); this specialist answers specialist/consult")
        }
        let readings = try decodeJSON(ReadingHistory.self, from: input).readings
        guard !readings.isEmpty else { throw PluginError("readings is empty; send at least one day") }
        let recovery = consultNeuroscientist
            ? try decodeJSON(Recovery.self, from: try host.consult(Self.neuroscientist, input: input)) : nil
        return try encodeJSON(advise(readings, recovery: recovery))
    }

    func advise(_ readings: [DailyReading], recovery: Recovery?) -> Advice {
        let workload = WorkloadRatio(readings)
        let week = readings.suffix(7).map(\.load)
        let weekSD = standardDeviation(week)
        // Monotony (Foster): mean daily load over its SD across the week; strain = weekly load × monotony.
        let monotony = weekSD > 0 ? mean(week) / weekSD : nil
        let strain = monotony.map { week.reduce(0, +) * $0 }

        var deload: [String] = [], hold: [String] = [], push: [String] = []
        if let acwr = workload.ratio {
            let text = "acute:chronic workload ratio is \(rounded(acwr))"
            if acwr > 1.5 { deload.append("\(text), above 1.5: a load spike") }
            else if acwr > 1.3 { hold.append("\(text), above the 0.8–1.3 range") }
            else if acwr < 0.8 { push.append("\(text), below 0.8: room to build") }
        } else {
            hold.append("no chronic load yet: build gradually")
        }
        if let monotony, monotony > 2 { hold.append("training monotony is \(rounded(monotony)), above 2: vary hard and easy days") }
        switch recovery?.status {
        case "fatigued": deload.append("the neuroscientist reports high CNS fatigue (HRV \(rounded(-(recovery?.deviation ?? 0))) SD below baseline)")
        case "strained": hold.append("the neuroscientist reports strained recovery")
        case "recovered": push.append("the neuroscientist reports good recovery")
        default: break
        }
        let (call, reasons) = !deload.isEmpty ? ("deload", deload) : !hold.isEmpty ? ("hold", hold)
            : !push.isEmpty ? ("push", push) : ("hold", ["load and recovery are in their usual range: keep the plan"])
        return Advice(date: readings.last!.date, acuteLoad: rounded(workload.acute), chronicLoad: rounded(workload.chronic),
                      acwr: workload.ratio.map { rounded($0) }, monotony: monotony.map { rounded($0) }, strain: strain.map { rounded($0, 1) },
                      recommendation: call, reasons: reasons, recovery: recovery)
    }
}

@_cdecl("brane_plugin_entry")
public func braneCoachEntry() -> UnsafeRawPointer { exportPlugin(Coach.self) }
