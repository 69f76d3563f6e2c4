import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// A neuron file whose host section lists `tools` (and offers resources): tier `tier`, with the
/// memory sensor (and `sensors`), the machine scanner and the neuroscientist.
func hostNeuronYAML(id: String = "host-test", tier: Int = 0, tools: [String] = HostTool.allCases.map(\.rawValue),
                    resources: Bool = true, sensors: [String] = [], extra: String = "",
                    endpoint: String = "http://127.0.0.1:11434") -> String {
    neuronYAML(id: id, tier: tier, endpoint: endpoint, more: """
    specialists:
      - plugin: com.brane.neuroscientist
    sensors:
      - {plugin: com.brane.sensor.memory, interval: 1s}
    \(sensors.map { "  - {plugin: \($0)}\n" }.joined())scanners:
      - plugin: com.brane.scanner.machine
    host:
      tools: [\(tools.joined(separator: ", "))]
      resources: \(resources)
    \(extra)
    """)
}

/// Issue 16, point 1: the host's own read-only tools over a neuron's readings, assets and alerts.
final class HostToolsTests: XCTestCase {
    let plugins = PluginLocator(searchDirectories: [BundledPlugins.directory])
    private lazy var directory: URL = {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }()

    private func neuron(_ yaml: String) throws -> ResolvedNeuron {
        try NeuronLoader.parse(yaml, file: "host-test.yaml", plugins: plugins).neuron
    }

    private func problems(_ yaml: String) -> String {
        do {
            let warnings = try NeuronLoader.parse(yaml, file: "host-test.yaml", plugins: plugins).warnings
            return warnings.map(\.description).joined(separator: "\n")
        } catch {
            return "\(error)"
        }
    }

    private func store() throws -> ObservationStore {
        try ObservationStore(path: directory.appendingPathComponent("observations-\(UUID().uuidString.prefix(6)).sqlite").path)
    }

    private func reading(_ sensor: String, at: Date, _ metrics: [String: JSONValue], states: [String: JSONValue] = [:]) -> StoredReading {
        StoredReading(sensor: sensor, takenAt: at, reading: SensorReading(json: ["metrics": .object(metrics), "states": .object(states)]), changed: ["first"])
    }

    func testTheHostSectionIsCheckedWithPositionsAndSuggestions() throws {
        let misspelt = problems(hostNeuronYAML(tools: ["alert", "alerts", "alerts", "healthSummary"]))
        XCTAssertTrue(misspelt.contains("host-test.yaml:14:11: error: host.tools[0]: no host tool 'alert'; did you mean 'alerts'?"), misspelt)
        XCTAssertTrue(misspelt.contains("host.tools[2]: alerts is listed twice under host.tools"), misspelt)
        XCTAssertTrue(misspelt.contains("host.tools[3]: no host tool 'healthSummary'; did you mean 'health_summary'?"), misspelt)
        let notABool = problems(hostNeuronYAML().replacingOccurrences(of: "resources: true", with: "resources: \"true\""))
        XCTAssertTrue(notABool.contains("host.resources: expected true or false"), notABool)
        let unknownKey = problems(hostNeuronYAML().replacingOccurrences(of: "  resources: true", with: "  resource: true"))
        XCTAssertTrue(unknownKey.contains("host.resource: unknown key 'resource' is ignored; did you mean 'resources'?"), unknownKey)
        // A host tool with nothing to read is allowed, and said.
        let empty = problems(hostNeuronYAML(tools: ["assets"]).replacingOccurrences(of: "scanners:\n  - plugin: com.brane.scanner.machine\n", with: ""))
        XCTAssertTrue(empty.contains("host.tools[0]: assets reads what the neuron's scanners stored, and it lists none"), empty)
        let listed = problems(hostNeuronYAML().replacingOccurrences(of: "host:\n  tools: [\(HostTool.allCases.map(\.rawValue).joined(separator: ", "))]\n  resources: true",
                                                                    with: "host: [alerts, health_summary]"))
        XCTAssertTrue(listed.contains("host: expected a mapping, found a list; write host: {tools: [alerts, health_summary]}"), listed)
        let noTools = problems(hostNeuronYAML(tools: []))
        XCTAssertTrue(noTools.contains("host.resources: resources are the answers of the host tools listed in host.tools, and none are listed"), noTools)
        // A neuron without the section offers nothing new.
        let plain = try neuron(tierZeroNeuronYAML(id: "plain"))
        XCTAssertEqual(plain.config.host, HostAccess())
        XCTAssertFalse(plain.exposedTools.contains { HostTool(rawValue: $0.name) != nil })
    }

    func testHostToolAnswersNeverReachAHigherTierToolOrARemoteModel() throws {
        // The memory sensor's readings are tier 0: a tier-2 neuron may hold it, but not hand its
        // readings to a tier-2 tool or a model elsewhere.
        let remote = problems(hostNeuronYAML(tier: 2, tools: ["latest_reading"], endpoint: "https://models.example.com/v1"))
        XCTAssertTrue(remote.contains("host.tools[0]: output of host tool latest_reading (tier 0) may not reach model endpoint https://models.example.com/v1 (tier 2)"), remote)
        let fetch = problems(hostNeuronYAML(tier: 2, tools: ["alerts"], extra: "tools:\n  - plugin: com.brane.fetch\n"))
        XCTAssertTrue(fetch.contains("output of host tool alerts (tier 0) may not reach com.brane.fetch (tier 2)"), fetch)
        // The refusal is the host tool's: without it, none names it.
        XCTAssertFalse(problems(hostNeuronYAML(tier: 2, tools: [], endpoint: "https://models.example.com/v1")).contains("output of host tool"))
    }

    /// A flow refused at run time is reported (the CLI writes it to the audit log), for a host
    /// tool's data as for a plugin's.
    func testARunTimeRefusalIsReportedForTheAuditLog() throws {
        let neuron = try neuron(hostNeuronYAML(tier: 2, tools: [], extra: "tools:\n  - plugin: com.brane.fetch\n")
            .replacingOccurrences(of: "specialists:\n  - plugin: com.brane.neuroscientist\n", with: ""))
        final class Seen: @unchecked Sendable { let lock = NSLock(); var events: [SandboxEvent] = [] }
        let seen = Seen()
        SandboxEvents.install { event in seen.lock.withLock { seen.events.append(event) } }
        defer { SandboxEvents.install { _ in } }
        let dispatcher = try ToolDispatcher(neuron: neuron, runner: try ResourceLocator.current.runner(), observations: try store())
        defer { dispatcher.stop() }
        // The conversation holds tier-0 data (a host tool's answer about a tier-0 sensor, say): the tier-2 tool may not have it.
        let refused = dispatcher.call("fetch_url", arguments: ["url": "https://example.com/"], dataTier: .sensitive)
        XCTAssertTrue(refused.isError && refused.text.contains("may not reach com.brane.fetch (tier 2)"), refused.text)
        let reported = seen.lock.withLock { seen.events }.compactMap { event -> (String, String?)? in
            if case .flowRefused(let destination, let neuronID, _) = event { return (destination, neuronID) } else { return nil }
        }
        XCTAssertEqual(reported.map(\.0), ["com.brane.fetch"])
        XCTAssertEqual(reported.map(\.1), ["host-test"])
    }

    func testAnswersHoldOnlyTheNeuronsOwnObservationsAtTheirTier() throws {
        let neuron = try neuron(hostNeuronYAML(tier: 1, sensors: ["com.brane.sensor.services"]))
        let store = try store()
        let now = Date()
        try store.record(reading("com.brane.sensor.memory", at: now.addingTimeInterval(-60), ["memory.usedPercent": 41]))
        try store.record(reading("com.brane.sensor.memory", at: now.addingTimeInterval(-10), ["memory.usedPercent": 47]))
        try store.record(reading("com.brane.sensor.services", at: now.addingTimeInterval(-5), ["services.failed": 0]))
        try store.record(reading("com.brane.sensor.network", at: now, ["network.rxBytes": 1]))   // another neuron's sensor
        for (neuronID, specialist, date) in [("host-test", "com.brane.neuroscientist", "2026-03-03"), ("host-test", "com.brane.neuroscientist", "2026-03-04"),
                                             ("someone-else", "com.brane.neuroscientist", "2026-03-05"),
                                             // Under its id but by a specialist it does not enable (another file of the same id): not its data.
                                             ("host-test", "com.example.other", "2026-03-06")] {
            try store.record(StoredAlert(neuron: neuronID, specialist: specialist, raisedAt: now, alert: ["rule": "hrv-drop", "date": .string(date)]))
        }
        _ = try store.recordScan(scanner: "com.brane.scanner.machine", assets: [("machine", "m1", "this-host", ["os": "Debian"])], notes: [])
        _ = try store.recordScan(scanner: "com.example.other", assets: [("machine", "m2", "not-ours", [:])], notes: [])
        let observations = HostObservations(neuron: neuron, store: store)

        let latest = observations.answer(.latestReading, arguments: [:])
        XCTAssertFalse(latest.isError, latest.text)
        XCTAssertEqual(latest.structured?["readings"]?.arrayValue?.compactMap { $0["sensor"]?.stringValue },
                       ["com.brane.sensor.memory", "com.brane.sensor.services"], "the newest of each of its sensors, no other's")
        XCTAssertEqual(latest.structured?["readings"]?.arrayValue?.first?["metrics"]?["memory.usedPercent"], 47)
        XCTAssertEqual(latest.tier, .sensitive, "the memory sensor's readings are tier 0")
        XCTAssertEqual(latest.structured?["privacyTier"], 0)
        let services = observations.answer(.latestReading, arguments: ["sensor": "com.brane.sensor.services"])
        XCTAssertEqual(services.tier, .local, "only the tier-1 sensor's reading: tier 1")

        let alerts = observations.answer(.alerts, arguments: [:])
        XCTAssertEqual(alerts.structured?["alerts"]?.arrayValue?.compactMap { $0["alert"]?["date"]?.stringValue }, ["2026-03-03", "2026-03-04"])
        XCTAssertEqual(alerts.structured?["total"], 2)
        let newest = observations.answer(.alerts, arguments: ["limit": 1])
        XCTAssertEqual(newest.structured?["alerts"]?.arrayValue?.compactMap { $0["alert"]?["date"]?.stringValue }, ["2026-03-04"])
        XCTAssertEqual(newest.structured?["truncated"], true)
        XCTAssertEqual(observations.answer(.alerts, arguments: ["since": "2000-01-01T00:00:00Z"]).structured?["total"], 2)
        let badSince = observations.answer(.alerts, arguments: ["since": "yesterday"])
        XCTAssertTrue(badSince.isError && badSince.text.contains("since: expected a duration such as 24h or 7d"), badSince.text)

        let assets = observations.answer(.assets, arguments: [:])
        XCTAssertEqual(assets.structured?["assets"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["this-host"], "only its scanners' assets")
        XCTAssertEqual(observations.answer(.assets, arguments: ["name": "HOST"]).structured?["total"], 1)
        XCTAssertEqual(observations.answer(.assets, arguments: ["name": "%"]).structured?["total"], 0, "a name filter is text, not a LIKE pattern")
        XCTAssertEqual(observations.answer(.assetChanges, arguments: [:]).structured?["changes"]?.arrayValue?.compactMap { $0["change"]?.stringValue }, ["added"])

        let summary = observations.answer(.healthSummary, arguments: [:])
        XCTAssertEqual(summary.structured?["sensors"]?.arrayValue?.count, 2)
        XCTAssertEqual(summary.structured?["alerts"]?["last7Days"], 2)
        XCTAssertEqual(summary.structured?["assets"], [["kind": "machine", "present": 1]])
        XCTAssertEqual(summary.tier, .sensitive)

        // A file of the same id without the specialist reads none of its alerts.
        let sameID = try self.neuron(hostNeuronYAML(tier: 2).replacingOccurrences(of: "specialists:\n  - plugin: com.brane.neuroscientist\n", with: ""))
        XCTAssertEqual(HostObservations(neuron: sameID, store: store).answer(.alerts, arguments: [:]).structured?["total"], 0)
    }

    /// Red team: the store is a file of the user's home; rows written into it by hand must not
    /// crash an answer, break its JSON or its bound.
    func testHandWrittenRowsInTheStoreNeitherCrashNorUnboundAnAnswer() throws {
        let path = directory.appendingPathComponent("hostile.sqlite").path
        let store = try ObservationStore(path: path)
        _ = try store.recordScan(scanner: "com.brane.scanner.machine", assets: [("machine", "m1", "this-host", [:])], notes: [])
        let big = String(repeating: "\u{1b}k", count: 10_000)
        let script = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.execute("INSERT INTO readings (sensor, takenAt, reading, changed) VALUES ('com.brane.sensor.memory', 1e300, '{\\"metrics\\":{}}', '[]')")
            db.execute("INSERT INTO readings (sensor, takenAt, reading, changed) VALUES ('com.brane.sensor.memory', 'zzz', 'not json', 5)")
            db.execute("INSERT INTO readings (sensor, takenAt, reading, changed) VALUES ('com.brane.sensor.memory', 9e999, '{}', '[]')")
            db.execute("INSERT INTO alerts (neuron, specialist, rule, raisedAt, alert) VALUES ('host-test', 'com.brane.neuroscientist', 'r', 1e300, '{}')")
            db.execute("INSERT INTO alerts (neuron, specialist, rule, raisedAt, alert) VALUES (X'FFFE', 'com.brane.neuroscientist', X'00', 'x', X'01')")
            db.execute("INSERT INTO scans (scanner, startedAt, assets) VALUES ('com.brane.scanner.machine', -1e300, 'many')")
            for i in range(600):
                db.execute("INSERT INTO assets (id, kind, name, scanner, properties, firstSeen, lastSeen, scanID, present) VALUES (?, ?, 'n', 'com.brane.scanner.machine', '{}', 0, 0, 1, 1)",
                           ("h%d" % i, sys.argv[2] + str(i)))
            for kind in ["", ".", ".."]:
                db.execute("INSERT INTO assets (id, kind, name, scanner, properties, firstSeen, lastSeen, scanID, present) VALUES (?, ?, 'n', 'com.brane.scanner.machine', '{}', 0, 0, 1, 1)",
                           ("k" + kind, kind))
            db.commit()
            """
        let run = try CLI.capture("/usr/bin/env", ["python3", "-c", script, path, big])
        XCTAssertEqual(run.status, 0, run.stderr)
        let observations = HostObservations(neuron: try neuron(hostNeuronYAML()), store: try ObservationStore(path: path))
        for tool in HostTool.allCases {
            let arguments: JSONValue = tool == .sensorHistory ? ["sensor": "com.brane.sensor.memory", "since": "36000d"] : [:]
            let answer = observations.answer(tool, arguments: arguments)
            XCTAssertFalse(answer.isError, "\(tool): \(answer.text.prefix(300))")
            XCTAssertNotNil(try? JSONValue(parsing: answer.text), "\(tool) answers JSON")
            XCTAssertLessThanOrEqual(answer.text.utf8.count, HostObservations.answerLimit + 8192, "\(tool) is bounded")
        }
        let resources = ObservationResources(observations)
        let listed = try resources.list()
        XCTAssertLessThanOrEqual(listed.count, 4 + 100 + 2, "at most 100 kinds are listed")
        let uris = listed.compactMap { $0["uri"]?.stringValue }
        XCTAssertFalse(uris.contains("brane://host-test/assets/"), "an empty kind has no URI")
        XCTAssertFalse(uris.contains("brane://host-test/assets/%2E%2E"), "clients resolve dot segments away, even encoded: not listed")
        XCTAssertEqual(resources.resource("brane://host-test/assets/%2E%2E"), .assets(kind: ".."), "but its canonical URI reads")
        for uri in uris { XCTAssertNotNil(resources.resource(uri), "every listed URI reads: \(uri.prefix(80))") }
        XCTAssertEqual(resources.resource("brane://host-test/assets/.."), nil)
    }

    func testTheSanitiserIsLinearAndCutsAtItsLimit() {
        let escapes = String(repeating: "\u{85}", count: 1_000_000)
        let started = Date()
        let cut = UntrustedText.sanitized(escapes, limit: 256)
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.5, "a megabyte of escapes is cut at the limit, not escaped whole")
        XCTAssertTrue(cut.hasPrefix("\\u0085") && cut.hasSuffix("bytes cut]"), String(cut.suffix(40)))
        XCTAssertLessThanOrEqual(cut.utf8.count, 256 + 40)
        XCTAssertEqual(Timestamp.string(Date(timeIntervalSince1970: 1e300)), "9999-12-31T23:59:59Z")
        XCTAssertEqual(Timestamp.string(Date(timeIntervalSince1970: -.infinity)), "0001-01-01T00:00:00Z")
        XCTAssertNil(DurationText.milliseconds("0x10d"), "a duration is decimal")
        XCTAssertNil(DurationText.milliseconds("1e3s"))
        XCTAssertEqual(DurationText.milliseconds("1.5s"), 1500)
    }

    func testHistoryIsDownsampledAndEveryAnswerIsBounded() throws {
        let neuron = try neuron(hostNeuronYAML())
        let store = try store()
        let now = Date()
        for index in 0..<10_000 {
            try store.record(reading("com.brane.sensor.memory", at: now.addingTimeInterval(-Double(10_000 - index) * 60), ["memory.usedPercent": .number(Double(index % 100))]))
        }
        let observations = HostObservations(neuron: neuron, store: store)
        let history = observations.answer(.sensorHistory, arguments: ["sensor": "com.brane.sensor.memory", "since": "30d", "metric": "memory.usedPercent", "points": 50])
        XCTAssertFalse(history.isError, history.text)
        XCTAssertEqual(history.structured?["readingsInRange"], 10_000)
        XCTAssertEqual(history.structured?["downsampled"], true)
        let points = history.structured?["points"]?.arrayValue ?? []
        XCTAssertTrue((45...50).contains(points.count), "one per slice of the readings' span: \(points.count)")
        XCTAssertNotNil(points.first?["value"]?.numberValue)
        let misspelt = observations.answer(.sensorHistory, arguments: ["sensor": "com.brane.sensor.memory", "since": "30d", "metric": "memory.usedPercnt"])
        XCTAssertTrue(misspelt.isError && misspelt.text.contains("has no metric 'memory.usedPercnt'; did you mean 'memory.usedPercent'?"), misspelt.text)

        // A sensor may store large readings: the answer stops taking them at its bound.
        let big = String(repeating: "x", count: 100_000)
        for index in 0..<6 {
            try store.record(reading("com.brane.sensor.memory", at: now.addingTimeInterval(-Double(index) - 1), ["memory.usedPercent": 1], states: ["blob": .string(big)]))
        }
        let bounded = observations.answer(.sensorHistory, arguments: ["sensor": "com.brane.sensor.memory", "since": "1m"])
        XCTAssertEqual(bounded.structured?["truncated"], true)
        XCTAssertLessThanOrEqual(bounded.text.utf8.count, HostObservations.answerLimit + 4096, "bounded in bytes")
    }

    func testTheDispatcherChecksArgumentsAgainstTheHostToolsSchemas() throws {
        let neuron = try neuron(hostNeuronYAML())
        let dispatcher = try ToolDispatcher(neuron: neuron, runner: try ResourceLocator.current.runner(), observations: try store())
        defer { dispatcher.stop() }
        XCTAssertEqual(dispatcher.tools.filter { $0.use.id == "host" }.map(\.name), HostTool.allCases.map(\.rawValue))
        for (arguments, says) in [
            (["sensor": "com.brane.sensor.network"], "arguments.sensor"),          // not one of its sensors
            (["sensor": "com.brane.sensor.mem\u{043E}ry"], "arguments.sensor"),    // a Cyrillic о
            (["bogus": 1], "arguments.bogus"),
            (["sensor": 7], "arguments.sensor"),
        ] as [(JSONValue, String)] {
            let refused = dispatcher.call("latest_reading", arguments: arguments)
            XCTAssertTrue(refused.isError && refused.text.contains("invalid arguments for latest_reading") && refused.text.contains(says), refused.text)
        }
        XCTAssertTrue(dispatcher.call("alerts", arguments: ["limit": 501]).text.contains("arguments.limit"))
        // What the model passes a host tool stays in the host: a tier-0 conversation may ask it.
        let asked = dispatcher.call("alerts", arguments: [:], dataTier: .sensitive)
        XCTAssertFalse(asked.isError, asked.text)
        XCTAssertThrowsError(try ToolDispatcher(neuron: neuron, runner: try ResourceLocator.current.runner()), "host tools need their store")
    }

    /// Every total an answer reports is counted up to its limit, never over the whole table.
    func testTotalsAreCountedUpToTheirLimit() throws {
        let store = try store()
        let now = Date()
        for index in 0..<5 {
            try store.record(StoredAlert(neuron: "n", specialist: "s", alert: ["rule": "r", "n": .number(Double(index))]))
            try store.record(reading("sensor", at: now.addingTimeInterval(-Double(index)), ["m": 1]))
        }
        _ = try store.recordScan(scanner: "scanner", assets: (0..<5).map { ("process", "p\($0)", "process \($0)", [:]) }, notes: [])
        let week = now.addingTimeInterval(-7 * 86_400)
        XCTAssertEqual(try store.newestAlerts(neuron: "n", specialists: ["s"], since: week, limit: 1, countLimit: 3).total, 3)
        XCTAssertEqual(try store.assets(scanners: ["scanner"], kind: nil, nameContains: nil, includeRemoved: false, limit: 1, countLimit: 3).total, 3)
        XCTAssertEqual(try store.assetChanges(scanners: ["scanner"], since: week, limit: 1, countLimit: 3).total, 3)
        XCTAssertEqual(try store.sampledHistory("sensor", in: week...now, points: 1, countLimit: 3).inRange, 3)
        XCTAssertEqual(try store.assets(scanners: ["scanner"], kind: nil, nameContains: nil, includeRemoved: false, limit: 1).total, 5, "below the limit: exact")
    }

    /// The host tools' queue holds at most `hostQueueLimit` waiting calls: a flood of slow
    /// questions (500 index seeks each) is refused at once past it, and every call admitted is answered.
    func testAFloodOfHostToolCallsIsRefusedPastTheQueueLimit() throws {
        let neuron = try neuron(hostNeuronYAML())
        let store = try store()
        let now = Date()
        try store.record(readings: (0..<10_000).map { index in
            reading("com.brane.sensor.memory", at: now.addingTimeInterval(-Double(10_000 - index) * 60), ["memory.usedPercent": .number(Double(index % 100))])
        })
        let dispatcher = try ToolDispatcher(neuron: neuron, runner: try ResourceLocator.current.runner(), observations: store)
        defer { dispatcher.stop() }
        final class Outcomes: @unchecked Sendable {
            let lock = NSLock()
            var answered = 0, busy = 0
        }
        let outcomes = Outcomes(), group = DispatchGroup()
        let question: JSONValue = ["sensor": "com.brane.sensor.memory", "since": "30d", "points": 500]
        for _ in 0..<1_000 {
            group.enter()
            dispatcher.submit("sensor_history", arguments: question) { result in
                outcomes.lock.withLock {
                    if result.text.contains("the host tools are busy: \(ToolDispatcher.hostQueueLimit) calls are waiting") { outcomes.busy += 1 }
                    else if !result.isError { outcomes.answered += 1 }
                }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "every call gets an answer or a refusal")
        XCTAssertGreaterThan(outcomes.busy, 0, "past the limit, calls are refused at once")
        XCTAssertGreaterThanOrEqual(outcomes.answered, ToolDispatcher.hostQueueLimit, "the calls it admitted are answered")
        XCTAssertEqual(outcomes.answered + outcomes.busy, 1_000)
        XCTAssertFalse(dispatcher.call("health_summary", arguments: [:]).isError, "once drained, it answers again")
    }

    func testResourceURIsAreCanonicalAndOnlyTheNeuronsOwn() throws {
        let resources = ObservationResources(HostObservations(neuron: try neuron(hostNeuronYAML()), store: try store()))
        let base = "brane://host-test/"
        for (uri, resource) in [("summary", .summary), ("alerts", .alerts), ("asset-changes", .assetChanges), ("assets", .assets(kind: nil)),
                                ("assets/process", .assets(kind: "process")), ("assets/a%2Fb%20c", .assets(kind: "a/b c")),
                                ("sensors/com.brane.sensor.memory/latest", .latest(sensor: "com.brane.sensor.memory")),
                                ("sensors/com.brane.sensor.memory/history", .history(sensor: "com.brane.sensor.memory"))] as [(String, ObservationResources.Resource)] {
            XCTAssertEqual(resources.resource(base + uri), resource, uri)
            XCTAssertEqual(resources.uri(resource), base + uri, "one URI per resource")
        }
        for uri in ["brane://other/alerts", "brane://host-test/alerts/", "brane://host-test//alerts", "BRANE://host-test/alerts", "brane://host-test/",
                    "brane://host-test/assets/", "brane://host-test/assets/a%2fb", "brane://host-test/assets/%70rocess", "brane://host-test/assets/%FF",
                    "brane://host-test/assets/%E2%80", "brane://host-test/assets/%zz", "brane://host-test/assets/a/b", "brane://host-test/sensors/../alerts",
                    "brane://host-test/sensors/com.brane.sensor.network/latest", "brane://host-test/sensors/com.brane.sensor.memory/latest?x=1",
                    "brane://host-test/alerts#x", "brane://host-test.evil/alerts", "brane://host-test/ALERTS", "brane://host-test/assets/caf\u{e9}",
                    base + "assets/" + String(repeating: "a", count: 3000)] {
            XCTAssertNil(resources.resource(uri), uri)
        }
        // Only the resources of the host tools listed exist.
        let some = ObservationResources(HostObservations(neuron: try neuron(hostNeuronYAML(tools: ["alerts", "latest_reading"])), store: try store()))
        XCTAssertEqual(try some.list().compactMap { $0["uri"]?.stringValue }, [base + "alerts", base + "sensors/com.brane.sensor.memory/latest"])
        XCTAssertEqual(some.templates().compactMap { $0["uriTemplate"]?.stringValue }, [base + "sensors/{sensor}/latest"])
        XCTAssertNil(some.resource(base + "summary"))
        XCTAssertNil(some.resource(base + "assets"))
        XCTAssertNotNil(some.resource(base + "alerts"))
        // Any text is a kind, and comes back as itself.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let kind = String(String.UnicodeScalarView((0..<Int.random(in: 1...12, using: &generator)).compactMap { _ in
                Unicode.Scalar(UInt32.random(in: [0x20...0x7e, 0x80...0x2fff, 0x1f300...0x1f5ff].randomElement(using: &generator)!, using: &generator))
            }))
            XCTAssertEqual(resources.resource(resources.uri(.assets(kind: kind))), .assets(kind: kind), kind)
        }
    }
}

/// Issue 16, point 2: a neuron's observations as MCP resources, with subscriptions, through the
/// official Python SDK client of both lines and through raw JSON-RPC.
final class ObservationResourcesMCPTests: XCTestCase {
    func testClientsOfBothSDKLinesListReadSubscribeAndHearBothHRVDropAlerts() throws {
        let dataset = BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl"
        for sdk in PythonTools.SDK.allCases {
            let directory = BundledPlugins.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let home = directory.appendingPathComponent("home"), neuron = directory.appendingPathComponent("resource-test.yaml")
            try hostNeuronYAML(id: "resource-test").write(to: neuron, atomically: true, encoding: .utf8)
            // The 90 days wait in the inbox; the run the client starts once subscribed feeds them.
            let inbox = home.appendingPathComponent("inbox/resource-test/biometrics.daily")
            try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: dataset, toPath: inbox.appendingPathComponent("hrv.jsonl").path)
            let brane = BuildProducts.brane.path, plugins = ["--plugins", BundledPlugins.directory]
            let feed = JSONValue.array(([brane, "neuron", "run", neuron.path, "--duration", "4s"] + plugins).map(JSONValue.string)).serialized()
            let run = try PythonTools.run("mcp_resources.py", ["2", feed, "--", brane, "mcp", "serve", "--neuron", neuron.path] + plugins,
                                          sdk: sdk, environment: ["BRANE_HOME": home.path])
            XCTAssertEqual(run.status, 0, "\(sdk): \(run.stderr)")
            let report = try JSONValue(parsing: run.stdout)
            XCTAssertEqual(report["sdk"]?.stringValue?.first, sdk == .v1 ? "1" : "2")
            XCTAssertEqual(report["subscribe"], true, "initialize offers resources with subscribe")
            let base = "brane://resource-test/"
            XCTAssertEqual(report["resources"], .array(["alerts", "asset-changes", "assets", "sensors/com.brane.sensor.memory/history",
                                                        "sensors/com.brane.sensor.memory/latest", "summary"].map { .string(base + $0) }), "\(sdk)")
            XCTAssertEqual(report["mimeTypes"], ["application/json"])
            XCTAssertEqual(report["templates"], .array(["assets/{kind}", "sensors/{sensor}/history", "sensors/{sensor}/latest"].map { .string(base + $0) }))
            XCTAssertEqual(report["before"]?["total"], 0)
            XCTAssertEqual(report["feed"]?["status"], 0, "\(report["feed"] ?? .null)")
            XCTAssertEqual(report["alertUpdates"], 2, "one notification per HRV-drop alert (\(sdk)): \(report)")
            XCTAssertTrue(report["updates"]?.arrayValue?.contains(.string(base + "sensors/com.brane.sensor.memory/latest")) ?? false,
                          "the run's first memory reading is news too: \(report["updates"] ?? .null)")
            XCTAssertEqual(report["after"]?["alerts"]?.arrayValue?.compactMap { $0["alert"]?["date"]?.stringValue }, ["2026-03-03", "2026-03-04"])
            XCTAssertEqual(report["after"]?["privacyTier"], 0)
        }
    }

    /// `neuron run --mcp` over stdio: the run itself stores the alerts of a file dropped into its
    /// inbox after the client subscribed, and tells the client in the same process.
    func testARunningNeuronTellsItsClientWhatItStores() throws {
        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let home = directory.appendingPathComponent("home").path, neuron = directory.appendingPathComponent("run-resources.yaml")
        try hostNeuronYAML(id: "run-resources").write(to: neuron, atomically: true, encoding: .utf8)
        let inbox = "\(home)/inbox/run-resources/biometrics.daily"
        let dataset = BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl"
        let drop = JSONValue.array(["/bin/sh", "-c", "mkdir -p \"$1\" && cp \"$0\" \"$1/.hrv\" && mv \"$1/.hrv\" \"$1/hrv.jsonl\"",
                                    .string(dataset), .string(inbox)]).serialized()
        let run = try PythonTools.run("mcp_resources.py", ["2", drop, "--", BuildProducts.brane.path, "neuron", "run", neuron.path, "--mcp",
                                                           "--plugins", BundledPlugins.directory], sdk: .v1, environment: ["BRANE_HOME": home])
        XCTAssertEqual(run.status, 0, run.stderr.suffix(3000).description)
        let report = try JSONValue(parsing: run.stdout)
        XCTAssertEqual(report["alertUpdates"], 2, "\(report)")
        XCTAssertEqual(report["after"]?["alerts"]?.arrayValue?.compactMap { $0["alert"]?["date"]?.stringValue }, ["2026-03-03", "2026-03-04"])
    }

    private func error(_ answer: JSONValue?) -> (code: Double?, message: String) {
        (answer?["error"]?["code"]?.numberValue, answer?["error"]?["message"]?.stringValue ?? "")
    }

    func testResourceRequestsGetTheSpecificationsErrorsAndSubscriptionsAreBounded() throws {
        let server = try MCPProtocolTests.Server(neuronYAML: hostNeuronYAML(id: "rpc-resources"))
        defer { _ = server.close() }
        XCTAssertEqual(server.answer(to: "init")?.0["result"]?["capabilities"]?["resources"]?["subscribe"], true)
        let base = "brane://rpc-resources/"
        let cases: [(method: String, params: String, code: Double, says: String)] = [
            ("resources/read", "{}", -32602, "resources/read needs params.uri"),
            ("resources/read", #"{"uri":7}"#, -32602, "needs params.uri, a string"),
            ("resources/read", #"{"uri":"brane://other/alerts"}"#, -32002, "Resource not found: brane://other/alerts"),
            ("resources/read", #"{"uri":"\#(base)assets/%70rocess"}"#, -32002, "Resource not found"),
            ("resources/read", #"{"uri":"\#(base)sensors/com.brane.sensor.network/latest"}"#, -32002, "Resource not found"),
            ("resources/read", #"{"uri":"\#(base)alerts\u001b[2J"}"#, -32002, "alerts\\u001B[2J"),
            ("resources/list", #"{"cursor":"x"}"#, -32602, "no cursor is valid"),
            ("resources/subscribe", #"{"uri":"\#(base)nothing"}"#, -32002, "Resource not found"),
        ]
        for (index, item) in cases.enumerated() {
            server.send(#"{"jsonrpc":"2.0","id":\#(index + 1),"method":"\#(item.method)","params":\#(item.params)}"#)
            let (code, message) = error(server.answer(to: .number(Double(index + 1)))?.0)
            XCTAssertEqual(code, item.code, "\(item)")
            XCTAssertTrue(message.contains(item.says), "\(item): \(message)")
        }
        XCTAssertEqual(server.answer(to: 3)?.0["error"]?["data"]?["uri"], "brane://other/alerts", "the error names the URI")

        server.send(#"{"jsonrpc":"2.0","id":100,"method":"resources/read","params":{"uri":"\#(base)alerts"}}"#)
        let read = server.answer(to: 100)?.0["result"]?["contents"]?.arrayValue?.first
        XCTAssertEqual(read?["mimeType"], "application/json")
        XCTAssertEqual(read?["uri"], .string(base + "alerts"))
        XCTAssertEqual(try JSONValue(parsing: read?["text"]?.stringValue ?? "")["total"], 0)

        // In a batch, beside the tools.
        server.send(#"[{"jsonrpc":"2.0","id":200,"method":"resources/templates/list"},{"jsonrpc":"2.0","id":201,"method":"tools/list"},{"jsonrpc":"2.0","id":202,"method":"resources/read","params":{"uri":"\#(base)summary"}}]"#)
        let batch = server.answer(to: 200)?.0.arrayValue ?? []
        XCTAssertEqual(batch.compactMap { $0["id"]?.numberValue }, [200, 201, 202])
        XCTAssertEqual(batch.first?["result"]?["resourceTemplates"]?.arrayValue?.count, 3)
        XCTAssertNotNil(batch.last?["result"]?["contents"])

        // At most 256 subscriptions a session; one more is refused, one freed is taken again.
        for kind in 0..<257 { server.send(#"{"jsonrpc":"2.0","id":\#(1000 + kind),"method":"resources/subscribe","params":{"uri":"\#(base)assets/k\#(kind)"}}"#) }
        XCTAssertEqual(server.answer(to: 1255)?.0["result"], .object([:]))
        XCTAssertTrue(error(server.answer(to: 1256)?.0).message.contains("at most 256 resources"), "\(String(describing: server.answer(to: 1256)))")
        server.send(#"{"jsonrpc":"2.0","id":2000,"method":"resources/unsubscribe","params":{"uri":"\#(base)assets/k0"}}"#)
        server.send(#"{"jsonrpc":"2.0","id":2001,"method":"resources/subscribe","params":{"uri":"\#(base)alerts"}}"#)
        XCTAssertEqual(server.answer(to: 2001)?.0["result"], .object([:]))
    }

    /// Red team: a client that stops reading, with answers due, and then closes its end: the
    /// server gives up on the full pipe after its write deadline and ends.
    func testAClientThatStopsReadingAndLeavesDoesNotKeepTheServer() throws {
        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let neuron = directory.appendingPathComponent("n.yaml")
        try hostNeuronYAML(id: "no-reader").write(to: neuron, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = BuildProducts.brane
        process.arguments = ["mcp", "serve", "--neuron", neuron.path, "--plugins", BundledPlugins.directory]
        process.environment = ["BRANE_HOME": directory.appendingPathComponent("home").path, "PATH": "/usr/bin:/bin"]
        let input = Pipe(), output = Pipe()
        (process.standardInput, process.standardOutput, process.standardError) = (input, output, FileHandle.nullDevice)
        try process.run()
        var lines = [#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#]
        lines += (1...400).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"resources/templates/list"}"# }
        try input.fileHandleForWriting.write(contentsOf: Data((lines.joined(separator: "\n") + "\n").utf8))
        try input.fileHandleForWriting.close()
        let started = Date()
        while process.isRunning && Date().timeIntervalSince(started) < 30 { usleep(50_000) }
        XCTAssertFalse(process.isRunning, "still running 30 s after its client left")
        if process.isRunning { process.terminate() }
        withExtendedLifetime(output) {}
    }

    /// The bounds a burst meets: 40 alerts in one commit are told as 16 notifications and one
    /// for the rest; a batch whose answers pass 32 MiB answers the rest with an error.
    func testABurstOfAlertsAndABatchOfLargeAnswersAreBounded() throws {
        let server = try MCPProtocolTests.Server(neuronYAML: hostNeuronYAML(id: "bursts"))
        defer { _ = server.close() }
        server.send(#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":"brane://bursts/alerts"}}"#)
        XCTAssertNotNil(server.answer(to: 1))
        let store = try ObservationStore(path: "\(server.home)/observations.sqlite")
        let alerts = (0..<40).map { (StoredAlert(neuron: "bursts", specialist: "com.brane.neuroscientist", alert: ["rule": "r", "n": .number(Double($0))]), key: "k\($0)") }
        try store.commitInbox(neuron: "bursts", file: "f", inode: 1, generation: "g", offset: 1, line: 40, batch: .init(alerts: alerts))
        usleep(500_000)
        let told = server.lines.filter { $0.contains("notifications/resources/updated") && $0.contains("brane://bursts/alerts") }.count
        XCTAssertEqual(told, 17, "16 a poll, and one for the rest")

        // A reading of 120 KB: a summary holds it (its readings may have 128 KiB); 300 summaries pass 32 MiB.
        try store.record(StoredReading(sensor: "com.brane.sensor.memory", takenAt: Date(),
                                       reading: SensorReading(json: ["metrics": [:], "states": ["blob": .string(String(repeating: "x", count: 120_000))]]), changed: []))
        let reads = (0..<300).map { #"{"jsonrpc":"2.0","id":\#(100 + $0),"method":"resources/read","params":{"uri":"brane://bursts/summary"}}"# }
        server.send("[" + reads.joined(separator: ",") + "]")
        let batch = try XCTUnwrap(server.answer(to: 100, timeout: 60)?.0.arrayValue)
        XCTAssertEqual(batch.count, 300, "every request is answered")
        let refused = batch.filter { $0["error"]?["message"]?.stringValue?.contains("the batch's answers passed 32 MiB") ?? false }
        XCTAssertGreaterThan(refused.count, 0, "the bound is hit")
        XCTAssertGreaterThan(batch.count - refused.count, 100, "the answers that fit are given")
    }

    func testANeuronWithoutResourcesOffersNone() throws {
        let server = try MCPProtocolTests.Server()
        defer { _ = server.close() }
        XCTAssertNil(server.answer(to: "init")?.0["result"]?["capabilities"]?["resources"])
        server.send(#"{"jsonrpc":"2.0","id":1,"method":"resources/list"}"#)
        XCTAssertEqual(error(server.answer(to: 1)?.0).code, -32601)
    }
}

/// Issue 16, point 3: `neuron chat` offers the host tools to the model like any other tool.
final class HostToolsChatTests: XCTestCase {
    func testTheModelAsksForTheWeeksAlertsAndAnswersFromThem() throws {
        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try FakeModelServer()
        model.enqueue(.recorded("ollama-alerts-tool-call.ndjson"), .recorded("ollama-alerts-answer.ndjson"))
        let plugins = PluginLocator(searchDirectories: [BundledPlugins.directory])
        let neuron = try NeuronLoader.parse(hostNeuronYAML(id: "chat-alerts", tools: ["alerts", "health_summary"], endpoint: model.url),
                                            file: "chat-alerts.yaml", plugins: plugins).neuron
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        // The alerts the 90-day dataset raises, fed by a real run.
        let runner = try NeuronRunner(neuron: neuron, runner: try ResourceLocator.current.runner(), store: store,
                                      inboxRoot: directory.appendingPathComponent("inbox").path)
        let folder = runner.inbox.folder("biometrics.daily")
        try FileManager.default.copyItem(atPath: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl", toPath: "\(folder)/hrv.jsonl")
        _ = runner.step()
        runner.stop()
        XCTAssertEqual(try store.alerts(neuron: "chat-alerts").count, 2)

        let dispatcher = try ToolDispatcher(neuron: neuron, runner: try ResourceLocator.current.runner(), observations: store)
        defer { dispatcher.stop() }
        let ledger = try TokenLedger(path: directory.appendingPathComponent("usage.sqlite").path)
        let chat = ChatSession(neuron: neuron, broker: ModelBroker(neuron: neuron.config, ledger: ledger), dispatcher: dispatcher)
        let reply = try chat.send("How has my recovery been this week?")

        XCTAssertEqual(reply.text, "This week your recovery dipped: two HRV-drop alerts, for 2026-03-03 and 2026-03-04. Consider an easier day, and see a clinician if it persists.")
        XCTAssertEqual(reply.toolCalls.map(\.name), ["alerts"])
        let result = reply.toolCalls[0].result
        XCTAssertFalse(result.isError, result.text)
        XCTAssertEqual(result.tier, .sensitive)
        XCTAssertEqual(chat.dataTier, .sensitive, "the conversation now holds tier-0 data")
        let requests = model.requests
        XCTAssertEqual(requests[0].body["tools"]?.arrayValue?.compactMap { $0["function"]?["name"]?.stringValue },
                       ["consult_com_brane_neuroscientist", "alerts", "health_summary"], "offered like any tool")
        let sent = requests[1].body["messages"]?.arrayValue ?? []
        XCTAssertEqual(sent.last?["tool_name"], "alerts")
        let answer = try JSONValue(parsing: sent.last?["content"]?.stringValue ?? "")
        XCTAssertEqual(answer["alerts"]?.arrayValue?.compactMap { $0["alert"]?["date"]?.stringValue }, ["2026-03-03", "2026-03-04"],
                       "the model was given the stored alerts")
    }
}
