import CBraneSystem
import Glibc
import SystemPackage

enum ChannelError: Error {
    case timedOut
    case closed
    case frame(FrameError)
    case system(Errno)
    /// The seccomp listener reported a forbidden call; the instance is blocked in it.
    case forbidden(brane_seccomp_event)
}

/// The host's end of a plugin's socket: non-blocking, every wait bounded by a deadline,
/// writes with MSG_NOSIGNAL so a plugin that closes its end cannot SIGPIPE the host.
final class FrameChannel {
    let socket: FileDescriptor
    /// The instance's seccomp listener, watched in the same poll as the socket, so a forbidden
    /// call is seen the moment it is made, whatever the host is waiting for.
    var listener: FileDescriptor?
    /// The streams the host brokered for this instance (tiers 1 and 2): a connect that only
    /// re-states one's own peer is answered, not fatal.
    var brokered: BrokeredStreams?
    private var decoder: FrameDecoder
    private var readBuffer = [UInt8](repeating: 0, count: 65536)
    /// The socket and the listener, reused by every wait (no allocation on the call path).
    private var pollSet = [pollfd](repeating: pollfd(fd: -1, events: 0, revents: 0), count: 2)

    init(socket: FileDescriptor, limit: Int) {
        self.socket = socket
        decoder = FrameDecoder(limit: limit)
        _ = fcntl(socket.rawValue, F_SETFL, fcntl(socket.rawValue, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        try? socket.close()
        try? listener?.close()
    }

    /// A forbidden call already waiting on the listener, without blocking.
    func pendingForbiddenCall() -> brane_seccomp_event? {
        guard let listener else { return nil }
        var descriptor = pollfd(fd: listener.rawValue, events: Int16(POLLIN), revents: 0)
        guard Glibc.poll(&descriptor, 1, 0) == 1, descriptor.revents & Int16(POLLIN) != 0 else { return nil }
        return takeForbiddenCall(from: listener)
    }

    /// The stopped call the listener has ready — or nil when there is none, or it was a no-op
    /// connect the host answered instead (see `brokered`).
    private func takeForbiddenCall(from listener: FileDescriptor) -> brane_seccomp_event? {
        var event = brane_seccomp_event()
        guard brane_seccomp_receive(listener.rawValue, &event) == 0 else { return nil }
        if brokered?.answerIfNoOp(event, listener: listener) == true { return nil }
        return event
    }

    /// Sends a frame; `passing` rides as SCM_RIGHTS on its first bytes (a brokered connection).
    func send(_ frame: Frame, passing descriptor: FileDescriptor? = nil, deadline: ContinuousClock.Instant?) throws(ChannelError) {
        let bytes = frame.encoded()
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes {
                if let descriptor, offset == 0 {
                    return brane_send_with_descriptor(socket.rawValue, $0.baseAddress, $0.count, descriptor.rawValue)
                }
                return Glibc.send(socket.rawValue, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            switch Errno(rawValue: errno) {
            case .interrupted: continue
            case .wouldBlock: try wait(for: Int16(POLLOUT), deadline: deadline)
            case .brokenPipe, .connectionReset: throw .closed
            case let error: throw .system(error)
            }
        }
    }

    func receive(deadline: ContinuousClock.Instant?) throws(ChannelError) -> Frame {
        while true {
            do {
                if let frame = try decoder.next() { return frame }
            } catch {
                throw .frame(error)
            }
            let count = readBuffer.withUnsafeMutableBytes { Glibc.read(socket.rawValue, $0.baseAddress, $0.count) }
            if count > 0 {
                decoder.append(readBuffer[..<count])
                continue
            }
            if count == 0 { throw .closed }
            switch Errno(rawValue: errno) {
            case .interrupted: continue
            case .wouldBlock: try wait(for: Int16(POLLIN), deadline: deadline)
            case .connectionReset: throw .closed
            case let error: throw .system(error)
            }
        }
    }

    private func wait(for events: Int16, deadline: ContinuousClock.Instant?) throws(ChannelError) {
        while true {
            var timeout: Int32 = -1
            if let deadline {
                guard deadline > .now else { throw .timedOut }
                timeout = deadline.pollTimeout
            }
            pollSet[0] = pollfd(fd: socket.rawValue, events: events, revents: 0)
            pollSet[1] = pollfd(fd: listener?.rawValue ?? -1, events: Int16(POLLIN), revents: 0)
            let ready = Glibc.poll(&pollSet, 2, timeout)
            if ready < 0 {
                if errno != EINTR { throw .system(Errno(rawValue: errno)) }
                continue
            }
            let notified = pollSet[1].revents
            if notified & Int16(POLLIN) != 0, let listener {
                if let event = takeForbiddenCall(from: listener) { throw .forbidden(event) }
            } else if notified != 0 {
                // Every filtered task is gone (POLLHUP): the socket's end of file tells the rest.
                try? listener?.close()
                listener = nil
            }
            if pollSet[0].revents != 0 { return }
            // Otherwise recompute: the deadline decides, not poll's rounding.
        }
    }
}

/// A connected AF_UNIX stream pair, both ends close-on-exec.
func makeSocketPair() throws(Errno) -> (host: FileDescriptor, plugin: FileDescriptor) {
    var fds: [Int32] = [0, 0]
    try syscallResult { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
    return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
}
