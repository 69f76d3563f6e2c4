import ArgumentParser
import BraneHost
import Foundation

extension NeuronCommand {
    struct Alerts: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "alerts",
            abstract: "Show the alerts a neuron's specialists raised while it ran (from $BRANE_HOME/observations.sqlite).",
            discussion: "  brane neuron alerts sports-medicine --since 7d --json")

        @Argument(help: "The neuron's id.") var neuron: String
        @Option(help: "How far back: 90s, 30m, 1h, 7d.") var since = "7d"
        @Flag(help: "Print JSON for scripts.") var json = false

        func run() throws {
            guard let age = DurationText.milliseconds(since).map({ Double($0) / 1000 }) else {
                throw CLIFailure("--since expects a duration such as 90s, 30m, 1h or 7d; found \(since)", .invalidInput)
            }
            let alerts = try openObservationStore().alerts(neuron: neuron, since: Date().addingTimeInterval(-age))
            if json {
                return print(JSONValue.array(alerts.map { alert in
                    ["raisedAt": .string(alert.raisedAt.formatted(.iso8601)), "specialist": .string(alert.specialist),
                     "rule": .string(alert.rule), "alert": alert.alert]
                }).serialized(pretty: true))
            }
            if alerts.isEmpty { return print("no alerts from neuron \(neuron) in the last \(since)") }
            for alert in alerts {
                print("\(alert.raisedAt.formatted(.iso8601))  \(alert.specialist) \(alert.rule)  \(alert.text)")
            }
        }
    }
}
