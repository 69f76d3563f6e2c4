import CCurl

/// libcurl for the host's transfers. It is loaded by the first call (Sources/CCurl/on_demand.c),
/// so a command that never fetches never pays for it.
enum Curl {
    /// Loads and initialises libcurl once for the process.
    private static let ready = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    /// A new easy handle, or nil: `startFailure` then says why.
    static func easyHandle() -> UnsafeMutableRawPointer? { ready ? curl_easy_init() : nil }

    /// What to tell the user when `easyHandle()` gave nil.
    static var startFailure: String { String(cString: brane_curl_start_failure()) }
}
