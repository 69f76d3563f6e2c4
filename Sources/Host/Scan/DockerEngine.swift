import CCurl
import Foundation

/// The host's side of the container scanner: it asks the Docker Engine API over its unix socket
/// (which no sandboxed plugin may open) and passes the raw answers to the plugin to parse.
public enum DockerEngine {
    /// Where engines listen: DOCKER_HOST when it names a unix socket, then the usual paths.
    public static var candidateSockets: [String] {
        var sockets: [String] = []
        if let host = ProcessInfo.processInfo.environment["DOCKER_HOST"], host.hasPrefix("unix://") { sockets.append(String(host.dropFirst(7))) }
        return sockets + ["/var/run/docker.sock", "/run/docker.sock", "/run/user/\(getuid())/docker.sock"]
    }

    /// The scanner input: {"engine": {"socket", "version", "containers"} or {"socket", "error"}}, or
    /// {"engine": null, "searched": [...]} when no socket exists.
    public static func scannerInput(sockets: [String] = candidateSockets) -> JSONValue {
        guard let socket = sockets.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            return .object(["engine": .null, "searched": .array(sockets.map(JSONValue.string))])
        }
        do {
            let version = try get("/version", socket: socket)
            let containers = try get("/containers/json?all=1", socket: socket)
            return .object(["engine": .object(["socket": .string(socket), "version": version, "containers": containers])])
        } catch {
            return .object(["engine": .object(["socket": .string(socket), "error": .string("\(error)")])])
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// One GET over the unix socket; the answer must be JSON (at most 16 MiB).
    static func get(_ path: String, socket: String) throws -> JSONValue {
        guard let curl = Curl.easyHandle() else { throw Failure(description: Curl.startFailure) }
        defer { curl_easy_cleanup(curl) }
        final class Body { var bytes: [UInt8] = [] }
        let body = Body()
        let context = Unmanaged.passRetained(body)
        defer { context.release() }
        brane_curl_set_string(curl, CURLOPT_UNIX_SOCKET_PATH, socket)
        brane_curl_set_string(curl, CURLOPT_URL, "http://localhost\(path)")
        brane_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        brane_curl_set_long(curl, CURLOPT_TIMEOUT, 10)
        brane_curl_set_offset(curl, CURLOPT_MAXFILESIZE_LARGE, 16 << 20)
        brane_curl_set_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
        brane_curl_set_write_function(curl) { data, size, count, opaque in
            let body = Unmanaged<Body>.fromOpaque(opaque!).takeUnretainedValue()
            if let data { body.bytes += UnsafeRawBufferPointer(start: data, count: size * count) }
            return body.bytes.count > 16 << 20 ? 0 : size * count
        }
        let code = curl_easy_perform(curl)
        guard code == CURLE_OK else { throw Failure(description: String(cString: curl_easy_strerror(code))) }
        let status = brane_curl_response_code(curl)
        guard status == 200 else { throw Failure(description: "GET \(path) answered HTTP \(status)") }
        return try JSONValue(parsing: body.bytes)
    }
}
