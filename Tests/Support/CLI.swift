import BraneHost
import Foundation

/// Runs the real `brane` executable (built beside the test binary) against a given BRANE_HOME.
public enum CLI {
    public struct Run {
        public var status: Int32?
        public var signal: Int32?
        public var stdout: String
        public var stderr: String
    }

    public static func run(_ arguments: [String], home: BraneHome, environment: [String: String] = [:], in directory: String? = nil) throws -> Run {
        let brane = BuildProducts.brane
        return try capture(brane.path, arguments, environment: ["BRANE_HOME": home.root].merging(environment) { $1 }, in: directory)
    }

    /// Runs any program to completion with standard output and error captured.
    public static func capture(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                               in directory: String? = nil) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let signaled = process.terminationReason == .uncaughtSignal
        return Run(status: signaled ? nil : process.terminationStatus, signal: signaled ? process.terminationStatus : nil,
                   stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }
}
