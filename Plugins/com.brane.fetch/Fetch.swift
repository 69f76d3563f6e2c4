import BranePluginCodable
import CCurl
import FoundationEssentials
import Glibc

/// com.brane.fetch — `fetch_url`, a tier-2 synapse tool over libcurl.
///
/// Three layers keep it to the declared hosts: the host refuses a URL whose host:port the
/// manifest does not declare before the plugin runs; Landlock lets the process connect only to
/// the declared ports; and redirects are not followed, so a declared host cannot bounce it elsewhere.
struct Fetch: BranePlugin {
    static let id = "com.brane.fetch"
    static let version = "0.1.0"
    static let kind = PluginKind.synapse

    init(host: PluginHost) throws {
        guard curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK else { throw PluginError("libcurl could not start") }
    }

    struct Call: Decodable {
        var name: String
        var arguments: Arguments
    }

    struct Arguments: Decodable {
        var url: String
        var maxBytes: Int?
    }

    struct Page: Encodable {
        var url: String
        var status: Int
        var contentType: String?
        var location: String?
        var bytes: Int
        var truncated: Bool
        var body: String
    }

    /// libcurl's write callback appends here until the limit, then stops the transfer.
    final class Body {
        var bytes: [UInt8] = []
        let limit: Int
        var truncated = false
        init(limit: Int) { self.limit = limit }
    }

    func invoke(method: String, input: [UInt8]) throws -> [UInt8] {
        guard method == "tools/call" else { throw PluginError("unknown method \(method); this plugin answers tools/call") }
        let call = try decodeJSON(Call.self, from: input)
        guard call.name == "fetch_url" else { throw PluginError("unknown tool \(call.name)") }
        return try encodeJSON(try fetch(call.arguments.url, limit: min(call.arguments.maxBytes ?? 65536, 1 << 20)))
    }

    func fetch(_ url: String, limit: Int) throws -> Page {
        guard let curl = curl_easy_init() else { throw PluginError("libcurl could not start") }
        defer { curl_easy_cleanup(curl) }
        let body = Body(limit: limit)
        let context = Unmanaged.passRetained(body)
        defer { context.release() }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE))
        brane_curl_set_string(curl, CURLOPT_URL, url)
        brane_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        brane_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)
        brane_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        brane_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT, 10)
        brane_curl_set_long(curl, CURLOPT_TIMEOUT, 15)
        brane_curl_set_string(curl, CURLOPT_USERAGENT, "brane-fetch/0.1")
        brane_curl_set_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
        brane_curl_set_write_function(curl) { data, size, count, opaque in
            let body = Unmanaged<Body>.fromOpaque(opaque!).takeUnretainedValue()
            let length = size * count
            let room = body.limit - body.bytes.count
            if let data { body.bytes += UnsafeRawBufferPointer(start: data, count: min(length, room)) }
            if length > room {
                body.truncated = true
                return 0  // stop: the caller asked for no more
            }
            return length
        }
        let code = errorBuffer.withUnsafeMutableBufferPointer { buffer -> CURLcode in
            brane_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, buffer.baseAddress)
            return curl_easy_perform(curl)
        }
        guard code == CURLE_OK || (code == CURLE_WRITE_ERROR && body.truncated) else {
            let detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let osError = brane_curl_os_errno(curl)
            let cause = osError != 0 ? " (\(String(cString: strerror(Int32(osError)))))" : ""
            throw PluginError("fetching \(url) failed: \(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)\(cause)")
        }
        return Page(url: url, status: brane_curl_response_code(curl), contentType: brane_curl_string_info(curl, CURLINFO_CONTENT_TYPE).map { String(cString: $0) },
                    location: brane_curl_string_info(curl, CURLINFO_REDIRECT_URL).map { String(cString: $0) }, bytes: body.bytes.count, truncated: body.truncated,
                    body: String(decoding: body.bytes, as: UTF8.self))
    }
}

@_cdecl("brane_plugin_entry")
public func braneFetchEntry() -> UnsafeRawPointer { exportPlugin(Fetch.self) }
