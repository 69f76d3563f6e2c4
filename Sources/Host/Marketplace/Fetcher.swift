import CCurl
import Foundation

/// Where an index lives and how its archives are found: a directory path, `file://` URL, or
/// `http(s)://` URL, pointing at the index's directory or at `index.yaml` itself.
public struct IndexLocation: Sendable, Equatable, CustomStringConvertible {
    /// Directory path or URL without the trailing slash.
    public let base: String
    public let isRemote: Bool

    public init(_ text: String, relativeTo directory: String = FileManager.default.currentDirectoryPath) throws {
        var text = text
        if text.hasSuffix("/index.yaml") { text.removeLast("/index.yaml".count) }
        while text.count > 1 && text.hasSuffix("/") { text.removeLast() }
        if text.hasPrefix("http://") || text.hasPrefix("https://") {
            (base, isRemote) = (text, true)
        } else if text.hasPrefix("file://") {
            guard let path = URL(string: text)?.path, !path.isEmpty else {
                throw MarketplaceError(.usage, "\(text) is not a valid file:// URL")
            }
            (base, isRemote) = (path, false)
        } else if text.contains("://") {
            throw MarketplaceError(.usage, "\(text): only directory paths, file://, http:// and https:// locations are supported")
        } else {
            (base, isRemote) = (URL(fileURLWithPath: text, relativeTo: URL(fileURLWithPath: directory + "/")).standardizedFileURL.path, false)
        }
    }

    public func resolve(_ relative: String) -> String { "\(base)/\(relative)" }
    public var description: String { base }
}

/// Reads files and downloads URLs with a hard cap on size: a marketplace declares every size
/// in advance, so anything longer is an attack (endless data) and is cut off, not buffered.
public struct Fetcher: Sendable {
    public typealias Progress = @Sendable (_ received: UInt64, _ total: UInt64?) -> Void
    public var progress: Progress?
    /// How long a transfer may stay under `minimumRate` before it is abandoned.
    public var stallSeconds = 15

    public init(progress: Progress? = nil) { self.progress = progress }

    public func fetch(_ location: String, remote: Bool, limit: UInt64, total: UInt64? = nil) throws -> [UInt8] {
        remote ? try download(location, limit: limit, total: total) : try readFile(location, limit: limit, total: total)
    }

    /// A local index, signature or archive: a regular file only — opened without blocking, so a
    /// FIFO cannot hang the install (and its lock), and checked before a byte is read.
    private func readFile(_ path: String, limit: UInt64, total: UInt64?) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw MarketplaceError(.fetchFailed, "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw MarketplaceError(.fetchFailed, "\(path) is not a regular file (a directory, FIFO, socket or device); refused")
        }
        guard UInt64(info.st_size) <= limit else {
            throw MarketplaceError(.tooLarge, "\(path) is larger than the \(limit) bytes declared for it; refused")
        }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { throw MarketplaceError(.fetchFailed, "cannot read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return bytes }
            guard UInt64(bytes.count + n) <= limit else {
                throw MarketplaceError(.tooLarge, "\(path) is larger than the \(limit) bytes declared for it; refused")
            }
            bytes += chunk[..<n]
            progress?(UInt64(bytes.count), total)
        }
    }

    /// State shared with libcurl's write callback.
    private final class Download {
        var bytes = [UInt8]()
        var limit: UInt64
        var exceeded = false
        var total: UInt64?
        var progress: Progress?
        init(limit: UInt64, total: UInt64?, progress: Progress?) { (self.limit, self.total, self.progress) = (limit, total, progress) }
    }

    /// Bytes per second below which a transfer is abandoned after `stallSeconds`.
    static let minimumRate = 1024

    /// The whole transfer's deadline, in seconds, for a body of at most `limit` bytes.
    static func deadlineSeconds(forAtMost limit: UInt64) -> Int { 60 + Int(min(limit, 1 << 40) / (256 << 10)) }

    private func download(_ url: String, limit: UInt64, total: UInt64?) throws -> [UInt8] {
        guard let curl = Curl.easyHandle() else { throw MarketplaceError(.fetchFailed, Curl.startFailure) }
        defer { curl_easy_cleanup(curl) }
        let state = Download(limit: limit, total: total, progress: progress)
        let context = Unmanaged.passRetained(state)
        defer { context.release() }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        brane_curl_set_string(curl, CURLOPT_URL, url)
        brane_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        brane_curl_set_string(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        brane_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 1)
        brane_curl_set_long(curl, CURLOPT_MAXREDIRS, 5)
        brane_curl_set_long(curl, CURLOPT_FAILONERROR, 1)
        brane_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        brane_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT, 15)
        // A slow mirror cannot hold an install (and its lock) forever: under 1 KiB/s for 15 s fails,
        // and so does the whole transfer past 60 s plus 1 s per 256 KiB it may carry.
        brane_curl_set_long(curl, CURLOPT_LOW_SPEED_LIMIT, Self.minimumRate)
        brane_curl_set_long(curl, CURLOPT_LOW_SPEED_TIME, stallSeconds)
        brane_curl_set_long(curl, CURLOPT_TIMEOUT, Self.deadlineSeconds(forAtMost: limit))
        brane_curl_set_offset(curl, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limit))
        brane_curl_set_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
        brane_curl_set_write_function(curl) { data, size, count, opaque in
            let state = Unmanaged<Download>.fromOpaque(opaque!).takeUnretainedValue()
            let length = size * count
            guard UInt64(state.bytes.count + length) <= state.limit else {
                state.exceeded = true
                return 0   // makes libcurl stop with CURLE_WRITE_ERROR
            }
            state.bytes += UnsafeRawBufferPointer(start: data, count: length)
            state.progress?(UInt64(state.bytes.count), state.total)
            return length
        }
        brane_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, errorBuffer)
        let code = curl_easy_perform(curl)
        if state.exceeded || code == CURLE_FILESIZE_EXCEEDED {
            throw MarketplaceError(.tooLarge, "\(url) sent more than the \(limit) bytes declared for it; download stopped and refused")
        }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let status = brane_curl_response_code(curl)
            let why = !detail.isEmpty ? detail : String(cString: curl_easy_strerror(code))
            throw MarketplaceError(.fetchFailed, "cannot download \(url): \(why)\(status >= 400 ? " (HTTP \(status))" : "")")
        }
        return state.bytes
    }
}
