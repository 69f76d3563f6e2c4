import CCurl
import Foundation

/// A JSON POST through libcurl whose response body is handed over as it arrives (server-sent
/// events, JSON lines), so a model's answer can be shown while it is generated.
struct HTTPStream {
    var url: String
    /// When set, the connection goes to this unix socket; `url` still names the path and Host.
    var unixSocketPath: String?
    var headers: [String] = []
    var timeoutMilliseconds: Int
    /// A longer response body is cut off.
    var maximumBytes: Int
    var connectTimeoutMilliseconds = 5000

    /// An HTTP status of 400 or more, with the body the server sent (its error message).
    struct StatusFailure: Error {
        var status: Int
        var body: [UInt8]
    }

    /// State shared with libcurl's write callback.
    private final class Transfer {
        let curl: UnsafeMutableRawPointer
        let onChunk: ([UInt8]) -> Bool
        let maximumBytes: Int
        var received = 0
        var status = 0
        var errorBody: [UInt8] = []
        init(curl: UnsafeMutableRawPointer, maximumBytes: Int, onChunk: @escaping ([UInt8]) -> Bool) {
            (self.curl, self.maximumBytes, self.onChunk) = (curl, maximumBytes, onChunk)
        }
    }

    /// Posts `body`; `onChunk` gets the response body piece by piece when the status is 2xx, and
    /// returns false to stop the transfer. Throws `StatusFailure` for an error status and
    /// `ModelError(.unavailable)` when no whole answer came.
    func post(_ body: [UInt8], onChunk: @escaping ([UInt8]) -> Bool) throws {
        guard let curl = Curl.easyHandle() else { throw ModelError(.unavailable, Curl.startFailure) }
        defer { curl_easy_cleanup(curl) }
        let transfer = Transfer(curl: curl, maximumBytes: maximumBytes, onChunk: onChunk)
        let context = Unmanaged.passRetained(transfer)
        defer { context.release() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        // "Expect:" stops libcurl from waiting for a 100-continue some servers never send.
        for header in ["Content-Type: application/json", "Accept: text/event-stream, application/x-ndjson, application/json", "Expect:"] + headers {
            headerList = curl_slist_append(headerList, header)
        }
        defer { curl_slist_free_all(headerList) }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }

        brane_curl_set_string(curl, CURLOPT_URL, url)
        if let unixSocketPath { brane_curl_set_string(curl, CURLOPT_UNIX_SOCKET_PATH, unixSocketPath) }
        brane_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        brane_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)   // a redirect could move the conversation elsewhere
        brane_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        brane_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, min(connectTimeoutMilliseconds, timeoutMilliseconds))
        brane_curl_set_long(curl, CURLOPT_TIMEOUT_MS, timeoutMilliseconds)
        brane_curl_set_pointer(curl, CURLOPT_HTTPHEADER, headerList)
        brane_curl_set_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
        brane_curl_set_write_function(curl) { data, size, count, opaque in
            let transfer = Unmanaged<Transfer>.fromOpaque(opaque!).takeUnretainedValue()
            let bytes = Array(UnsafeRawBufferPointer(start: data, count: size * count))
            if transfer.status == 0 { transfer.status = brane_curl_response_code(transfer.curl) }
            transfer.received += bytes.count
            if transfer.status >= 400 {
                if transfer.errorBody.count < 64 * 1024 { transfer.errorBody += bytes }
            } else if transfer.received > transfer.maximumBytes || !transfer.onChunk(bytes) {
                return 0   // makes libcurl stop with CURLE_WRITE_ERROR
            }
            return size * count
        }
        brane_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, errorBuffer)
        let code = body.withUnsafeBytes { raw -> CURLcode in
            brane_curl_set_pointer(curl, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress))
            brane_curl_set_offset(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(raw.count))
            return curl_easy_perform(curl)
        }
        let status = Int(brane_curl_response_code(curl))
        if status >= 400 { throw StatusFailure(status: status, body: transfer.errorBody) }
        if transfer.received > maximumBytes { throw ModelError(.malformed, "the answer passed \(maximumBytes >> 20) MiB; stopped") }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            throw ModelError(.unavailable, detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)
        }
    }
}
