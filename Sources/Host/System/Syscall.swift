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
