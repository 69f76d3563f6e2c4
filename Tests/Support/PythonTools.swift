import Foundation
import XCTest

/// The Python environment scripts/ensure-packages prepares in .build/mcp-venv: the official MCP
/// Python SDK client, jsonschema and PyYAML, for the scripts in Tests/Scripts.
public enum PythonTools {
    public static func python() throws -> String {
        let python = BundledPlugins.repository.appendingPathComponent(".build/mcp-venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw XCTSkip("the test Python environment is missing; scripts/ensure-packages installs it into .build/mcp-venv")
        }
        return python
    }

    /// Runs Tests/Scripts/`script` with `arguments`; returns the exit status and standard output.
    public static func run(_ script: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try python())
        process.arguments = [BundledPlugins.repository.appendingPathComponent("Tests/Scripts/\(script)").path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}
