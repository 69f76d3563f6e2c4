import ArgumentParser
import BraneHost
import Foundation

struct SensorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensor",
        abstract: "Sample system sensors, watch them live, and query what was stored.",
        discussion: """
            Readings are stored in $BRANE_HOME/observations.sqlite only when they changed: a metric moved by \
            its threshold (manifest sensor.thresholds; host defaults CPU 5 points, memory 5 points, storage \
            1 point, network 10 connections) or any state changed. Readings older than 7 days are pruned.

              brane sensor read com.brane.sensor.compute
              brane sensor watch Plugins/com.brane.sensor.compute Plugins/com.brane.sensor.memory
              brane sensor history com.brane.sensor.memory --since 1h --json
              brane sensor snapshot --out assets.toml
            """,
        subcommands: [Read.self, Watch.self, History.self, Snapshot.self])

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "read", abstract: "Take one reading now (stored if it changed) and print it.")

        @Argument(help: "A sensor's directory, or an installed sensor's id.") var sensor: String
        @Flag(help: "Print the reading as JSON.") var json = false

        func run() throws {
            let scheduler = try makeScheduler([sensor])
            defer { scheduler.stop() }
            switch scheduler.sample(scheduler.sensors[0]) {
            case .failed(let id, let message): throw CLIFailure("\(id): \(message)", .pluginError)
            case .stored(let stored): show(stored.reading, id: stored.sensor, note: "stored (\(stored.changed.joined(separator: ", ")))")
            case .unchanged(let id, let reading): show(reading, id: id, note: "unchanged since the last stored reading; not stored")
            }
        }

        func show(_ reading: BraneHost.SensorReading, id: String, note: String) {
            if json { return print(reading.json.serialized(pretty: true)) }
            print("\(id) — \(note)")
            print(readingTable(reading))
        }
    }

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch",
            abstract: "Sample sensors on their schedule and show them live until interrupted.",
            discussion: """
                On a terminal the table is redrawn in place; otherwise each stored (changed) reading is printed as \
                one line. Intervals adapt: a sensor that keeps reading the same is sampled less often (up to 4× \
                its interval), one that fails backs off (up to 8×), and a change brings it back to half its interval.
                """)

        @Argument(help: "Sensors: directories or installed ids.") var sensors: [String]
        @Option(help: "Stop after this many seconds (default: until Ctrl-C).") var duration: Double?
        @Option(help: "Sample every N seconds instead of each manifest's interval.") var interval: Double?

        func run() throws {
            guard !sensors.isEmpty else { throw CLIFailure("name at least one sensor", .invalidInput) }
            let scheduler = try makeScheduler(sensors, interval: interval)
            defer { scheduler.stop() }
            let end = duration.map { Date().addingTimeInterval($0) }
            let live = isatty(STDOUT_FILENO) == 1
            Signals.install()
            scheduler.run(shouldStop: { Signals.stopRequested || end.map { Date() >= $0 } ?? false }) { event in
                if live {
                    // The clear-screen codes are the host's; everything after them is sanitised.
                    Swift.print("\u{1B}[H\u{1B}[2J", terminator: "")
                    var screen = ""
                    for sensor in scheduler.sensors {
                        screen += "\(sensor.id)  (every \(String(format: "%.1f", sensor.interval.current)) s)\n"
                        screen += sensor.latest.map(readingTable) ?? "  (no reading yet)"
                        screen += "\n\n"
                    }
                    if case .failed(let id, let message) = event { screen += "last error: \(id): \(message)\n" }
                    print(screen, terminator: "")
                } else {
                    switch event {
                    case .stored(let stored):
                        print("\(stored.takenAt.formatted(.iso8601))  \(stored.sensor)  changed: \(stored.changed.joined(separator: ", "))")
                    case .failed(let id, let message): warn("\(id): \(message)")
                    case .unchanged: break
                    }
                }
                fflush(nil)
            }
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "history", abstract: "Show the stored (changed) readings of one sensor.")

        @Argument(help: "The sensor's id (or its directory).") var sensor: String
        @Option(help: "How far back: 90s, 30m, 1h, 7d.") var since = "1h"
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            guard let age = DurationText.milliseconds(since).map({ Double($0) / 1000 }) else {
                throw CLIFailure("--since expects a duration such as 90s, 30m, 1h or 7d; found \(since)", .invalidInput)
            }
            let id = FileManager.default.fileExists(atPath: "\(sensor)/manifest.yaml") ? try openBundle(sensor).manifest.id : sensor
            let readings = try openObservationStore().history(id, since: Date().addingTimeInterval(-age))
            if json {
                print(JSONValue.array(readings.map { stored in
                    .object(["takenAt": .string(stored.takenAt.formatted(.iso8601)), "changed": .array(stored.changed.map(JSONValue.string)),
                             "reading": stored.reading.json])
                }).serialized(pretty: true))
                return
            }
            if readings.isEmpty { return print("no stored readings of \(id) in the last \(since)") }
            for stored in readings {
                print("\(stored.takenAt.formatted(.iso8601))  changed: \(stored.changed.joined(separator: ", "))")
                print(readingTable(stored.reading))
            }
        }
    }

    struct Snapshot: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "snapshot",
            abstract: "Write the newest reading of every sensor as a TOML document (the AAV snapshot).",
            discussion: "The file is written to a temporary sibling and renamed, so readers never see a partial snapshot.")

        @Option(help: "The TOML file to write.") var out: String

        func run() throws {
            let readings = try openObservationStore().latestReadings()
            guard !readings.isEmpty else { throw CLIFailure("no sensor readings stored yet; run `brane sensor read <sensor>` first", .invalidInput) }
            do { try BraneHost.Snapshot.write(readings, to: out) } catch { throw CLIFailure("\(error)", .hostProblem) }
            print("wrote \(out): \(readings.count) sensors")
        }
    }
}

private func makeScheduler(_ targets: [String], interval: Double? = nil) throws -> SensorScheduler {
    let runner = try runnerPath()
    let log = PluginLogCollector(echo: true)
    let sensors = try targets.map { target in
        let bundle = try openBundle(target)
        guard bundle.manifest.kind == .sensor else { throw CLIFailure("\(bundle.manifest.id) is a \(bundle.manifest.kind.rawValue), not a sensor", .invalidInput) }
        return SensorScheduler.Sensor(plugin: SupervisedPlugin(plan: try makePlan(bundle), runner: runner, onLog: log.record), interval: interval)
    }
    return try SensorScheduler(sensors: sensors, store: try openObservationStore())
}

/// Metrics and states, one per line, names aligned.
func readingTable(_ reading: BraneHost.SensorReading) -> String {
    // Metric names and states come from the plugin: one line each, whatever they hold.
    let rows = reading.metrics.sorted { $0.key < $1.key }.map { (UntrustedText.sanitized($0.key), String(format: "%.2f", $0.value)) }
        + reading.states.sorted { $0.key < $1.key }.map { (UntrustedText.sanitized($0.key), UntrustedText.sanitized($0.value)) }
    let width = rows.map(\.0.count).max() ?? 0
    return rows.map { "  " + $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
}
