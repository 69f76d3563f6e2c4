import BranePluginCodable
import CCurl
import Glibc

/// com.brane.fetch — `fetch_url`, a tier-2 synapse tool over libcurl.
///
/// Three layers keep it to the declared hosts: the host refuses a URL whose host:port the
/// manifest does not declare before the plugin runs; the plugin cannot make a socket, so its one
/// connection is the one the host opens for it (ABI 1.2), to a declared host:port that the host
/// resolved; and redirects are not followed, so a declared host cannot bounce it elsewhere.
struct Fetch: BranePlugin {
    static let id = "com.brane.fetch"
    static let version = "0.2.0"
    static let kind = PluginKind.synapse
    let host: PluginHost

    init(host: PluginHost) throws {
        // libcurl is loaded here, by its first call, while the sandbox still lets libraries load.
        guard curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK else { throw PluginError(String(cString: brane_curl_start_failure())) }
        self.host = host
    }

    struct Call: Decodable {
        var name: String
        var arguments: Arguments
    }

    struct Arguments: Decodable {
        var url: String
        var maxBytes: Int?
    }

    /// The text in a C buffer, up to its terminating NUL.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
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
        let limit = call.arguments.maxBytes ?? 65536
        // The host checks the schema's bounds first; `brane plugin run` sends what it is given.
        guard (1...(1 << 20)).contains(limit) else { throw PluginError("maxBytes: \(limit) is outside 1–1048576") }
        return try encodeJSON(try fetch(call.arguments.url, limit: limit))
    }

    /// The URL's host as libcurl reads it, and its port (the scheme's default when none is given).
    func authority(of url: String) throws -> (host: String, port: UInt16) {
        guard let handle = curl_url() else { throw PluginError("libcurl could not start") }
        defer { curl_url_cleanup(handle) }
        var host: UnsafeMutablePointer<CChar>?
        var port: UnsafeMutablePointer<CChar>?
        defer { curl_free(host); curl_free(port) }
        guard curl_url_set(handle, CURLUPART_URL, url, 0) == CURLUE_OK, curl_url_get(handle, CURLUPART_HOST, &host, 0) == CURLUE_OK,
              curl_url_get(handle, CURLUPART_PORT, &port, UInt32(CURLU_DEFAULT_PORT)) == CURLUE_OK,
              let host, let port, let number = UInt16(String(cString: port))
        else { throw PluginError("not a URL with a host: \(url)") }
        return (String(cString: host), number)
    }

    func fetch(_ url: String, limit: Int) throws -> Page {
        let (name, port) = try authority(of: url)
        // The host resolves the name and connects; libcurl is told that address and handed the stream.
        // libcurl keeps the slot's address, so it lives outside Swift's inout temporaries; it reads -1 once libcurl owns the stream.
        let stream = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        stream.initialize(to: try host.connect(host: name.hasPrefix("[") ? String(name.dropFirst().dropLast()) : name, port: port))
        defer {
            if stream.pointee >= 0 { close(stream.pointee) }
            stream.deallocate()
        }
        guard let curl = curl_easy_init() else { throw PluginError("libcurl could not start") }
        defer { curl_easy_cleanup(curl) }
        let resolve = curl_slist_append(nil, "\(name):\(port):\(peerAddress(stream.pointee))")
        defer { curl_slist_free_all(resolve) }
        brane_curl_set_pointer(curl, CURLOPT_RESOLVE, resolve)
        brane_curl_use_connected_socket(curl, stream)
        brane_curl_set_long(curl, CURLOPT_FORBID_REUSE, 1)
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
        brane_curl_set_string(curl, CURLOPT_USERAGENT, "brane-fetch/0.2")
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
            let detail = Self.text(errorBuffer)
            let osError = brane_curl_os_errno(curl)
            let cause = osError != 0 ? " (\(String(cString: strerror(Int32(osError)))))" : ""
            throw PluginError("fetching \(url) failed: \(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)\(cause)")
        }
        return Page(url: url, status: brane_curl_response_code(curl), contentType: brane_curl_string_info(curl, CURLINFO_CONTENT_TYPE).map { String(cString: $0) },
                    location: brane_curl_string_info(curl, CURLINFO_REDIRECT_URL).map { String(cString: $0) }, bytes: body.bytes.count, truncated: body.truncated,
                    body: String(decoding: body.bytes, as: UTF8.self))
    }
}

/// The numeric address a connected stream reaches, as CURLOPT_RESOLVE takes it ("[…]" for IPv6).
private func peerAddress(_ fd: Int32) -> String {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) } }
    return withUnsafeBytes(of: storage) { raw in
        let family = Int32(storage.ss_family)
        inet_ntop(family, raw.baseAddress! + (family == AF_INET6 ? 8 : 4), &text, socklen_t(text.count))
        return family == AF_INET6 ? "[\(Fetch.text(text))]" : Fetch.text(text)
    }
}

@_cdecl("brane_plugin_entry")
public func braneFetchEntry() -> UnsafeRawPointer { exportPlugin(Fetch.self) }
