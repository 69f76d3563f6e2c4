import CBraneSystem
import Glibc
import SystemPackage

/// Opens connections for plugins, which create no sockets of their own at any tier (ABI 1.2
/// `connect`). The host checks the destination against the manifest, resolves a name itself —
/// so the address is the host's choice and a plugin cannot rebind it — connects within the
/// call's deadline, and hands the connected stream over; every attempt is reported.
public enum ConnectionBroker {
    /// What became of one request, for the audit log and the plugin.
    public struct Attempt: Sendable, Equatable, CustomStringConvertible {
        public enum Outcome: Sendable, Equatable {
            case connected
            /// The policy said no: nothing was resolved or connected.
            case refused(String)
            /// Allowed, but the name did not resolve or no address answered.
            case failed(String)
        }
        /// `host:port` or a unix socket path, as the plugin asked (sanitised).
        public var destination: String
        /// The address connected to, or the ones tried.
        public var addresses: [String]
        public var outcome: Outcome

        public var description: String {
            let via = addresses.isEmpty ? "" : " (\(addresses.joined(separator: ", ")))"
            return switch outcome {
            case .connected: "connected to \(destination)\(via)"
            case .refused(let why): "refused \(destination): \(why)"
            case .failed(let why): "could not connect to \(destination)\(via): \(why)"
            }
        }
    }

    /// The longest a connect may take, within the call's own deadline.
    static let connectTimeout = Duration.seconds(10)
    /// How many connections one call may ask for.
    public static let requestsPerCall = 32

    /// A connected, blocking, close-on-exec stream for `request`, or nil; `attempt` says why.
    static func open(_ request: ConnectRequest, for manifest: Manifest, deadline callDeadline: ContinuousClock.Instant)
        -> (stream: FileDescriptor?, attempt: Attempt) {
        let deadline = min(callDeadline, .now + connectTimeout)
        var attempt = Attempt(destination: request.destination, addresses: [], outcome: .connected)
        let candidates: [SocketAddress]
        switch plan(request, manifest: manifest, deadline: deadline) {
        case .success(let addresses): candidates = addresses
        case .failure(let stop):
            attempt.outcome = stop.outcome
            return (nil, attempt)
        }
        var errors: [String] = []
        for address in candidates {
            switch connect(to: address, deadline: deadline) {
            case .success(let stream):
                attempt.addresses = [address.description]
                return (stream, attempt)
            case .failure(let error):
                attempt.addresses.append(address.description)
                errors.append(error == .timedOut && deadline <= .now ? "timed out" : "\(error)")
            }
            if deadline <= .now { break }
        }
        attempt.outcome = .failed(Array(Set(errors)).sorted().joined(separator: "; "))
        return (nil, attempt)
    }

    /// The addresses the host may connect to for `request`: declared, resolved, and fit for the tier.
    private static func plan(_ request: ConnectRequest, manifest: Manifest, deadline: ContinuousClock.Instant)
        -> Result<[SocketAddress], Stop> {
        let network = manifest.network
        let declared = network.destinations.isEmpty ? "it declares none" : "it declares " + network.destinations.joined(separator: ", ")
        guard manifest.tier != .sensitive else {
            return .failure(.refused("a tier-0 plugin handles sensitive data and may not connect anywhere"))
        }
        if request.isUnixSocket {
            guard request.port == 0, network.unixSockets.contains(request.host) else {
                return .failure(.refused("this unix socket (with port \(request.port)) is not declared under network.connect; \(declared)"))
            }
            return .success([SocketAddress(declaredUnixPath: request.host)])
        }
        guard let endpoint = network.endpoint(host: request.host, port: Int(request.port)) else {
            return .failure(.refused("not declared under network.connect; \(declared)"))
        }
        let name = NetworkAccess.canonicalHost(endpoint.host)
        let resolved: [SocketAddress]
        switch SocketAddress.resolve(name, port: request.port, deadline: deadline) {
        case .success(let addresses): resolved = addresses
        case .failure(let stop): return .failure(stop)
        }
        // A literal address is exactly what was declared. A name is checked against what it resolved
        // to: loopback only for a loopback declaration (all of tier 1), and never this machine,
        // link-local or multicast for any other — so DNS cannot point a tier-2 name at local services.
        let literal = SocketAddress(numeric: name, port: request.port) != nil
        let wantsLoopback = NetworkAccess.isLoopback(name)
        let fit = resolved.filter { literal || (wantsLoopback ? $0.scope == .loopback : $0.scope == .routable) }
        guard !fit.isEmpty else {
            let what = wantsLoopback ? "none of them is loopback" : "none of them is a routable address (this machine, link-local and multicast are refused)"
            return .failure(.refused("\(name) resolved to \(resolved.map(\.description).joined(separator: ", ")); \(what)"))
        }
        return .success(fit)
    }

    /// A non-blocking connect, waited for until `deadline`, then made blocking for the plugin.
    private static func connect(to address: SocketAddress, deadline: ContinuousClock.Instant) -> Result<FileDescriptor, Errno> {
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        let fd: Int32
        do { fd = try syscallResult { socket(Int32(address.family), type, 0) } } catch { return .failure(error) }
        let stream = FileDescriptor(rawValue: fd)
        func failed(_ error: Errno) -> Result<FileDescriptor, Errno> {
            try? stream.close()
            return .failure(error)
        }
        let started: Int32
        if let path = address.declaredUnixPath {
            // The host may run as root: a declared socket is reached without following any link on its way.
            started = brane_connect_unix_without_links(fd, path)
        } else {
            started = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        }
        if started != 0 {
            guard errno == EINPROGRESS else { return failed(Errno(rawValue: errno)) }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            while true {
                guard deadline > .now else { return failed(.timedOut) }
                let ready = poll(&descriptor, 1, deadline.pollTimeout)
                if ready > 0 { break }
                if ready < 0 && errno != EINTR { return failed(Errno(rawValue: errno)) }
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return failed(Errno(rawValue: errno)) }
            if error != 0 { return failed(Errno(rawValue: error)) }
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return .success(stream)
    }
}

/// Why a request ends before any connect: the outcome to report.
struct Stop: Error {
    var outcome: ConnectionBroker.Attempt.Outcome
    static func refused(_ why: String) -> Stop { Stop(outcome: .refused(why)) }
    static func failed(_ why: String) -> Stop { Stop(outcome: .failed(why)) }
}

/// An IPv4, IPv6 or unix socket address the host connects to.
struct SocketAddress: CustomStringConvertible {
    enum Scope { case loopback, local, routable }
    private var storage = sockaddr_storage()
    private var length: socklen_t
    var family: sa_family_t { storage.ss_family }
    /// A manifest's unix socket, which the host connects to without following links.
    private(set) var declaredUnixPath: String?

    init(declaredUnixPath path: String) {
        length = socklen_t(MemoryLayout<sa_family_t>.size)
        storage.ss_family = sa_family_t(AF_UNIX)
        declaredUnixPath = path
    }

    /// A numeric IPv4 or IPv6 address (no name lookup), or nil.
    init?(numeric host: String, port: UInt16) {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            self.init(copying: v4)
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            self.init(copying: v6)
        } else {
            return nil
        }
    }

    /// A socket address as raw bytes (one a plugin passed to a stopped call): IPv4, IPv6 or unix.
    init?(bytes: ArraySlice<UInt8>) {
        let family = bytes.count >= 2 ? Int32(UInt16(bytes[bytes.startIndex]) | UInt16(bytes[bytes.startIndex + 1]) << 8) : -1
        let needed = switch family {
        case AF_INET: MemoryLayout<sockaddr_in>.size
        case AF_INET6: MemoryLayout<sockaddr_in6>.size
        case AF_UNIX: 3
        default: Int.max
        }
        guard bytes.count >= needed, bytes.count <= MemoryLayout<sockaddr_storage>.size else { return nil }
        length = socklen_t(bytes.count)
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
    }

    private init<T>(copying address: T) {
        length = socklen_t(MemoryLayout<T>.size)
        withUnsafeMutableBytes(of: &storage) { target in withUnsafeBytes(of: address) { target.copyBytes(from: $0) } }
    }

    /// Every TCP address `host` names, looked up by the host within `deadline`.
    static func resolve(_ host: String, port: UInt16, deadline: ContinuousClock.Instant) -> Result<[SocketAddress], Stop> {
        if let numeric = SocketAddress(numeric: host, port: port) { return .success([numeric]) }
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = brane_resolve(host, max(1, deadline.pollTimeout), &list)
        guard rc == 0 else {
            return .failure(.failed(rc == BRANE_RESOLVE_TIMED_OUT ? "resolving \(host) timed out" : "resolving \(host) failed: \(String(cString: gai_strerror(rc)))"))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var next = list
        while let entry = next {
            if let raw = entry.pointee.ai_addr, entry.pointee.ai_family == AF_INET || entry.pointee.ai_family == AF_INET6 {
                var address = SocketAddress(copying: sockaddr_storage())
                address.length = entry.pointee.ai_addrlen
                withUnsafeMutableBytes(of: &address.storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(entry.pointee.ai_addrlen))) }
                if !addresses.contains(where: { $0.description == address.description }) {
                    var port = port.bigEndian
                    withUnsafeMutableBytes(of: &address.storage) { bytes in
                        // sin_port and sin6_port sit at the same offset, right after the family.
                        withUnsafeBytes(of: &port) { bytes[2..<4].copyBytes(from: $0) }
                    }
                    addresses.append(address)
                }
            }
            next = entry.pointee.ai_next
        }
        return addresses.isEmpty ? .failure(.failed("\(host) has no IPv4 or IPv6 address")) : .success(addresses)
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }

    /// The address's four IPv4 bytes: its own, or those an IPv4-mapped IPv6 address carries.
    private var ipv4: [UInt8]? {
        withUnsafeBytes(of: storage) { raw in
            switch Int32(family) {
            case AF_INET: Array(raw[4..<8])
            case AF_INET6 where raw[8..<18].allSatisfy({ $0 == 0 }) && raw[18] == 0xFF && raw[19] == 0xFF: Array(raw[20..<24])
            default: nil
            }
        }
    }

    var scope: Scope {
        if let v4 = ipv4 {
            switch (v4[0], v4[1]) {
            case (127, _): return .loopback
            case (0, _), (169, 254), (224...255, _): return .local
            default: return .routable
            }
        }
        guard Int32(family) == AF_INET6 else { return .local }
        return withUnsafeBytes(of: storage) { raw in
            let address = Array(raw[8..<24])
            if address == [UInt8](repeating: 0, count: 15) + [1] { return .loopback }
            if address.allSatisfy({ $0 == 0 }) || address[0] == 0xFF || (address[0] == 0xFE && address[1] & 0xC0 == 0x80) { return .local }
            return .routable
        }
    }

    var description: String {
        if let declaredUnixPath { return declaredUnixPath }
        return withUnsafeBytes(of: storage) { raw in
            let port = UInt16(raw[2]) << 8 | UInt16(raw[3])
            func numeric(_ family: Int32, at offset: Int) -> String {
                var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                inet_ntop(family, raw.baseAddress! + offset, &text, socklen_t(text.count))
                return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            switch Int32(family) {
            case AF_INET: return "\(numeric(AF_INET, at: 4)):\(port)"
            case AF_INET6: return "[\(numeric(AF_INET6, at: 8))]:\(port)"
            default:
                let path = raw[2..<Int(length)]
                // An abstract socket's name starts with NUL; shown with a leading @ as ss(8) does.
                return path.first == 0 ? "@" + String(decoding: path.dropFirst().prefix { $0 != 0 }, as: UTF8.self)
                    : String(decoding: path.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
    }
}
