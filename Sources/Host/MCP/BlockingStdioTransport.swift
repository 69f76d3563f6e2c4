import Foundation
import Logging
import MCP

/// MCP over newline-delimited JSON on two file descriptors, with a blocking read on its own
/// thread. The SDK's `StdioTransport` sets stdin non-blocking and sleeps 10 ms whenever a read
/// finds nothing, which adds up to 10 ms to every request; a thread parked in read(2) wakes as
/// soon as the client writes (docs/performance.md measures both). Lines are cut by
/// `LineSplitter` as the bytes arrive (linear: an 8 MB line used to take 50 s), and one past
/// `lineLimit` is never held whole. `intercept` sees each line first and may answer it itself
/// (through `writer`) instead of handing it to the SDK.
public actor BlockingStdioTransport: Transport {
    /// The longest message a client may send (4 MiB): parsed into memory, a line costs several
    /// times its size, and no tool input needs more.
    public static let lineLimit = 4 << 20

    public nonisolated let logger = Logger(label: "brane.mcp.stdio", factory: { _ in SwiftLogNoOpLogHandler() })
    private let input: Int32
    private let writer: LineWriter
    private let intercept: @Sendable (LineSplitter.Line) -> Bool
    private let messages: AsyncThrowingStream<Data, Swift.Error>
    private let continuation: AsyncThrowingStream<Data, Swift.Error>.Continuation
    private var reader: Thread?

    /// `intercept` returns true when it answered the line; false hands a complete line to the SDK.
    public init(input: Int32 = STDIN_FILENO, writer: LineWriter = LineWriter(STDOUT_FILENO),
                intercept: @escaping @Sendable (LineSplitter.Line) -> Bool = { _ in false }) {
        self.input = input
        self.writer = writer
        self.intercept = intercept
        (messages, continuation) = AsyncThrowingStream.makeStream()
        // A client that stopped reading (EPIPE) ends the session as end of input would.
        let continuation = continuation
        writer.onBroken = { continuation.finish() }
    }

    public func connect() async throws {
        guard reader == nil else { return }
        let (fd, continuation, intercept) = (input, self.continuation, self.intercept)
        let thread = Thread {
            var splitter = LineSplitter(limit: Self.lineLimit)
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }  // end of input (or an error): the client is gone
                for line in splitter.feed(buffer[..<count]) where line != .complete([]) {
                    if !intercept(line), case .complete(let bytes) = line { continuation.yield(Data(bytes)) }
                }
            }
            continuation.finish()
        }
        thread.name = "mcp-stdin"
        thread.start()
        reader = thread
    }

    public func disconnect() async {
        continuation.finish()
    }

    public func send(_ data: Data) async throws {
        try writer.write(Array(data))
    }

    public nonisolated func receive() -> AsyncThrowingStream<Data, Swift.Error> { messages }
}

/// Writes whole lines to a file descriptor, one writer at a time: the SDK's messages and answers
/// written from other threads never interleave.
public final class LineWriter: @unchecked Sendable {
    private let output: Int32
    private let lock = NSLock()
    /// Called once, when the reader is gone (EPIPE; SIGPIPE is ignored while serving).
    var onBroken: (@Sendable () -> Void)?
    private var broken = false

    public init(_ output: Int32) { self.output = output }

    public func write(_ message: [UInt8]) throws {
        var line = message
        line.append(UInt8(ascii: "\n"))
        let gone = try lock.withLock { () throws -> Bool in
            guard !broken else { throw MCPError.transportError(POSIXError(.EPIPE)) }
            var offset = 0
            while offset < line.count {
                let written = line[offset...].withUnsafeBytes { Foundation.write(output, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                if written < 0 && errno == EPIPE {
                    broken = true
                    return true
                }
                guard written > 0 else { throw MCPError.transportError(POSIXError(.init(rawValue: errno) ?? .EIO)) }
                offset += written
            }
            return false
        }
        if gone {
            onBroken?()
            throw MCPError.transportError(POSIXError(.EPIPE))
        }
    }
}
