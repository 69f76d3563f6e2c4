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
    /// `identity` is the instance's (a root host): a unix socket is connected under it.
    static func open(_ request: ConnectRequest, for manifest: Manifest, identity: (uid: UInt32, gid: UInt32)? = nil,
                     deadline callDeadline: ContinuousClock.Instant) -> (stream: FileDescriptor?, attempt: Attempt) {
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
            switch connect(to: address, identity: identity, deadline: deadline) {
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
        -> Result<[SocketAddress], ConnectionStop> {
        let network = manifest.network
        let declared = network.destinations.isEmpty ? "it declares none" : "it declares " + network.destinations.joined(separator: ", ")
        guard manifest.tier != .sensitive else {
            return .failure(.refused("a tier-0 plugin handles sensitive data and may not connect anywhere"))
        }
        if request.isUnixSocket {
            // Byte for byte, and the manifest's own string is what gets connected: Swift's `==` would
            // call canonically equivalent spellings (é and e + U+0301, K and U+212A) the same path.
            guard request.port == 0, let path = network.unixSockets.first(where: { $0.utf8.elementsEqual(request.host.utf8) }) else {
                return .failure(.refused("this unix socket (with port \(request.port)) is not declared under network.connect; \(declared)"))
            }
            return .success([SocketAddress(declaredUnixPath: path)])
        }
        guard request.host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
              let endpoint = network.endpoint(host: request.host, port: Int(request.port)) else {
            return .failure(.refused("not declared under network.connect; \(declared)"))
        }
        let name = NetworkAccess.canonicalHost(endpoint.host)
        // Loopback declarations (all of tier 1) are literal addresses or `localhost`, never looked up:
        // a lookup the plugin chooses would carry data to whatever resolver this machine uses.
        if NetworkAccess.isLoopback(name) {
            let local = name == "localhost" ? ["127.0.0.1", "::1"] : [name]
            return .success(local.compactMap { SocketAddress(numeric: $0, port: request.port) })
        }
        if let literal = SocketAddress(numeric: name, port: request.port) { return .success([literal]) }
        let resolved: [SocketAddress]
        switch SocketAddress.resolve(name, port: request.port, deadline: deadline) {
        case .success(let addresses): resolved = addresses
        case .failure(let stop): return .failure(stop)
        }
        // A name must resolve to the public internet: never this machine, a private, shared or
        // link-local network, or multicast — so DNS cannot point a tier-2 name at local services
        // or a cloud metadata endpoint. A literal address declares exactly what it reaches.
        let own = SocketAddress.interfaceAddresses()
        let fit = resolved.filter { address in address.scope == .routable && !own.contains { $0.sameHost(as: address) } }
        guard !fit.isEmpty else {
            return .failure(.refused("\(name) resolved to \(resolved.map(\.description).joined(separator: ", ")); none of them is a public address "
                + "(this machine, private, shared, link-local and multicast networks are refused: declare a literal address to reach one)"))
        }
        return .success(fit)
    }

    /// A non-blocking connect, waited for until `deadline`, then made blocking for the plugin.
    private static func connect(to address: SocketAddress, identity: (uid: UInt32, gid: UInt32)?,
                                deadline: ContinuousClock.Instant) -> Result<FileDescriptor, Errno> {
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
            // Without following any link on the way, and — from a root host — as the instance, so the
            // service sees (and the socket file's permissions admit) the plugin's uid, not root's.
            // A child makes the connect, so a path on a hung filesystem (FUSE, NFS) costs the host a
            // deadline, not its thread.
            started = brane_connect_unix_in_child(fd, path, identity != nil ? 1 : 0, identity?.uid ?? 0, identity?.gid ?? 0, max(1, deadline.pollTimeout))
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
struct ConnectionStop: Error {
    var outcome: ConnectionBroker.Attempt.Outcome
    static func refused(_ why: String) -> ConnectionStop { ConnectionStop(outcome: .refused(why)) }
    static func failed(_ why: String) -> ConnectionStop { ConnectionStop(outcome: .failed(why)) }
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

    /// Every TCP address the name `host` has, looked up by the host within `deadline` (literals are `init?(numeric:port:)`).
    static func resolve(_ host: String, port: UInt16, deadline: ContinuousClock.Instant) -> Result<[SocketAddress], ConnectionStop> {
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

    /// The IPv4 address this one is or carries: its own, or that of an IPv4-mapped (::ffff:0:0/96),
    /// NAT64 (64:ff9b::/96) or 6to4 (2002::/16) IPv6 address — each reaches that IPv4 host.
    private var embeddedIPv4: [UInt8]? {
        withUnsafeBytes(of: storage) { raw in
            switch Int32(family) {
            case AF_INET: return Array(raw[4..<8])
            case AF_INET6:
                let a = Array(raw[8..<24])
                if a.prefix(10).allSatisfy({ $0 == 0 }) && a[10] == 0xFF && a[11] == 0xFF { return Array(a[12..<16]) }
                if a.prefix(12).elementsEqual([0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0]) { return Array(a[12..<16]) }
                if a[0] == 0x20 && a[1] == 0x02 { return Array(a[2..<6]) }
                return nil
            default: return nil
            }
        }
    }

    var scope: Scope {
        if let v4 = embeddedIPv4 { return Self.scope(ipv4: v4) }
        guard Int32(family) == AF_INET6 else { return .local }
        return withUnsafeBytes(of: storage) { raw in
            let a = Array(raw[8..<24])
            if a == [UInt8](repeating: 0, count: 15) + [1] { return .loopback }
            let unspecifiedOrCompatible = a.prefix(12).allSatisfy { $0 == 0 }
            let multicast = a[0] == 0xFF, linkOrSiteLocal = a[0] == 0xFE && a[1] & 0x80 == 0x80, uniqueLocal = a[0] & 0xFE == 0xFC
            let documentation = a.prefix(4) == [0x20, 0x01, 0x0d, 0xb8]
            return unspecifiedOrCompatible || multicast || linkOrSiteLocal || uniqueLocal || documentation ? .local : .routable
        }
    }

    /// This network (0/8), private (10/8, 172.16/12, 192.168/16), shared (100.64/10), link-local
    /// (169.254/16: cloud metadata), IETF and benchmarking (192.0.0/24, 198.18/15), multicast and
    /// reserved (224/3) are not the public internet.
    private static func scope(ipv4 v: [UInt8]) -> Scope {
        switch (v[0], v[1], v[2]) {
        case (127, _, _): return .loopback
        case (0, _, _), (10, _, _), (100, 64...127, _), (169, 254, _), (172, 16...31, _), (192, 168, _), (192, 0, 0), (192, 0, 2),
             (198, 18...19, _), (198, 51, 100), (203, 0, 113), (224...255, _, _): return .local
        default: return .routable
        }
    }

    /// The addresses of this machine's own interfaces (in the host's network namespace).
    static func interfaceAddresses() -> [SocketAddress] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var addresses: [SocketAddress] = []
        var next = list
        while let entry = next {
            if let raw = entry.pointee.ifa_addr, raw.pointee.sa_family == sa_family_t(AF_INET) || raw.pointee.sa_family == sa_family_t(AF_INET6) {
                let size = raw.pointee.sa_family == sa_family_t(AF_INET) ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size
                if let address = SocketAddress(bytes: ArraySlice(UnsafeRawBufferPointer(start: raw, count: size))) { addresses.append(address) }
            }
            next = entry.pointee.ifa_next
        }
        return addresses
    }

    /// The same host, whatever the port — and whichever form of an IPv4 address either one is.
    func sameHost(as other: SocketAddress) -> Bool {
        if let mine = embeddedIPv4, let theirs = other.embeddedIPv4 { return mine == theirs }
        guard family == other.family, Int32(family) == AF_INET6 else { return false }
        return withUnsafeBytes(of: storage) { a in withUnsafeBytes(of: other.storage) { b in a[8..<24].elementsEqual(b[8..<24]) } }
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
