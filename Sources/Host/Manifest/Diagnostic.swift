/// One finding about a file a user wrote: where, which field, what is wrong.
/// Rendered like a compiler: `manifest.yaml:12:5: error: tools[0].name: expected a string, found a list`.
public struct Diagnostic: Error, Equatable, Sendable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Codable { case error, warning }

    public var severity: Severity
    public var file: String
    public var line: Int
    public var column: Int
    /// The field path, e.g. `resources.memory` or `tools[1].inputSchema.properties.dose`; empty for the whole file.
    public var path: String
    public var message: String

    public init(_ severity: Severity, file: String, line: Int, column: Int, path: String, message: String) {
        self.severity = severity
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String {
        "\(file):\(line):\(column): \(severity.rawValue): \(path.isEmpty ? "" : "\(path): ")\(message)"
    }
}

/// Every diagnostic of one file; thrown when at least one is an error.
public struct ValidationFailure: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
