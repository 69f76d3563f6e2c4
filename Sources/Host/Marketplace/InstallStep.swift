import Foundation

/// The steps of an install, in order; reported for progress output.
public enum InstallStep: Sendable, Equatable {
    case fetching(received: UInt64, total: UInt64)
    case verified(sha256: String)
    case unpacked(files: Int)
    case validated
    case activated(path: String)
    case recorded

    var faultPointName: String {
        switch self {
        case .fetching: "fetching"
        case .verified: "verified"
        case .unpacked: "unpacked"
        case .validated: "validated"
        case .activated: "activated"
        case .recorded: "recorded"
        }
    }
}

/// Crash testing: `BRANE_FAULT_KILL_AFTER=<step>` makes the process SIGKILL itself right after
/// that step, so tests can prove an install killed at any point leaves a consistent host.
enum FaultInjection {
    static let killAfter = ProcessInfo.processInfo.environment["BRANE_FAULT_KILL_AFTER"]

    static func reached(_ step: InstallStep) {
        if let killAfter, killAfter == step.faultPointName { kill(getpid(), SIGKILL) }
    }
}
