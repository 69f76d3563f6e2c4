import Foundation

/// Signals a long-running command acts on between steps: SIGINT/SIGTERM end it cleanly (plugins
/// stopped, nothing half-written), SIGHUP asks it to reload its configuration.
enum Signals {
    nonisolated(unsafe) static var stopRequested = false
    nonisolated(unsafe) static var reloadRequested = false

    static func install(reload: Bool = false) {
        signal(SIGINT) { _ in Signals.stopRequested = true }
        signal(SIGTERM) { _ in Signals.stopRequested = true }
        if reload { signal(SIGHUP) { _ in Signals.reloadRequested = true } }
    }
}
