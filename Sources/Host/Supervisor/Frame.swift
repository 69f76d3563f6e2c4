import CBraneSystem

/// The frame types of the host <-> brane-sandbox protocol (see brane_wire.h).
public enum FrameType: UInt16, Sendable {
    case setup = 1, ready, call, result, error, log, shutdown, failed
    case consult, consultResult, consultError
    case filtered, listening
    case connect, connected, connectError
    case loading
}

/// One frame: a 12-byte little-endian header (length, request id, type, reserved) and its payload.
public struct Frame: Equatable, Sendable {
    public static let headerSize = Int(BRANE_FRAME_HEADER_SIZE)
    public var type: FrameType
    public var requestID: UInt32
    public var payload: [UInt8]

    public init(type: FrameType, requestID: UInt32 = 0, payload: [UInt8] = []) {
        self.type = type
        self.requestID = requestID
        self.payload = payload
    }

    public func encoded() -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(Self.headerSize + payload.count)
        bytes.appendLittleEndian(UInt32(payload.count))
        bytes.appendLittleEndian(requestID)
        bytes.appendLittleEndian(type.rawValue)
        bytes.appendLittleEndian(UInt16(0))
        bytes += payload
        return bytes
    }
}

public enum FrameError: Error, Equatable, CustomStringConvertible {
    case tooLarge(length: UInt32, limit: Int)
    case unknownType(UInt16)
    case malformed(FrameType, String)

    public var description: String {
        switch self {
        case .tooLarge(let length, let limit): "frame of \(length) bytes exceeds the limit of \(limit) bytes"
        case .unknownType(let type): "unknown frame type \(type)"
        case .malformed(let type, let why): "malformed \(type) frame: \(why)"
        }
    }
}

/// Reassembles frames from a byte stream. Rejects a frame by its header, before its
/// payload is buffered, so a giant length costs nothing.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil when more bytes are needed.
    public mutating func next() throws(FrameError) -> Frame? {
        let available = buffer.count - start
        guard available >= Frame.headerSize else { return nil }
        var reader = ByteReader(buffer[start..<start + Frame.headerSize])
        let length = reader.u32()!, requestID = reader.u32()!, rawType = reader.u16()!
        guard length <= limit else { throw .tooLarge(length: length, limit: limit) }
        guard let type = FrameType(rawValue: rawType) else { throw .unknownType(rawType) }
        let total = Frame.headerSize + Int(length)
        guard available >= total else { return nil }
        let payload = Array(buffer[start + Frame.headerSize..<start + total])
        start += total
        if start > 65536 {
            buffer.removeFirst(start)
            start = 0
        }
        return Frame(type: type, requestID: requestID, payload: payload)
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// A u16-length-prefixed UTF-8 string, as the runner's take_string reads it.
    mutating func appendShortString(_ string: String) {
        let utf8 = Array(string.utf8)
        appendLittleEndian(UInt16(utf8.count))
        append(contentsOf: utf8)
    }
}

/// Reads little-endian integers and byte runs from a payload; nil when it runs short.
struct ByteReader {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }
    init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    var remaining: ArraySlice<UInt8> { bytes }

    mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard bytes.count >= size else { return nil }
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes.prefix(size)) }
        bytes = bytes.dropFirst(size)
        return T(littleEndian: value)
    }

    mutating func u16() -> UInt16? { integer(UInt16.self) }
    mutating func u32() -> UInt32? { integer(UInt32.self) }
    mutating func i32() -> Int32? { integer(Int32.self) }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, bytes.count >= count else { return nil }
        defer { bytes = bytes.dropFirst(count) }
        return bytes.prefix(count)
    }
}
