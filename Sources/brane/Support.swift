import ArgumentParser
import BraneHost
import Foundation

/// Prints to standard error and exits with one of the documented codes.
func fail(_ message: String, _ status: ExitCode) -> Never {
    FileHandle.standardError.write(Data("brane: \(message)\n".utf8))
    Foundation.exit(status.rawValue)
}

func openBundle(_ directory: String) throws -> PluginBundle {
    do {
        let bundle = try PluginBundle.open(directory)
        for warning in bundle.warnings { FileHandle.standardError.write(Data("\(warning)\n".utf8)) }
        return bundle
    } catch let failure as ValidationFailure {
        fail("invalid manifest:\n\(failure)", .invalidInput)
    } catch let error as SandboxError {
        fail("\(error)", .hostProblem)
    }
}

func makePlan(_ bundle: PluginBundle) throws -> SandboxPlan {
    do {
        return try SandboxPlan(bundle: bundle)
    } catch {
        fail("\(error)", .hostProblem)
    }
}

/// "-" reads standard input, "@path" a file, anything else is the value itself.
func readInput(_ argument: String) throws -> [UInt8] {
    if argument == "-" { return Array(FileHandle.standardInput.readDataToEndOfFile()) }
    if argument.hasPrefix("@") {
        let path = String(argument.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)", .invalidInput) }
        return Array(data)
    }
    return Array(argument.utf8)
}

func encodeJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try! encoder.encode(value), as: UTF8.self)
}

/// Runs one method in a fresh sandboxed instance and reports the outcome and any death.
func invoke(bundle: PluginBundle, method: String, input: [UInt8], json: Bool) throws {
    let plan = try makePlan(bundle)
    let runner: String
    do { runner = try ResourceLocator.current.runner() } catch { fail("\(error)", .hostProblem) }
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
        case .circuitOpen, .hostFailure: death = error.description
        }
        envelope = RunEnvelope(ok: false, result: nil, error: nil, death: death, pluginLog: log.lines)
        status = if case .hostFailure = error { ExitCode.hostProblem } else { ExitCode.pluginDied }
    }
    if json {
        print(encodeJSON(envelope))
    } else if let result = envelope.result {
        print(result.serialized(pretty: true))
    } else if let error = envelope.error {
        FileHandle.standardError.write(Data("brane: plugin \(bundle.manifest.id) answered an error: \(error.serialized())\n".utf8))
    } else if let death = envelope.death {
        FileHandle.standardError.write(Data("brane: \(death)\n".utf8))
    }
    if status != .success { throw status }
}

/// A reply as JSON when it is JSON, otherwise as a string (plugins should answer JSON).
func jsonOrText(_ bytes: [UInt8]) -> JSONValue {
    (try? JSONValue(parsing: bytes)) ?? .string(String(decoding: bytes, as: UTF8.self))
}

struct RunEnvelope: Encodable {
    var ok: Bool
    var result: JSONValue?
    var error: JSONValue?
    var death: String?
    var pluginLog: [String]
}

/// Collects plugin log lines; echoes them to standard error for people, keeps them for --json.
final class PluginLogCollector: @unchecked Sendable {
    private let echo: Bool
    private let lock = NSLock()
    private var stored: [String] = []

    init(echo: Bool) { self.echo = echo }

    var lines: [String] { lock.withLock { stored } }

    func record(_ pluginID: String, _ line: PluginLogLine) {
        let text = "[\(pluginID)] \(line.level): \(line.message)"
        lock.withLock { stored.append(text) }
        if echo { FileHandle.standardError.write(Data((text + "\n").utf8)) }
    }
}
