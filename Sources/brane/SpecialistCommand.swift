import ArgumentParser
import BraneHost
import Foundation

struct SpecialistCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "specialist",
        abstract: "Ask specialists for an assessment, or stream events through their rules.",
        discussion: """
            A specialist is named by its directory or, once installed, by its id. Specialists it \
            consults (its manifest's specialist.consults) are found beside it, then among installed plugins.

              brane specialist consult Plugins/com.brane.coach --input readings.json
              brane specialist feed com.brane.neuroscientist --events days.jsonl
            """,
        subcommands: [Consult.self, Feed.self])

    struct Consult: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "consult",
            abstract: "Send one request to a specialist (specialist/consult) and print its answer.",
            discussion: """
                The input is the specialist's request JSON, e.g. {"readings": [{"date": "2026-03-01", "rmssd": 52.9, \
                "restingHR": 57, "sleepHours": 7.4, "sleepQuality": 77, "load": 688}, …]}. \
                Consults it makes of other specialists go through the host, which checks that they are declared and of the same tier.
                """)

        @Argument(help: "A specialist's directory, or an installed specialist's id.") var specialist: String
        @Option(help: "The request JSON: a file, or - for standard input.") var input: String
        @Flag(help: "Print a JSON envelope {ok, result|error, pluginLog} for scripts.") var json = false

        func run() throws {
            let bundle = try openSpecialist(specialist)
            let request = try readInput(input == "-" ? "-" : "@\(input)")
            let log = PluginLogCollector(echo: !json)
            let router = SpecialistRouter(locator: pluginLocator(for: [bundle]), runner: try runnerPath(), onLog: log.record)
            defer { router.stopAll() }
            let outcome: PluginInstance.CallOutcome
            do {
                outcome = try router.call(bundle.manifest.id, method: "specialist/consult", input: request)
            } catch {
                if json { print(encodeJSON(RunEnvelope(ok: false, death: "\(error)", pluginLog: log.lines))) }
                throw CLIFailure("\(error)", .pluginDied)
            }
            switch outcome {
            case .result(let bytes):
                if json { print(encodeJSON(RunEnvelope(ok: true, result: jsonOrText(bytes), pluginLog: log.lines))) }
                else { print(jsonOrText(bytes).serialized(pretty: true)) }
            case .pluginError(let bytes):
                if json { print(encodeJSON(RunEnvelope(ok: false, error: jsonOrText(bytes), pluginLog: log.lines))) }
                throw CLIFailure("\(bundle.manifest.id): \(PluginInstance.CallOutcome.errorMessage(bytes))", .pluginError)
            }
        }
    }

    struct Feed: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "feed",
            abstract: "Stream events (JSON lines) through a specialist's rules and print alerts as they fire.",
            discussion: """
                Each line is one event, sent as specialist/event to one long-lived sandboxed instance, so \
                rules see the whole stream. Alerts print as soon as the event that fired them is processed. \
                A line that is not JSON, or that the specialist refuses, is reported with its line number and \
                skipped; the exit status is then 2 (invalid input) after the whole stream is read.

                  brane specialist feed com.brane.neuroscientist --events Plugins/com.brane.neuroscientist/Tests/hrv-90-days.jsonl
                """)

        @Argument(help: "A specialist's directory, or an installed specialist's id.") var specialist: String
        @Option(help: "A JSON-lines file of events, or - for standard input.") var events: String
        @Flag(help: "Print each alert as one JSON line, and a final summary line.") var json = false

        func run() throws {
            let bundle = try openSpecialist(specialist)
            guard let rules = bundle.manifest.specialist?.rules, !rules.isEmpty else {
                throw CLIFailure("\(bundle.manifest.id) declares no rules (specialist.rules in its manifest), so it takes no events", .invalidInput)
            }
            guard let stream = events == "-" ? FileHandle.standardInput : FileHandle(forReadingAtPath: events) else {
                throw CLIFailure("cannot read \(events)", .invalidInput)
            }
            let log = PluginLogCollector(echo: true)
            let router = SpecialistRouter(locator: pluginLocator(for: [bundle]), runner: try runnerPath(), onLog: log.record)
            defer { router.stopAll() }
            var counts = (events: 0, alerts: 0, rejected: 0)
            for (index, line) in JSONLines(stream).enumerated() where !line.allSatisfy(\.isWhitespace) {
                let number = index + 1
                guard (try? JSONValue(parsing: Array(line.utf8))) != nil else {
                    counts.rejected += 1
                    warn("\(events):\(number): not a JSON object; skipped")
                    continue
                }
                counts.events += 1
                let outcome: PluginInstance.CallOutcome
                do {
                    outcome = try router.call(bundle.manifest.id, method: "specialist/event", input: Array(line.utf8))
                } catch {
                    throw CLIFailure("\(events):\(number): \(error)", .pluginDied)
                }
                switch outcome {
                case .pluginError(let bytes):
                    counts.rejected += 1
                    warn("\(events):\(number): \(PluginInstance.CallOutcome.errorMessage(bytes)); skipped")
                case .result(let bytes):
                    for alert in jsonOrText(bytes)["alerts"]?.arrayValue ?? [] {
                        counts.alerts += 1
                        if json {
                            print(alert.serialized())
                        } else {
                            let fields = ["date", "rule", "trigger", "message"].map { UntrustedText.sanitized(alert[$0]?.stringValue ?? "-") }
                            print(fields.joined(separator: "  "))
                        }
                        fflush(nil)  // every stream: alerts must reach a pipe as they fire
                    }
                }
            }
            let summary = "\(counts.events) events, \(counts.alerts) alerts, \(counts.rejected) lines skipped"
            if json {
                print(JSONValue.object(["events": .number(Double(counts.events)), "alerts": .number(Double(counts.alerts)),
                                        "skipped": .number(Double(counts.rejected))]).serialized())
            } else {
                warn(summary)
            }
            if counts.rejected > 0 { throw ExitCode.invalidInput }
        }
    }
}

private func openSpecialist(_ target: String) throws -> PluginBundle {
    let bundle = try openBundle(target)
    guard bundle.manifest.kind == .specialist else {
        throw CLIFailure("\(bundle.manifest.id) is a \(bundle.manifest.kind.rawValue) plugin, not a specialist", .invalidInput)
    }
    return bundle
}

/// Lines of a stream, read as they arrive (so a feed from a pipe prints alerts live).
struct JSONLines: Sequence, IteratorProtocol {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var finished = false

    init(_ handle: FileHandle) { self.handle = handle }

    mutating func next() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                defer { buffer.removeSubrange(...newline) }
                return String(decoding: buffer[..<newline], as: UTF8.self)
            }
            if finished {
                guard !buffer.isEmpty else { return nil }
                defer { buffer = [] }
                return String(decoding: buffer, as: UTF8.self)
            }
            let chunk = handle.availableData
            if chunk.isEmpty { finished = true } else { buffer += chunk }
        }
    }
}
