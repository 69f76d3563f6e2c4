import Glibc
import SystemPackage

/// Runs a raw call that reports failure as -1 + errno, retrying on EINTR, and turns
/// failure into a thrown `Errno` (swift-system's typed errno) — the host's one idiom for raw calls.
@discardableResult
func syscallResult<T: FixedWidthInteger>(_ call: () -> T) throws(Errno) -> T {
    while true {
        let result = call()
        if result != -1 { return result }
        let error = Errno(rawValue: errno)
        if error != .interrupted { throw error }
    }
}

public extension ContinuousClock.Instant {
    /// The time left until this deadline as a poll(2) timeout: whole milliseconds rounded up
    /// (so a wait never ends early and spins), 0 once it has passed.
    var pollTimeout: Int32 {
        let remaining = self - .now
        guard remaining > .zero else { return 0 }
        let (seconds, attoseconds) = remaining.components
        return Int32(min(seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000, 1 << 30))
    }
}
