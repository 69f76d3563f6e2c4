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

    /// Runs Tests/Scripts/`script` with `arguments`.
    public static func run(_ script: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CLI.Run {
        try CLI.capture(try python(), [BundledPlugins.repository.appendingPathComponent("Tests/Scripts/\(script)").path] + arguments,
                        environment: environment)
    }
}
