import Foundation
import Logging
import MCP

/// MCP over newline-delimited JSON on two file descriptors, with a blocking read on its own
/// thread. The SDK's `StdioTransport` sets stdin non-blocking and sleeps 10 ms whenever a read
/// finds nothing, which adds up to 10 ms to every request; a thread parked in read(2) wakes as
/// soon as the client writes (docs/performance.md measures both). Lines are cut by
/// `LineSplitter` as the bytes arrive (linear: an 8 MB line used to take 50 s), and one past
/// `lineLimit` is never held whole. `intercept` sees each line first and answers it itself
/// (through `writer`) or hands it to the SDK — at most `sdkMessageLimit` bytes, at most
/// `sdkBacklog` waiting, so a client cannot queue memory faster than the SDK decodes. Requests
/// handed to the SDK are remembered until it answers them, so the end of input waits for those
/// answers too (`waitForSDKAnswers`).
public actor BlockingStdioTransport: Transport {
    /// What `intercept` did with a line.
    public enum Disposition: Sendable {
        case answered
        /// For the SDK; a request's id, which its answer will carry (nil for a notification).
        case forSDK(expecting: JSONValue?)
    }

    /// The longest message a client may send (4 MiB): parsed into memory, a line costs several
    /// times its size, and no tool input needs more.
    public static let lineLimit = 4 << 20
    /// The longest message for the SDK (initialize, ping, tools/list, notifications): none needs
    /// more, and the SDK's decoder costs many times a message's size.
    public static let sdkMessageLimit = 64 << 10
    static let sdkBacklog = 32

    public nonisolated let logger = Logger(label: "brane.mcp.stdio", factory: { _ in SwiftLogNoOpLogHandler() })
    private let input: Int32
    private let writer: LineWriter
    private let intercept: @Sendable (LineSplitter.Line) -> Disposition
    private nonisolated let inbox = SDKInbox(capacity: sdkBacklog)
    private nonisolated let expected = ExpectedAnswers()
    private var reader: Thread?

    public init(input: Int32 = STDIN_FILENO, writer: LineWriter = LineWriter(STDOUT_FILENO),
                intercept: @escaping @Sendable (LineSplitter.Line) -> Disposition = { _ in .forSDK(expecting: nil) }) {
        self.input = input
        self.writer = writer
        self.intercept = intercept
        // A client that stopped reading (EPIPE) ends the session as end of input would.
        let (inbox, expected) = (inbox, expected)
        writer.whenBroken {
            inbox.finish()
            expected.removeAll()   // no answer can reach a client that is gone
        }
    }

    public func connect() async throws {
        guard reader == nil else { return }
        let (fd, inbox, expected, intercept) = (input, self.inbox, self.expected, self.intercept)
        let thread = Thread {
            var splitter = LineSplitter(limit: Self.lineLimit)
            var buffer = [UInt8](repeating: 0, count: 65536)
            func hand(_ line: LineSplitter.Line) {
                // A blank line (a lone CR of a CRLF client) is no message.
                if case .complete(let bytes) = line, bytes.allSatisfy({ [0x20, 0x09, 0x0D].contains($0) }) { return }
                guard case .forSDK(let id) = intercept(line), case .complete(let bytes) = line else { return }
                if let id { expected.add(id) }
                inbox.push(Data(bytes))
            }
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }  // end of input (or an error): the client is gone
                for line in splitter.feed(buffer[..<count]) { hand(line) }
            }
            // A last line without its newline is still a message.
            if let last = splitter.rest() { hand(last) }
            inbox.finish()
        }
        thread.name = "mcp-stdin"
        thread.start()
        reader = thread
    }

    public func disconnect() async {
        inbox.finish()
    }

    public func send(_ data: Data) async throws {
        let bytes = Array(data)
        // Answered, or past answering (the client is gone): either way nothing more is expected.
        defer { if let id = (try? JSONValue(parsing: bytes))?["id"] { expected.remove(id) } }
        try writer.write(bytes)
    }

    public nonisolated func receive() -> AsyncThrowingStream<Data, Swift.Error> {
        let inbox = inbox
        return AsyncThrowingStream { await inbox.pop() }
    }

    /// Waits until the SDK has answered every request handed to it, or `timeout` passed.
    public nonisolated func waitForSDKAnswers(timeout: Duration) {
        expected.waitUntilEmpty(timeout: timeout)
    }
}

/// The messages waiting for the SDK: the reader blocks while `capacity` wait (backpressure on
/// the client), the SDK's loop awaits the next one.
final class SDKInbox: @unchecked Sendable {
    private let capacity: Int
    private let condition = NSCondition()
    private var messages: [Data] = []
    private var finished = false
    private var waiter: CheckedContinuation<Data?, Never>?

    init(capacity: Int) { self.capacity = capacity }

    func push(_ message: Data) {
        condition.lock()
        while messages.count >= capacity && !finished { condition.wait() }
        guard !finished else { return condition.unlock() }
        if let waiter {
            self.waiter = nil
            condition.unlock()
            return waiter.resume(returning: message)
        }
        messages.append(message)
        condition.unlock()
    }

    func finish() {
        condition.lock()
        finished = true
        let waiter = waiter
        self.waiter = nil
        condition.broadcast()
        condition.unlock()
        waiter?.resume(returning: nil)
    }

    func pop() async -> Data? {
        await withCheckedContinuation { continuation in
            condition.lock()
            if !messages.isEmpty {
                let message = messages.removeFirst()
                condition.signal()
                condition.unlock()
                return continuation.resume(returning: message)
            }
            if finished {
                condition.unlock()
                return continuation.resume(returning: nil)
            }
            waiter = continuation
            condition.unlock()
        }
    }
}

/// The ids of requests handed to the SDK and not yet answered (by their JSON text's bytes).
final class ExpectedAnswers: @unchecked Sendable {
    private let condition = NSCondition()
    private var ids: [[UInt8]: Int] = [:]

    func add(_ id: JSONValue) { condition.withLock { ids[JSONRPCLine.key(id), default: 0] += 1 } }

    func remove(_ id: JSONValue) {
        condition.withLock {
            let key = JSONRPCLine.key(id)
            guard let count = ids[key] else { return }
            ids[key] = count > 1 ? count - 1 : nil
            condition.broadcast()
        }
    }

    func removeAll() {
        condition.withLock {
            ids = [:]
            condition.broadcast()
        }
    }

    func waitUntilEmpty(timeout: Duration) {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        condition.withLock {
            while !ids.isEmpty && condition.wait(until: deadline) {}
        }
    }
}

/// Where a session's answers and notifications go: a line each on standard output, the
/// session's streams over HTTP.
protocol MessageSink: Sendable {
    /// Sends one whole message; throws once the client is gone.
    func write(_ message: [UInt8]) throws
    /// Runs `handler` once, when the client is gone.
    func whenBroken(_ handler: @escaping @Sendable () -> Void)
}

/// Writes whole lines to a file descriptor, one writer at a time: the SDK's messages and answers
/// written from other threads never interleave. A client that stops reading is gone once a line
/// has waited `writeDeadline` for room in its pipe: the pipe or socket is made non-blocking, so
/// no writer waits forever (and a session with calls answered into a full pipe still ends).
public final class LineWriter: MessageSink, @unchecked Sendable {
    static let writeDeadline: Duration = .seconds(10)
    private let output: Int32
    private let lock = NSLock()
    private var brokenHandlers: [@Sendable () -> Void] = []
    private var broken = false

    public init(_ output: Int32) {
        self.output = output
        var info = stat()
        if fstat(output, &info) == 0, [S_IFIFO, S_IFSOCK].contains(info.st_mode & S_IFMT) {
            _ = fcntl(output, F_SETFL, fcntl(output, F_GETFL) | O_NONBLOCK)
        }
    }

    /// Runs `handler` once, when the reader is gone (EPIPE; SIGPIPE is ignored while serving).
    func whenBroken(_ handler: @escaping @Sendable () -> Void) {
        lock.withLock { brokenHandlers.append(handler) }
    }

    public func write(_ message: [UInt8]) throws {
        var line = message
        line.append(UInt8(ascii: "\n"))
        let gone = try lock.withLock { () throws -> Bool in
            guard !broken else { throw MCPError.transportError(POSIXError(.EPIPE)) }
            var offset = 0
            let deadline = ContinuousClock.now + Self.writeDeadline
            while offset < line.count {
                let written = line[offset...].withUnsafeBytes { Foundation.write(output, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                if written < 0 && errno == EAGAIN {
                    var room = pollfd(fd: output, events: Int16(POLLOUT), revents: 0)
                    let ready = poll(&room, 1, deadline.pollTimeout)
                    if ready > 0 || (ready < 0 && errno == EINTR) { continue }
                    broken = true   // not read for writeDeadline: the client is gone as far as this session goes
                    return true
                }
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
            for handler in lock.withLock({ brokenHandlers }) { handler() }
            throw MCPError.transportError(POSIXError(.EPIPE))
        }
    }
}
