import Foundation
import XCTest

/// The Python environments scripts/ensure-packages prepares in .build: the official MCP Python
/// SDK client of each major line (with jsonschema) and PyYAML, for the scripts in Tests/Scripts.
public enum PythonTools {
    /// A major line of the MCP Python SDK, each in its own virtual environment.
    public enum SDK: String, CaseIterable, Sendable {
        case v1 = "mcp-venv", v2 = "mcp2-venv"
    }

    public static func python(_ sdk: SDK = .v1) throws -> String {
        let python = BundledPlugins.repository.appendingPathComponent(".build/\(sdk.rawValue)/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw XCTSkip("the test Python environment is missing; scripts/ensure-packages installs it into .build/\(sdk.rawValue)")
        }
        return python
    }

    /// Runs Tests/Scripts/`script` with `arguments`, under the Python with the `sdk` client.
    public static func run(_ script: String, _ arguments: [String], sdk: SDK = .v1, environment: [String: String] = [:]) throws -> CLI.Run {
        try CLI.capture(try python(sdk), [BundledPlugins.repository.appendingPathComponent("Tests/Scripts/\(script)").path] + arguments,
                        environment: environment)
    }
}
