import BraneHost
import Foundation

/// A long-running program under test: its output is collected as it arrives, so a test can wait
/// for a line, send a signal, and check what the program left behind.
public final class RunningProcess: @unchecked Sendable {
    public let process = Process()
    private let lock = NSLock()
    private var out = "", err = ""

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        stdout.fileHandleForReading.readabilityHandler = { [unowned self] handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            lock.withLock { out += text }
        }
        stderr.fileHandleForReading.readabilityHandler = { [unowned self] handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            lock.withLock { err += text }
        }
        try process.run()
    }

    /// `brane` itself, built beside the test binary.
    public static func brane(_ arguments: [String], home: BraneHome) throws -> RunningProcess {
        let brane = BuildProducts.brane
        return try RunningProcess(brane.path, arguments, environment: ["BRANE_HOME": home.root])
    }

    public var stdout: String { lock.withLock { out } }
    public var stderr: String { lock.withLock { err } }

    /// Waits until standard output or error contains `text` `count` times; false on timeout.
    @discardableResult
    public func waitFor(_ text: String, count: Int = 1, timeout: TimeInterval = 15) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let seen = lock.withLock { (out + err).components(separatedBy: text).count - 1 }
            if seen >= count { return true }
            usleep(20_000)
        }
        return false
    }

    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the exit; nil if it does not exit within `timeout` (then it is killed).
    public func exitStatus(timeout: TimeInterval = 15) -> Int32? {
        let end = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < end { usleep(20_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        usleep(100_000)   // the last output still draining from the pipes
        return process.terminationStatus
    }

    /// The pids of its children now (its sandboxed plugins).
    public var children: [Int32] { ProcessTable.children(of: process.processIdentifier) }
}
