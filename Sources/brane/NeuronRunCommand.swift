import ArgumentParser
import BraneHost
import Foundation

extension NeuronCommand {
    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Run a neuron: its sensors, scanners and specialist rules, and its tools over MCP with --mcp.",
            discussion: """
                Sensors are sampled at their intervals (readings stored when they change), scanners scan at \
                start and every interval, and event files dropped into the inbox are fed through the \
                specialists' rules — alerts print as they fire. Readings, assets and alerts go to \
                $BRANE_HOME/observations.sqlite. Every plugin runs in its own sandbox.

                Inbox: $BRANE_HOME/inbox/<neuron>/<event kind>/*.jsonl, one JSON event per line; the kind is \
                one a specialist consumes (its manifest's specialist.consumes). Write a file under another \
                name and rename it in; once read it moves to done/ (failed/ if a specialist died on it).

                SIGINT or SIGTERM stops every plugin process and prints a report; SIGHUP reloads the \
                neuron file, keeping the running configuration when the new one is invalid. With --mcp \
                the neuron's tools are served on standard input and output (logs and the report go to \
                standard error), and the run ends when the client disconnects.

                  brane neuron run examples/neurons/sports-medicine.yaml --duration 10s
                  brane neuron run sports-medicine --mcp        # from an MCP client's config
                  brane neuron run sports-medicine --mcp --http 8765   # over HTTP
                """)

        func validate() throws {
            if serving.http != nil && !mcp { throw ValidationError("--http serves MCP: it goes with --mcp") }
        }

        @Argument(help: "A neuron file, or the id of a neuron in $BRANE_HOME/neurons.") var neuron: String
        @OptionGroup var search: NeuronCommand.PluginSearch
        @Flag(help: "Also serve the neuron's tools over MCP: on standard input and output, or over HTTP with --http.") var mcp = false
        @OptionGroup var serving: MCPCommand.HTTPServing
        @Option(help: "Stop after this long: 30s, 10m, 2h (default: until SIGINT/SIGTERM, or the MCP client leaves).")
        var duration: String?
        @Option(help: "The inbox root (default: $BRANE_HOME/inbox).") var inbox: String?
        @Flag(help: "Print the final report as JSON.") var json = false

        func run() throws {
            // A closed stdout or stderr (a log pipe gone) loses lines, never the run and its commits.
            signal(SIGPIPE, SIG_IGN)
            let locator = search.locator
            var resolved = try loadNeuron(neuron, locator)
            let deadline = try duration.map { text -> Date in
                guard let milliseconds = DurationText.milliseconds(text) else {
                    throw ValidationError("--duration expects a duration such as 30s, 10m or 2h; found \(text)")
                }
                return Date().addingTimeInterval(Double(milliseconds) / 1000)
            }
            let overStdio = mcp && serving.http == nil
            let output = Output(toStandardError: overStdio)
            let store = try openObservationStore()
            let runner = try runnerPath()
            let inboxRoot = inbox ?? BraneHome.current.inbox
            // One run per neuron, held for the whole command (reloads included): a second would feed the same inbox.
            let runLock: RunningNeurons.RunLock
            do { runLock = try RunningNeurons.lockForOneRun(neuron: resolved.config.id) } catch { throw CLIFailure("\(error)", .busy) }
            defer { withExtendedLifetime(runLock) {} }
            // `plugin upgrade`/`remove` see which versions this run uses, warn, and keep their files.
            let registration = registerRunning(resolved, command: mcp ? "neuron run --mcp" : "neuron run")
            defer { withExtendedLifetime(registration) {} }
            let log: @Sendable (String, PluginLogLine) -> Void = { id, line in output.error("[\(id)] \(line.level): \(line.message)") }
            func makeRunner(_ neuron: ResolvedNeuron) throws -> NeuronRunner {
                let made = try NeuronRunner(neuron: neuron, runner: runner, store: store, inboxRoot: inboxRoot, onLog: log)
                // A reload also ends a feed at the next line: the new runner resumes the file from there.
                made.stopRequested = { Signals.stopRequested || Signals.reloadRequested }
                return made
            }
            var current: NeuronRunner
            do { current = try makeRunner(resolved) } catch { throw CLIFailure("cannot start neuron \(resolved.config.id): \(error)", .hostProblem) }
            Signals.install(reload: true)
            let started = Date()
            output.line(header(current))

            var dispatcher: ToolDispatcher?, httpServer: MCPHTTPServer?
            let clientLeft = DispatchSemaphore(value: 0)
            defer { httpServer?.stop() }
            if mcp {
                let tools: ToolDispatcher
                do { tools = try ToolDispatcher(neuron: resolved, runner: runner, observations: store, onLog: log) } catch { throw CLIFailure("\(error)", .hostProblem) }
                dispatcher = tools
                httpServer = try serving.start(tools, observations: store)
            }
            if overStdio, let tools = dispatcher {
                Task {
                    do { try await NeuronMCPServer.serve(tools, observations: store) } catch { output.error("MCP server stopped: \(error)") }
                    clientLeft.signal()
                }
            }

            var ending = "stopped by a signal"
            var earlier = NeuronRunner.Tally(), deaths: [String] = []   // of configurations a reload replaced
            while true {
                if Signals.stopRequested { break }
                if let deadline, Date() >= deadline { ending = "ran for its --duration"; break }
                if overStdio, clientLeft.wait(timeout: .now()) == .success { ending = "the MCP client disconnected"; break }
                if Signals.reloadRequested {
                    Signals.reloadRequested = false
                    if let reloaded = reload(resolved.file, locator, output) {
                        if reloaded.config.id != resolved.config.id {
                            // The run's lock, inbox and store windows are the neuron's: another id is another run.
                            output.error("reload refused, still running the previous configuration: \(resolved.file) now names neuron "
                                + "\(reloaded.config.id), not \(resolved.config.id); start another `brane neuron run` for it")
                        } else if let server = httpServer,
                                  let refusal = MCPHTTPServer.refusal(serving: reloaded, at: server.address, allowRemote: serving.allowRemote) {
                            // What the server may serve where was decided for the old file; the new one would not pass.
                            output.error("reload refused, still running the previous configuration: the new file could not be served where MCP is served now: "
                                + "\(refusal); stop the run and start it again")
                        } else {
                            // The new runner is built before the old one stops (building starts no process), so a failure keeps the old.
                            do {
                                let next = try makeRunner(reloaded)
                                earlier = earlier + current.tally
                                deaths += current.deaths.map(\.description)
                                current.stop()
                                (resolved, current) = (reloaded, next)
                                registration?.update(resolved)
                                output.line("reloaded \(resolved.file)\(mcp ? " (MCP clients keep the tools, host tools and resources the run started with, read with their scope and tiers then)" : "")")
                                output.line(header(current))
                            } catch {
                                output.error("reload refused, still running the previous configuration: cannot start neuron \(reloaded.config.id): \(error)")
                            }
                        }
                    }
                }
                for event in current.step() { show(event, output) }
                Thread.sleep(forTimeInterval: min(0.2, max(0.005, current.nextWake.timeIntervalSinceNow)))
            }
            let runDeaths = current.deaths + (dispatcher?.plugins ?? []).flatMap(\.deaths)
            current.stop()
            httpServer?.stop()
            httpServer = nil
            dispatcher?.stop()
            InstanceLauncher.endZygotes()
            report(current, tally: earlier + current.tally, deaths: deaths + runDeaths.map(\.description),
                   mcpCalls: dispatcher?.tally, seconds: Date().timeIntervalSince(started), ending: ending, output)
        }

        /// The changed neuron file, or nil (with every diagnostic shown) when it is invalid.
        private func reload(_ file: String, _ locator: PluginLocator, _ output: Output) -> ResolvedNeuron? {
            do {
                let (neuron, warnings) = try NeuronLoader.load(path: file, plugins: locator)
                for warning in warnings { output.error("\(warning)") }
                return neuron
            } catch {
                output.error("reload refused, still running the previous configuration: \(file) is invalid:\n\(error)")
                return nil
            }
        }

        private func header(_ runner: NeuronRunner) -> String {
            let c = runner.neuron.config
            var lines = ["running neuron \(c.id) at tier \(c.privacyTier): " + [counted(c.sensors.count, "sensor"), counted(c.scanners.count, "scanner"),
                         counted(c.specialists.count, "specialist"), counted(c.tools.count, "tool plugin")].joined(separator: ", ")]
            for use in c.allPlugins {
                let manifest = runner.neuron.bundle(use.id).manifest
                let sandbox = (try? runner.neuron.plan(for: use)).map { SandboxReport(plan: $0).summary } ?? "no sandbox plan"
                lines.append("  \(manifest.id)  \(manifest.kind.rawValue), tier \(manifest.tier.rawValue): \(sandbox)")
            }
            for (kind, specialists) in runner.eventKinds {
                lines.append("  inbox \(runner.inbox.folder(kind))/*.jsonl → \(specialists.joined(separator: ", "))")
            }
            return lines.joined(separator: "\n")
        }

        private func show(_ event: NeuronRunner.Event, _ output: Output) {
            let time = Date().formatted(.iso8601.time(includingFractionalSeconds: false))
            switch event {
            case .sensor(.stored(let stored)): output.line("\(time)  \(stored.sensor): stored (\(stored.changed.joined(separator: ", ")))")
            case .sensor(.failed(let sensor, let message)): output.error("\(time)  \(sensor) failed: \(message)")
            case .sensor(.unchanged): break
            case .scanned(let summary):
                output.line("\(time)  \(summary.scanner): \(summary.assets) assets, \(summary.changes.count) changes (scan \(summary.scanID))")
            case .scanFailed(let scanner, let message): output.error("\(time)  \(scanner) failed: \(message)")
            case .alert(let alert):
                output.line("\(time)  ALERT \(alert.specialist) \(alert.rule): \(alert.text)")
            case .fed(let file, let events, let alerts, let problems):
                output.line("\(time)  inbox \(file): \(events) events, \(alerts) alerts")
                for problem in problems { output.error("  \(problem)") }
            }
        }

        private func report(_ runner: NeuronRunner, tally t: NeuronRunner.Tally, deaths: [String], mcpCalls: (calls: Int, errors: Int)?,
                            seconds: Double, ending: String, _ output: Output) {
            let c = runner.neuron.config
            let leftover = ProcessTable.children(of: getpid()).filter(ProcessTable.isAlive)
            if json {
                var object: [String: JSONValue] = [
                    "neuron": .string(c.id), "tier": .number(Double(c.privacyTier.rawValue)), "seconds": .number(seconds),
                    "ending": .string(ending),
                    "plugins": .array(c.allPlugins.map { use in
                        let m = runner.neuron.bundle(use.id).manifest
                        return ["id": .string(m.id), "kind": .string(m.kind.rawValue), "tier": .number(Double(m.tier.rawValue))]
                    }),
                    "sensorSamples": .number(Double(t.sensorSamples)), "readingsStored": .number(Double(t.readingsStored)),
                    "sensorFailures": .number(Double(t.sensorFailures)), "scans": .number(Double(t.scans)), "assets": .number(Double(t.assets)),
                    "events": .number(Double(t.events)), "alerts": .number(Double(t.alerts)), "eventsSkipped": .number(Double(t.eventsSkipped)),
                    "pluginDeaths": .array(deaths.map(JSONValue.string)), "pluginProcessesLeft": .number(Double(leftover.count)),
                ]
                if let mcpCalls { object["mcp"] = ["calls": .number(Double(mcpCalls.calls)), "errors": .number(Double(mcpCalls.errors))] }
                return output.line(JSONValue.object(object).serialized(pretty: true))
            }
            let ran = c.allPlugins.map { use in
                let manifest = runner.neuron.bundle(use.id).manifest
                return "\(manifest.id) (\(manifest.kind.rawValue), tier \(manifest.tier.rawValue))"
            }
            var lines = [
                "== neuron \(c.id) at tier \(c.privacyTier): \(ending) after \(String(format: "%.1f", seconds)) s",
                "  plugins, each in its own sandbox: \(ran.joined(separator: ", "))",
                "  sensors: \(c.sensors.count), sampled \(t.sensorSamples) times, \(counted(t.readingsStored, "reading")) stored "
                    + "(only changes are), \(counted(t.sensorFailures, "failure"))",
                "  scans: \(t.scans), \(counted(t.assets, "asset")) seen",
                "  specialist rules: \(t.events) events from the inbox → \(t.alerts) alerts stored\(t.eventsSkipped > 0 ? ", \(t.eventsSkipped) lines skipped" : "")",
            ]
            if let mcpCalls { lines.append("  MCP: \(mcpCalls.calls) tool calls, \(mcpCalls.errors) answered with an error (refused or failed)") }
            lines.append(deaths.isEmpty ? "  plugin deaths: none" : "  plugin deaths (killed and reported; the host kept running):")
            lines += deaths.map { "    \($0)" }
            lines.append(leftover.isEmpty ? "  every plugin process stopped" : "  plugin processes still running: \(leftover.map(String.init).joined(separator: ", "))")
            output.line(lines.joined(separator: "\n"))
        }
    }
}

/// "1 sensor", "2 sensors".
private func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

/// Where a run's lines go: standard output, or standard error when standard output carries MCP.
private struct Output: Sendable {
    var toStandardError: Bool

    func line(_ text: String) {
        if toStandardError { return error(text) }
        print(text)
        fflush(nil)
    }

    func error(_ text: String) { warn(text) }
}
