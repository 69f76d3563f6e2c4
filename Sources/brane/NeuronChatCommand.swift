import ArgumentParser
import BraneHost
import Foundation

extension NeuronCommand {
    struct Chat: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "chat",
            abstract: "Talk to a neuron: its model answers, running the neuron's tools sandboxed when it asks for them.",
            discussion: """
                The model (model.endpoint; model.fallbackEndpoint when that fails) streams its answer. \
                When it asks for a tool, Brane checks the arguments against the tool's schema, runs the plugin \
                in its sandbox and sends the result back, up to limits.maxTurns requests per message. Tool \
                calls are shown on standard error. Tokens are counted per neuron and day in \
                $BRANE_HOME/usage.sqlite; past limits.dailyTokenBudget the model is not asked (exit 5).

                Data never moves up a privacy tier: what you tell a tier-0 neuron, and any tier-0 tool \
                result, is sent only to a local model endpoint and tier-0 tools (exit 5 otherwise).

                On a terminal it is interactive (/reset forgets the conversation, /usage shows tokens \
                spent today, /quit or Ctrl-D leaves). With --message it answers once; with standard input \
                from a pipe, each line is one message of a single conversation.

                  brane neuron chat examples/neurons/sports-medicine.yaml
                  brane neuron chat sports-medicine -m "What does a falling RMSSD mean?" --json
                """)

        @Argument(help: "A neuron file, or the id of a neuron in $BRANE_HOME/neurons.") var neuron: String
        @Option(name: .shortAndLong, help: "Send this one message, print the answer and exit.") var message: String?
        @OptionGroup var search: NeuronCommand.PluginSearch
        @Flag(help: "With --message: print a JSON object (answer, tool calls, tokens, endpoint) instead of streaming text.")
        var json = false

        func run() throws {
            let resolved = try loadNeuron(neuron, search.locator)
            let broker: ModelBroker, dispatcher: ToolDispatcher, runner = try runnerPath()
            do {
                broker = ModelBroker(neuron: resolved.config, ledger: try TokenLedger())
                dispatcher = try ToolDispatcher(neuron: resolved, runner: runner,
                                                observations: resolved.config.host.tools.isEmpty ? nil : try openObservationStore(),
                                                onLog: PluginLogCollector(echo: true).record)
            } catch {
                throw CLIFailure("\(error)", .hostProblem)
            }
            defer { dispatcher.stop() }
            let session = ChatSession(neuron: resolved, broker: broker, dispatcher: dispatcher)
            if let message {
                return try answerOnce(message, session: session, broker: broker)
            }
            if json { throw CLIFailure("--json needs --message", .invalidInput) }
            let interactive = isatty(STDIN_FILENO) == 1
            if interactive {
                let c = resolved.config
                note("\(c.id) (tier \(c.privacyTier.rawValue)) — \(c.model.model) at \(c.model.endpoint). /reset, /usage, /quit or Ctrl-D.")
            }
            var failed = false
            while true {
                if interactive { FileHandle.standardError.write(Data("> ".utf8)) }
                guard let line = readLine() else { break }
                let text = line.trimmingCharacters(in: .whitespaces)
                switch text {
                case "": continue
                case "/quit", "/exit": return
                case "/reset":
                    session.reset()
                    note("conversation forgotten")
                case "/usage":
                    note(usageLine(broker))
                default:
                    do {
                        _ = try session.send(text, onEvent: show)
                        print("\n")
                    } catch {
                        failed = true
                        note("brane: \(error)")
                    }
                }
                fflush(nil)
            }
            if failed && !interactive { throw ExitCode.hostProblem }
        }

        private func answerOnce(_ message: String, session: ChatSession, broker: ModelBroker) throws {
            do {
                let reply = try session.send(message, onEvent: json ? { _ in } : show)
                guard json else { return print() }
                print(JSONValue.object([
                    "answer": .string(reply.text),
                    "turns": .number(Double(reply.turns)),
                    "toolCalls": .array(reply.toolCalls.map { call in
                        ["name": .string(call.name), "arguments": .string(call.arguments), "isError": .bool(call.result.isError),
                         "result": .string(call.result.text)]
                    }),
                    "usage": ["promptTokens": .number(Double(reply.usage.promptTokens)),
                              "completionTokens": .number(Double(reply.usage.completionTokens)), "estimated": .bool(reply.usage.estimated)],
                    "endpoint": .string(reply.endpoint.url),
                    "dataTier": .number(Double(session.dataTier.rawValue)),
                ]).serialized(pretty: true))
            } catch let error as ModelError {
                throw CLIFailure(error.description, error.reason == .budgetExceeded || error.reason == .privacyRefused ? .refused : .hostProblem)
            }
        }

        private func show(_ event: ChatEvent) {
            switch event {
            case .text(let text):
                print(text, terminator: "")
                fflush(nil)
            case .toolCall(let name, let arguments):
                note("  → \(name) \(arguments)")
            case .toolResult(_, let result, let milliseconds):
                let summary = result.text.count > 160 ? result.text.prefix(160) + "…" : result.text[...]
                note("  ← \(result.isError ? "error" : "ok") (\(String(format: "%.1f", milliseconds)) ms, tier \(result.tier.rawValue)): \(summary)")
            case .notice(let text):
                note("brane: \(text)")
            }
        }

        private func usageLine(_ broker: ModelBroker) -> String {
            guard let left = try? broker.tokensLeft(), let budget = broker.dailyTokenBudget else { return "no daily token budget" }
            return "\(budget - left) of \(budget) tokens spent today (UTC)"
        }

        private func note(_ text: String) { warn(text) }
    }
}
