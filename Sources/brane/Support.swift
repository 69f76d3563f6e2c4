import ArgumentParser
import BraneHost
import Foundation

/// A failure the CLI reports as `brane: <message>` with one of the documented exit codes. It is
/// thrown, never exited with, so every `defer` on the way out runs and plugins get their shutdown;
/// `Brane.main` prints it and exits once the command has unwound.
struct CLIFailure: Error, CustomStringConvertible {
    var message: String
    var status: ExitCode

    init(_ message: String, _ status: ExitCode) { (self.message, self.status) = (message, status) }

    var description: String { message }
}

/// Everything the CLI prints passes the one sanitiser: plugin, index and manifest text can hold
/// ESC, C1 or CR. (Single-line fields are also sanitised where they enter the host, so a
/// newline in them cannot forge a line.) This shadows the standard library's `print` here.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    let text = items.map { "\($0)" }.joined(separator: separator)
    Swift.print(UntrustedText.sanitized(text, singleLine: false), terminator: terminator)
}

/// Text for standard error, through the same sanitiser. Written with write(2): a closed or
/// full stderr loses the text, never the process (FileHandle's write traps on EPIPE).
func warn(_ message: String, terminator: String = "\n") {
    let bytes = Array((UntrustedText.sanitized(message, singleLine: false) + terminator).utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        offset += written
    }
}

/// Sends plugin deaths, starts under the development opt-out, connections and refused data
/// flows to the audit log, and warns
/// about the latter on every start.
func reportSandboxEvents() {
    let audit = AuditSink()
    SandboxEvents.install { event in
        switch event {
        case .weakerStart(let id, let neuron, let shortfalls, let source):
            let missing = shortfalls.map(\.description).joined(separator: "; ")
            warn("brane: WARNING: \(id) runs with a WEAKER sandbox than tier requires (\(source)): \(missing)")
            audit.record("sandbox-weaker", id, (neuron.map { "neuron \($0): " } ?? "") + "\(source): \(missing)")
        case .death(let death, let neuron):
            audit.record("plugin-death", death.pluginID, (neuron.map { "neuron \($0): " } ?? "") + "\(death.cause) [\(death.termination)]")
        case .connection(let attempt, let id, let neuron):
            audit.record("plugin-connect", id, (neuron.map { "neuron \($0): " } ?? "") + attempt.description)
        case .flowRefused(let destination, let neuron, let refusal):
            audit.record("flow-refused", destination, (neuron.map { "neuron \($0): " } ?? "") + refusal)
        }
    }
}

/// The audit log, opened on first use; a failure to write it is said once, never fatal.
private final class AuditSink: @unchecked Sendable {
    private let lock = NSLock()
    private var marketplace: Marketplace?
    private var failed = false

    func record(_ action: String, _ plugin: String, _ detail: String) {
        lock.withLock {
            guard !failed else { return }
            do {
                if marketplace == nil { marketplace = try Marketplace() }
                try marketplace!.record(action: action, plugin: plugin, detail: detail)
            } catch {
                failed = true
                warn("brane: cannot write the audit log: \(error)")
            }
        }
    }
}

/// A plugin directory, written as a path (`./x`, or anything with a `/`), or the id of an installed
/// plugin: a bare name never picks up a directory of that name in the working directory.
func openBundle(_ target: String) throws -> PluginBundle {
    do {
        let bundle: PluginBundle
        if target.contains("/") || target == "." || target == ".." {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw CLIFailure("\(target) is not a plugin directory", .invalidInput)
            }
            // An install directory named by path runs only as its receipt says, as by id.
            if let id = try marketplace({ try openMarketplace().installedPlugin(at: target) }) {
                bundle = try marketplace { try openMarketplace().installedBundle(id)! }
            } else {
                bundle = try PluginBundle.open(target)
            }
        } else {
            guard PluginID.problem(target) == nil, let installed = try marketplace({ try openMarketplace().installedBundle(target) }) else {
                var isDirectory: ObjCBool = false
                let hint = FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) && isDirectory.boolValue
                    ? "; to use the directory of that name, write it as a path: ./\(target)" : ""
                throw CLIFailure("\(target) is not an installed plugin (`brane plugin list` shows those)\(hint)", .invalidInput)
            }
            bundle = installed
        }
        for warning in bundle.warnings { warn("\(warning)") }
        return bundle
    } catch let failure as ValidationFailure {
        throw CLIFailure("invalid manifest:\n\(failure)", .invalidInput)
    } catch let error as SandboxError {
        throw CLIFailure("\(error)", .hostProblem)
    }
}

/// Resolves plugins the named ones refer to (a consulted specialist, a neuron's plugins): a named
/// directory's siblings first (a source checkout such as Plugins/), then installed plugins.
func pluginLocator(for bundles: [PluginBundle]) -> PluginLocator {
    var explicit: [String: String] = [:]
    var siblings: [String] = []
    for bundle in bundles {
        explicit[bundle.manifest.id] = bundle.directory
        let parent = URL(fileURLWithPath: bundle.directory).deletingLastPathComponent().path
        if !siblings.contains(parent) { siblings.append(parent) }
    }
    return .includingInstalled(explicit: explicit, searchDirectories: siblings)
}

func runnerPath() throws -> String {
    do { return try ResourceLocator.current.runner() } catch { throw CLIFailure("\(error)", .hostProblem) }
}

func makePlan(_ bundle: PluginBundle) throws -> SandboxPlan {
    do {
        return try SandboxPlan(bundle: bundle)
    } catch {
        throw CLIFailure("\(error)", .hostProblem)
    }
}

/// "-" reads standard input, "@path" a file, anything else is the value itself.
func readInput(_ argument: String) throws -> [UInt8] {
    if argument == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
    if argument.hasPrefix("@") {
        let path = String(argument.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIFailure("cannot read \(path)", .invalidInput) }
        return Array(data)
    }
    return Array(argument.utf8)
}

func encodeJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try! encoder.encode(value), as: UTF8.self)
}

/// Runs one method in a fresh sandboxed instance and reports the outcome and any death.
func invoke(bundle: PluginBundle, method: String, input: [UInt8], json: Bool) throws {
    let plan = try makePlan(bundle)
    if let problem = plan.callInputProblem(method: method, input: input) { throw CLIFailure(problem, .invalidInput) }
    let runner = try runnerPath()
    let log = PluginLogCollector(echo: !json)
    let plugin = SupervisedPlugin(plan: plan, runner: runner, onLog: log.record)
    defer { plugin.stop() }
    let envelope: RunEnvelope
    let status: ExitCode
    do {
        switch try plugin.call(method: method, input: input) {
        case .result(let bytes):
            envelope = RunEnvelope(ok: true, result: jsonOrText(bytes), error: nil, death: nil, pluginLog: log.lines)
            status = .success
        case .pluginError(let bytes):
            envelope = RunEnvelope(ok: false, result: nil, error: jsonOrText(bytes), death: nil, pluginLog: log.lines)
            status = ExitCode.pluginError
        }
    } catch {
        let death: String
        switch error {
        case .died(let d): death = d.description
        case .circuitOpen, .hostFailure, .cancelled: death = error.description
        }
        envelope = RunEnvelope(ok: false, result: nil, error: nil, death: death, pluginLog: log.lines)
        status = if case .hostFailure = error { ExitCode.hostProblem } else { ExitCode.pluginDied }
    }
    if json {
        print(encodeJSON(envelope))
    } else if let result = envelope.result {
        print(result.serialized(pretty: true))
    } else if let error = envelope.error {
        warn("brane: plugin \(bundle.manifest.id) answered an error: \(error.serialized())")
    } else if let death = envelope.death {
        warn("brane: \(death)")
    }
    if status != .success { throw status }
}

/// A reply as JSON when it is JSON, otherwise as a string (plugins should answer JSON).
func jsonOrText(_ bytes: [UInt8]) -> JSONValue {
    (try? JSONValue(parsing: bytes)) ?? .string(String(decoding: bytes, as: UTF8.self))
}

struct RunEnvelope: Encodable {
    var ok: Bool
    var result: JSONValue? = nil
    var error: JSONValue? = nil
    var death: String? = nil
    var pluginLog: [String]
}

/// Collects plugin log lines; echoes them to standard error for people, keeps the latest
/// `kept` for --json (a long `sensor watch` must not grow without bound).
final class PluginLogCollector: @unchecked Sendable {
    static let kept = 1000
    private let echo: Bool
    private let lock = NSLock()
    private var stored: [String] = []
    private var dropped = 0

    init(echo: Bool) { self.echo = echo }

    var lines: [String] { lock.withLock { (dropped > 0 ? ["[\(dropped) earlier lines not kept]"] : []) + stored } }

    func record(_ pluginID: String, _ line: PluginLogLine) {
        let text = "[\(pluginID)] \(line.level): \(line.message)"
        lock.withLock {
            if stored.count == Self.kept {
                stored.removeFirst()
                dropped += 1
            }
            stored.append(text)
        }
        if echo { warn(text) }
    }
}

/// Records a neuron this process runs (`RunningNeurons`), for `plugin upgrade`/`remove` to see.
/// A home that cannot take the record (read-only) only loses that: the neuron still runs, warned.
func registerRunning(_ neuron: ResolvedNeuron, command: String) -> RunningNeurons.Registration? {
    do {
        return try RunningNeurons.register(neuron, command: command)
    } catch {
        warn("brane: warning: \(error); `plugin upgrade` and `remove` will not know this neuron is running")
        return nil
    }
}

func openMarketplace() throws -> Marketplace {
    do { return try Marketplace() } catch { throw CLIFailure("\(error)", .hostProblem) }
}

/// Runs a marketplace operation, turning its refusals into the documented exit codes.
func marketplace<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as MarketplaceError {
        let status: ExitCode = switch error.reason {
        case .usage, .notFound, .invalidIndex, .invalidManifest: .invalidInput
        case .io, .fetchFailed: .hostProblem
        case .busy: .busy
        default: .refused
        }
        throw CLIFailure(error.message, status)
    } catch let failure as CLIFailure {
        throw failure
    } catch let failure as ValidationFailure {
        throw CLIFailure("\(failure)", .invalidInput)
    } catch {
        throw CLIFailure("\(error)", .hostProblem)
    }
}

/// Progress for long marketplace work, on a terminal only (never under --json or in a pipe).
func progressPrinter(enabled: Bool) -> (@Sendable (String, InstallStep) -> Void)? {
    guard enabled, isatty(STDERR_FILENO) == 1 else { return nil }
    return { plugin, step in
        let line: String = switch step {
        case .fetching(let received, let total):
            String(format: "\r  %@: fetching %.1f / %.1f MiB", plugin, Double(received) / 1_048_576, Double(total) / 1_048_576)
        case .verified(let sha256): "\n  \(plugin): size and SHA-256 match the signed index (\(sha256.prefix(16))…)\n"
        case .unpacked(let files): "  \(plugin): unpacked \(files) files into staging\n"
        case .validated: "  \(plugin): manifest, ABI and tier accepted\n"
        case .activated: "  \(plugin): moved into place\n"
        case .recorded: "  \(plugin): receipt recorded\n"
        }
        // Raw: the carriage return redraws the progress line; the id passed the id grammar.
        FileHandle.standardError.write(Data(line.utf8))
    }
}

func printJSONOrText(json: Bool, _ value: some Encodable, _ text: () -> String) {
    if json { print(encodeJSON(value)) } else { print(text()) }
}
