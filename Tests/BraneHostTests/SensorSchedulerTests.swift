@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class SensorSchedulerTests: XCTestCase {
    func reading(_ metrics: [String: Double], _ states: [String: String] = [:]) -> SensorReading {
        SensorReading(json: .object(["metrics": .object(metrics.mapValues(JSONValue.number)),
                                     "states": .object(states.mapValues(JSONValue.string))]))
    }

    func testChangeDetectionUsesThresholdsPatternsAndStates() {
        let detector = ChangeDetector(["mount.*.usedPercent": 2])
        let before = reading(["cpu.percent": 10, "memory.usedPercent": 50, "mount./.usedPercent": 40, "mount./boot.usedPercent": 10,
                              "untracked": 1], ["service.api": "up"])
        XCTAssertEqual(detector.changes(from: nil, to: before), ["first"])
        XCTAssertEqual(detector.changes(from: before, to: reading(["cpu.percent": 14.9, "memory.usedPercent": 54, "mount./.usedPercent": 41.9,
                                                                   "mount./boot.usedPercent": 10, "untracked": 99], ["service.api": "up"])), [])
        XCTAssertEqual(detector.changes(from: before, to: reading(["cpu.percent": 15, "memory.usedPercent": 50, "mount./.usedPercent": 40,
                                                                   "mount./boot.usedPercent": 12, "untracked": 1], ["service.api": "down"])),
                       ["cpu.percent", "mount./boot.usedPercent", "service.api"])
        XCTAssertEqual(ChangeDetector().threshold(for: "tcp.connections"), 10, "host default")
        XCTAssertEqual(ChangeDetector(["tcp.connections": 3]).threshold(for: "tcp.connections"), 3, "the manifest overrides the default")
        XCTAssertTrue(ChangeDetector.matches("iface.eth0.rxErrors", pattern: "iface.*.rxErrors"))
        XCTAssertFalse(ChangeDetector.matches("iface.eth0.txErrors", pattern: "iface.*.rxErrors"))
    }

    func testIntervalsBackOffWhenStableOrFailingAndSpeedUpOnChange() {
        var interval = AdaptiveInterval(base: 10)
        for _ in 0..<10 { interval.stable() }
        XCTAssertEqual(interval.current, 40)
        interval.changed()
        XCTAssertEqual(interval.current, 5)
        for _ in 0..<10 { interval.failed() }
        XCTAssertEqual(interval.current, 80)
    }

    func store() throws -> ObservationStore {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
    }

    /// A real sandboxed sensor: only changed readings are stored, and history and the snapshot read them back.
    func testTheSchedulerStoresOnlyChangedReadings() throws {
        let store = try store()
        let quiet = SensorScheduler.Sensor(plugin: try sandboxed(BundledPlugins.path("com.brane.sensor.memory"), for: self),
                                           thresholds: ["memory.usedPercent": 1000, "swap.usedPercent": 1000])
        let eager = SensorScheduler.Sensor(plugin: try sandboxed(BundledPlugins.path("com.brane.sensor.compute"), for: self),
                                           thresholds: ["tasks.total": 0])
        let scheduler = try SensorScheduler(sensors: [quiet, eager], store: store)
        for _ in 0..<3 {
            scheduler.sample(quiet)
            scheduler.sample(eager)
        }
        let since = Date().addingTimeInterval(-60)
        XCTAssertEqual(try store.history("com.brane.sensor.memory", since: since).map(\.changed), [["first"]])
        XCTAssertEqual(try store.history("com.brane.sensor.compute", since: since).count, 3)
        XCTAssertGreaterThan(quiet.interval.current, quiet.interval.base, "a stable sensor is sampled less often")
        XCTAssertEqual(eager.interval.current, eager.interval.fastest, "a changing one more often")

        // A new scheduler compares against what is stored, so a restart does not store a duplicate.
        let restarted = try SensorScheduler(sensors: [SensorScheduler.Sensor(plugin: quiet.plugin, thresholds: ["memory.usedPercent": 1000, "swap.usedPercent": 1000])],
                                            store: store)
        guard case .unchanged = restarted.sample(restarted.sensors[0]) else { return XCTFail("must compare with the stored reading") }

        XCTAssertEqual(try store.prune(olderThan: 3600, now: Date().addingTimeInterval(7200)), 4)
        XCTAssertTrue(try store.latestReadings().isEmpty)
    }

    func testTheSnapshotIsValidTOMLWrittenAtomically() throws {
        let store = try store()
        let taken = Date(timeIntervalSince1970: 1_795_000_000)
        try store.record(StoredReading(sensor: "com.brane.sensor.services", takenAt: taken,
                                       reading: reading(["service.api.responseMs": 1.25], ["service.api": "up", "service.db.error": "connect: \"refused\"\n"]),
                                       changed: ["first"]))
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("snapshot.toml").path
        try Snapshot.write(try store.latestReadings(), to: path)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["snapshot.toml"], "no temporary file left")

        // Python's tomllib is an independent TOML 1.0 parser.
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", "import json,sys,tomllib; print(json.dumps(tomllib.load(open(sys.argv[1],'rb')), default=str))", path]
        let output = Pipe()
        python.standardOutput = output
        try python.run()
        python.waitUntilExit()
        XCTAssertEqual(python.terminationStatus, 0)
        let parsed = try JSONValue(parsing: Array(output.fileHandleForReading.readDataToEndOfFile()))
        let sensor = try XCTUnwrap(parsed["sensors"]?["com.brane.sensor.services"])
        XCTAssertEqual(sensor["metrics"]?["service.api.responseMs"]?.numberValue, 1.25)
        XCTAssertEqual(sensor["states"]?["service.db.error"]?.stringValue, "connect: \"refused\"\n")
        XCTAssertEqual(sensor["taken_at"]?.stringValue, "2026-11-18 11:06:40+00:00")
    }
}
