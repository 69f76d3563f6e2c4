@_exported import BraneJSON
import Glibc
import PluginABI

/// A plugin written in Swift: conform a type, export it with one `@_cdecl` line.
/// This module stays free of Foundation so a plugin that needs little memory pays for little;
/// `BranePluginCodable` adds Codable JSON for plugins that want it.
///
///     import BranePluginKit
///     struct Hello: BranePlugin {
///         static let id = "com.example.hello", version = "1.0.0", kind = PluginKind.synapse
///         init(host: PluginHost) {}
///         func invoke(method: String, input: [UInt8]) throws -> [UInt8] { Array(#"{"hi":1}"#.utf8) }
///     }
///     @_cdecl("brane_plugin_entry") public func entry() -> UnsafeRawPointer { exportPlugin(Hello.self) }
public protocol BranePlugin {
    static var id: String { get }
    static var version: String { get }
    static var kind: PluginKind { get }
    /// Runs inside the sandbox, once, after the plugin is loaded.
    init(host: PluginHost) throws
    /// One call; throw `PluginError` to answer an error the caller sees.
    func invoke(method: String, input: [UInt8]) throws -> [UInt8]
    func shutdown()
}

extension BranePlugin {
    public func shutdown() {}
}

public enum PluginKind: UInt32, Sendable {
    case specialist = 1, synapse, sensor, scanner
}

/// An error the plugin reports to its caller: `{"message": …}` on the wire.
public struct PluginError: Error {
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// The host's services, wrapping the C host-API table.
public struct PluginHost {
    let api: UnsafePointer<brane_host_api>

    public enum LogLevel: UInt32 { case debug = 0, info, warning, error }

    public func log(_ message: String, level: LogLevel = .info) {
        var text = message
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { api.pointee.log(brane_log_level(level.rawValue), $0.baseAddress, $0.count) }
        }
    }

    /// The plugin's configuration JSON (the manifest's `config`, later a neuron's).
    public var configJSON: [UInt8] {
        var length = 0
        guard let bytes = api.pointee.config(&length) else { return Array("{}".utf8) }
        return bytes.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    /// Asks another specialist through the host (ABI 1.1); throws its refusal or error message.
    /// Allowed only from within `invoke`, for ids the manifest lists under `specialist.consults`.
    public func consult(_ specialistID: String, input: [UInt8]) throws -> [UInt8] {
        guard offers(\.consult), let consult = api.pointee.consult else {
            throw PluginError("this host predates ABI 1.1 and cannot route consults")
        }
        var output: UnsafePointer<UInt8>?
        var length = 0
        let status = input.withUnsafeBufferPointer { consult(specialistID, $0.baseAddress, $0.count, &output, &length) }
        let reply = output.map { Array(UnsafeBufferPointer(start: $0, count: length)) } ?? []
        guard status == Int32(BRANE_OK.rawValue) else {
            throw PluginError((try? JSONValue(parsing: reply))?["message"]?.stringValue ?? "consult of \(specialistID) failed")
        }
        return reply
    }

    /// A connection the host opens for the plugin (ABI 1.2) — no plugin creates a socket: a
    /// connected stream socket the plugin owns and closes. `host` is a name or address with a TCP
    /// port, or a unix socket's path with port 0; the manifest must declare it under `network.connect`.
    /// Throws the host's refusal or failure. Only from within `invoke`.
    public func connect(host: String, port: UInt16) throws -> Int32 {
        guard offers(\.connect), let connect = api.pointee.connect else {
            throw PluginError("this host predates ABI 1.2 and cannot open connections")
        }
        var fd: Int32 = -1
        var message: UnsafePointer<CChar>?
        guard connect(host, port, &fd, &message) == Int32(BRANE_OK.rawValue) else {
            throw PluginError(message.map { String(cString: $0) } ?? "the host could not connect to \(host):\(port)")
        }
        return fd
    }

    /// Whether the host's table has `field` (one added in a later minor version): BRANE_HOST_HAS.
    private func offers<Field>(_ field: KeyPath<brane_host_api, Field>) -> Bool {
        Int(api.pointee.struct_size) >= MemoryLayout<brane_host_api>.offset(of: field)! + MemoryLayout<Field>.size
    }
}

// The descriptor and its function pointers are C, so they reach the plugin value through globals.
// The runner calls them from one thread, in order: entry, init, invoke…, shutdown.
nonisolated(unsafe) private var makePlugin: ((PluginHost) throws -> any BranePlugin)?
nonisolated(unsafe) private var plugin: (any BranePlugin)?
nonisolated(unsafe) private var descriptor: UnsafeMutablePointer<brane_plugin_descriptor>?

/// Builds the static descriptor for `P`; call it from the plugin's `brane_plugin_entry`.
public func exportPlugin<P: BranePlugin>(_ type: P.Type) -> UnsafeRawPointer {
    if let descriptor { return UnsafeRawPointer(descriptor) }
    makePlugin = { try P(host: $0) }
    let d = UnsafeMutablePointer<brane_plugin_descriptor>.allocate(capacity: 1)
    d.initialize(to: brane_plugin_descriptor(
        magic: BRANE_PLUGIN_MAGIC,
        struct_size: UInt32(MemoryLayout<brane_plugin_descriptor>.size),
        abi_major: UInt16(BRANE_ABI_MAJOR),
        abi_minor: UInt16(BRANE_ABI_MINOR),
        kind: P.kind.rawValue,
        id: UnsafePointer(strdup(P.id)),
        version: UnsafePointer(strdup(P.version)),
        init: { host in
            guard let host, let make = makePlugin else { return Int32(BRANE_ERROR.rawValue) }
            do {
                plugin = try make(PluginHost(api: host))
                return Int32(BRANE_OK.rawValue)
            } catch {
                // init has no output: the reason reaches the user as an error log line.
                PluginHost(api: host).log("init failed: \((error as? PluginError)?.message ?? "\(error)")", level: .error)
                return Int32(BRANE_ERROR.rawValue)
            }
        },
        invoke: { method, input, inputLength, output, outputLength in
            guard let method, let output, let outputLength, let plugin else { return Int32(BRANE_ERROR.rawValue) }
            let bytes = input.map { Array(UnsafeBufferPointer(start: $0, count: inputLength)) } ?? []
            let (status, reply): (brane_status, [UInt8])
            let name = String(cString: method)
            do {
                // Every PluginKit plugin answers the health check the host and benchmarks use.
                (status, reply) = name == "ping" ? (BRANE_OK, pong) : (BRANE_OK, try plugin.invoke(method: name, input: bytes))
            } catch let error as PluginError {
                (status, reply) = (BRANE_ERROR, errorJSON(error.message))
            } catch {
                (status, reply) = (BRANE_ERROR, errorJSON("\(error)"))
            }
            let buffer = malloc(max(reply.count, 1))!.assumingMemoryBound(to: UInt8.self)
            reply.withUnsafeBufferPointer { if let base = $0.baseAddress { buffer.update(from: base, count: $0.count) } }
            output.pointee = buffer
            outputLength.pointee = reply.count
            return Int32(status.rawValue)
        },
        release: { buffer, _ in free(buffer) },
        shutdown: { plugin?.shutdown() }))
    descriptor = d
    return UnsafeRawPointer(d)
}

private let pong = Array(#"{"pong":true}"#.utf8)

private func errorJSON(_ message: String) -> [UInt8] {
    JSONValue.object(["message": .string(message)]).bytes
}
