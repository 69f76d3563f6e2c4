@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// No plugin creates a socket, at any tier; the host connects for it (ABI 1.2) to what its
/// manifest declares and hands over the stream. Every test attacks one side of that promise.
final class BrokeredConnectTests: XCTestCase {
    /// The hostile fixture at `tier`, declaring `connect` entries (YAML flow items).
    private func plugin(tier: Int, declaring entries: [String]) throws -> SupervisedPlugin {
        try Harness.hostile(self) {
            $0.replacingOccurrences(of: "  tier: 0", with: "  tier: \(tier)")
                + (tier == 0 ? "" : "network:\n  mode: \(tier == 1 ? "loopback" : "hosts")\n  connect: [\(entries.joined(separator: ", "))]\n")
        }
    }

    /// Every connection attempt reported while `body` runs.
    private func attempts(_ body: () throws -> Void) rethrows -> [ConnectionBroker.Attempt] {
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var attempts: [ConnectionBroker.Attempt] = []
        }
        let box = Box()
        SandboxEvents.install { event in
            if case .connection(let attempt, _, _) = event { box.lock.withLock { box.attempts.append(attempt) } }
        }
        defer { SandboxEvents.install { _ in } }
        try body()
        return box.lock.withLock { box.attempts }
    }

    private func broker(_ plugin: SupervisedPlugin, host: String, port: UInt16, then: String = "", otherPort: UInt16 = 0) throws -> JSONValue {
        try plugin.callJSON("attack/broker", input: #"{"host":"\#(host)","port":\#(port),"then":"\#(then)","otherPort":\#(otherPort)}"#)
    }

    /// A listening unix socket at `path`.
    private func unixListener(at path: String) throws -> Int32 {
        let server = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard bound == 0, listen(server, 4) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return server
    }

    /// What a peer accepted on `listener` received, within a second.
    private func received(on listener: Int32) -> String {
        var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 1000) == 1 else { return "" }
        let peer = accept(listener, nil, nil)
        defer { close(peer) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = recv(peer, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
    }

    func testEveryTierRunsInAnEmptyNetworkNamespace() throws {
        let host = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        for tier in [0, 1, 2] {
            let plugin = try plugin(tier: tier, declaring: ["{host: 127.0.0.1, port: 9}"])
            XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
            let namespace = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(try XCTUnwrap(plugin.pid))/ns/net")
            XCTAssertNotEqual(namespace, host, "tier \(tier)")
            XCTAssertTrue(plugin.plan.isolateNetwork, "tier \(tier)")
        }
    }

    /// The stream arrives connected, blocking and close-on-exec, and carries the plugin's bytes to the declared peer.
    func testADeclaredLoopbackPortGetsAConnectedStream() throws {
        let listener = try LoopbackListener()
        for tier in [1, 2] {
            let plugin = try plugin(tier: tier, declaring: ["{host: 127.0.0.1, port: \(listener.port)}"])
            let seen = try attempts {
                let answer = try broker(plugin, host: "127.0.0.1", port: listener.port, then: "send")
                XCTAssertEqual(answer["status"], .number(0), "tier \(tier): \(answer)")
                XCTAssertEqual(answer["rc"], .number(22))
                XCTAssertEqual(answer["nonblocking"], .bool(false))
                XCTAssertEqual(answer["cloexec"], .bool(true))
                XCTAssertEqual(received(on: listener.fd), "hello from the sandbox")
            }
            XCTAssertEqual(seen, [.init(destination: "127.0.0.1:\(listener.port)", addresses: ["127.0.0.1:\(listener.port)"], outcome: .connected)])
        }
    }

    /// A declared unix socket (tiers 1 and 2), connected by the host; the plugin never names a path itself.
    func testADeclaredUnixSocketGetsAConnectedStream() throws {
        let directory = Harness.temporaryDirectory(self)
        XCTAssertEqual(chmod(directory.path, 0o755), 0, "the instance's uid connects (a root host)")
        let path = directory.appendingPathComponent("app.sock").path
        let server = try unixListener(at: path)
        defer { close(server) }
        XCTAssertEqual(chmod(path, 0o666), 0)
        let plugin = try plugin(tier: 1, declaring: ["{unix: \(path)}"])
        let answer = try broker(plugin, host: path, port: 0, then: "send")
        XCTAssertEqual(answer["status"], .number(0), "\(answer)")
        XCTAssertEqual(received(on: server), "hello from the sandbox")
        let undeclared = try broker(plugin, host: path + "x", port: 0)
        XCTAssertEqual(undeclared["status"], .number(1))
        XCTAssertTrue(undeclared["message"]?.stringValue?.contains("is not declared under network.connect") ?? false, "\(undeclared)")
        let withPort = try broker(plugin, host: path, port: 80)
        XCTAssertEqual(withPort["status"], .number(1), "a unix socket is asked for with port 0")
    }

    /// A declared socket path swapped for a symlink to another socket: the host (root, perhaps) does not follow it.
    func testADeclaredUnixSocketIsNotReachedThroughASymlink() throws {
        let directory = Harness.temporaryDirectory(self)
        XCTAssertEqual(chmod(directory.path, 0o755), 0)
        let target = directory.appendingPathComponent("private.sock").path, declared = directory.appendingPathComponent("app.sock").path
        let server = try unixListener(at: target)
        defer { close(server) }
        XCTAssertEqual(chmod(target, 0o666), 0)
        try FileManager.default.createSymbolicLink(atPath: declared, withDestinationPath: target)
        let plugin = try plugin(tier: 1, declaring: ["{unix: \(declared)}"])
        let answer = try broker(plugin, host: declared, port: 0)
        XCTAssertEqual(answer["message"]?.stringValue, "\(declared): Too many levels of symbolic links", "\(answer)")
        XCTAssertEqual(received(on: server), "")
    }

    /// At its open-file limit the plugin cannot take the stream: a refusal it can read, not a broken protocol.
    func testAStreamBeyondTheOpenFileLimitIsAnErrorNotADeath() throws {
        let listener = try LoopbackListener()
        let plugin = try Harness.hostile(self) {
            $0.replacingOccurrences(of: "  tier: 0", with: "  tier: 1").replacingOccurrences(of: "  threads: 64", with: "  threads: 64\n  openFiles: 16")
                + "network:\n  mode: loopback\n  connect: [{host: 127.0.0.1, port: \(listener.port)}]\n"
        }
        let answer = try plugin.callJSON("attack/open-many-then-broker", input: #"{"host":"127.0.0.1","port":\#(listener.port)}"#)
        XCTAssertEqual(answer["message"], .string("the host connected, but the stream could not be received: the plugin has as many open files as its limit allows"))
        plugin.assertServesAgain()
    }

    /// Each refusal says why, the plugin keeps serving, nothing was resolved or connected, and it is reported.
    func testUndeclaredDestinationsAreRefusedWithTheirCause() throws {
        let declared = try LoopbackListener(), other = try LoopbackListener(), second = try LoopbackListener(address: "127.0.0.2")
        let plugin = try plugin(tier: 1, declaring: ["{host: 127.0.0.1, port: \(declared.port)}"])
        let cases: [(String, UInt16)] = [
            ("127.0.0.1", other.port),            // an undeclared port
            ("127.0.0.2", second.port),           // an undeclared address, listening
            ("127.0.0.2", declared.port),         // an undeclared address on the declared port
            ("localhost", declared.port),         // another name for the declared address: names are declared, not addresses
            ("8.8.8.8", 53), ("127.0.0.53", 53),  // DNS, to any resolver
            ("/run/dbus/system_bus_socket", 0),   // an undeclared unix socket
            ("::1", declared.port),
        ]
        let seen = try attempts {
            for (host, port) in cases {
                let answer = try broker(plugin, host: host, port: port)
                XCTAssertEqual(answer["status"], .number(1), "\(host):\(port) \(answer)")
                XCTAssertEqual(answer["fd"], .number(-1))
                let message = try XCTUnwrap(answer["message"]?.stringValue)
                XCTAssertTrue(message.contains("not declared under network.connect; it declares 127.0.0.1:\(declared.port)"), message)
            }
        }
        XCTAssertEqual(seen.count, cases.count)
        XCTAssertTrue(seen.allSatisfy { if case .refused = $0.outcome { $0.addresses.isEmpty } else { false } }, "\(seen)")
        for listener in [other, second] { XCTAssertEqual(received(on: listener.fd), "", "nothing reached an undeclared peer") }
        XCTAssertEqual(try plugin.callJSON("ping"), .object(["pong": .bool(true)]))
    }

    func testTierZeroMayNotConnectAnywhere() throws {
        let listener = try LoopbackListener()
        let plugin = try plugin(tier: 0, declaring: [])
        let answer = try broker(plugin, host: "127.0.0.1", port: listener.port)
        XCTAssertEqual(answer["message"], .string("127.0.0.1:\(listener.port): a tier-0 plugin handles sensitive data and may not connect anywhere"))
    }

    /// A stream, once handed over, cannot be pointed elsewhere, disconnected, bound, listened on or handed back.
    func testAReceivedStreamCannotBeReaddressedOrPassedBack() throws {
        let listener = try LoopbackListener(), other = try LoopbackListener()
        let stopped = [("reconnect", "connect(fd N, 127.0.0.1:\(other.port))"), ("disconnect", "connect"), ("bind", "bind(fd N, 127.0.0.1:\(other.port))"),
                       ("listen", "listen"), ("sendto-address", "sendto(fd N, flags MSG_NOSIGNAL, 127.0.0.1:\(other.port))"),
                       ("fastopen", "sendto(fd N, flags MSG_FASTOPEN, no address)"), ("pass-back", "sendmsg"),
                       // Options that would route, bind or hold the stream: an IPv6 routing header, IPv4 source
                       // routing, an interface, a lingering close. Only tuning options are allowed.
                       ("setsockopt-rthdr", "setsockopt"), ("setsockopt-ipoptions", "setsockopt"),
                       ("setsockopt-bindtodevice", "setsockopt"), ("setsockopt-linger", "setsockopt"),
                       // More no-op connects than the host answers in one call.
                       ("reconnect-loop", "connect")]
        for (then, call) in stopped {
            // A fresh instance for each: repeated deaths would open the plugin's circuit.
            let plugin = try plugin(tier: 2, declaring: ["{host: 127.0.0.1, port: \(listener.port)}"])
            let death = plugin.expectDeath("attack/broker", input: #"{"host":"127.0.0.1","port":\#(listener.port),"then":"\#(then)","otherPort":\#(other.port)}"#)
            let named = death?.cause.forbiddenCall?.description.replacing(/fd \d+/, with: "fd N")
            XCTAssertEqual(call.contains("(") ? named : death?.cause.forbiddenCall?.name, call, then)
            XCTAssertEqual(death?.termination, .signaled(signal: SIGKILL, coreDumped: false), then)
            plugin.assertServesAgain()
        }
        XCTAssertEqual(received(on: other.fd), "", "nothing reached the other port")
    }

    /// libcurl 7.88 connects a stream again to its own peer (curl#10626): the host answers that no-op, and the stream still works.
    func testAConnectToTheStreamsOwnPeerIsAnsweredNotRun() throws {
        let listener = try LoopbackListener()
        let plugin = try plugin(tier: 1, declaring: ["{host: 127.0.0.1, port: \(listener.port)}"])
        let answer = try broker(plugin, host: "127.0.0.1", port: listener.port, then: "reconnect-same")
        XCTAssertEqual(answer["rc"], .number(22), "\(answer)")
        XCTAssertEqual(received(on: listener.fd), "hello from the sandbox")
    }

    func testTuningOptionsAreAllowedOnAReceivedStream() throws {
        let listener = try LoopbackListener()
        let plugin = try plugin(tier: 2, declaring: ["{host: 127.0.0.1, port: \(listener.port)}"])
        XCTAssertEqual(try broker(plugin, host: "127.0.0.1", port: listener.port, then: "setsockopt-tuning")["rc"], .number(0))
    }

    /// A declared unix socket is matched byte for byte: a canonically equivalent spelling is another file.
    func testAUnicodeTwinOfADeclaredUnixSocketIsRefused() throws {
        let directory = Harness.temporaryDirectory(self).path
        let declared = directory + "/caf\u{E9}.sock", twin = directory + "/cafe\u{301}.sock"
        let server = try unixListener(at: twin)
        defer { close(server) }
        XCTAssertEqual(declared, twin, "Swift calls them equal")
        let plugin = try plugin(tier: 1, declaring: ["{unix: \"\(declared)\"}"])
        let answer = try plugin.callJSON("attack/broker", input: JSONValue.object(["host": .string(twin), "port": .number(0)]).serialized())
        XCTAssertEqual(answer["status"], .number(1), "\(answer)")
        XCTAssertEqual(received(on: server), "")
    }

    /// A root host connects a unix socket as the instance: the service sees the plugin's uid, not root.
    func testAUnixStreamCarriesTheInstancesCredentials() throws {
        try XCTSkipIf(geteuid() != 0, "an unprivileged host connects as itself, the plugin's own user")
        let directory = Harness.temporaryDirectory(self).path
        XCTAssertEqual(chmod(directory, 0o755), 0)
        let path = directory + "/svc.sock"
        let server = try unixListener(at: path)
        defer { close(server) }
        let plugin = try plugin(tier: 1, declaring: ["{unix: \(path)}"])
        // Root-only, the socket refuses the instance.
        XCTAssertEqual(chmod(path, 0o600), 0)
        XCTAssertTrue(try broker(plugin, host: path, port: 0)["message"]?.stringValue?.contains("Permission denied") ?? false)
        XCTAssertEqual(chmod(path, 0o666), 0)
        XCTAssertEqual(try broker(plugin, host: path, port: 0, then: "send")["status"], .number(0))
        let peer = accept(server, nil, nil)
        defer { close(peer) }
        var credentials: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)  // struct ucred
        var length = socklen_t(MemoryLayout.size(ofValue: credentials))
        XCTAssertEqual(getsockopt(peer, SOL_SOCKET, SO_PEERCRED, &credentials, &length), 0)
        XCTAssertEqual(credentials.uid, plugin.plan.identity(runnerPID: try XCTUnwrap(plugin.pid))?.uid)
        XCTAssertNotEqual(credentials.uid, 0)
    }

    /// Where a name may resolve for tier 2: the public internet only.
    func testAddressScopes() {
        for (address, scope) in [("8.8.8.8", SocketAddress.Scope.routable), ("2606:4700::1111", .routable), ("127.0.0.5", .loopback), ("::1", .loopback),
                                 ("10.1.2.3", .local), ("172.20.0.1", .local), ("192.168.1.1", .local), ("100.100.100.200", .local),
                                 ("169.254.169.254", .local), ("0.0.0.0", .local), ("224.0.0.1", .local), ("fd00:ec2::254", .local),
                                 ("fe80::1", .local), ("ff02::1", .local), ("64:ff9b::a00:1", .local), ("64:ff9b::808:808", .routable),
                                 ("2002:a00:1::", .local), ("::ffff:127.0.0.1", .loopback), ("::ffff:10.0.0.1", .local), ("::", .local)] {
            XCTAssertEqual(SocketAddress(numeric: address, port: 1)?.scope, scope, address)
        }
        XCTAssertTrue(SocketAddress.interfaceAddresses().contains { $0.sameHost(as: SocketAddress(numeric: "127.0.0.1", port: 9)!) })
        // This machine in every IPv6 form of its IPv4 address (an AAAA answer of ::ffff:<own address> reached it).
        let own = SocketAddress(numeric: "93.184.216.34", port: 1)!
        for form in ["::ffff:93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::1"] {
            XCTAssertTrue(SocketAddress(numeric: form, port: 2)!.sameHost(as: own), form)
            XCTAssertTrue(own.sameHost(as: SocketAddress(numeric: form, port: 2)!), form)
        }
        XCTAssertFalse(SocketAddress(numeric: "::ffff:93.184.216.35", port: 1)!.sameHost(as: own))
    }

    /// No tier may create a socket of any family: MPTCP, UDP, raw, packet, unix, a DNS query, TCP Fast Open.
    func testNoTierCreatesASocket() throws {
        let attacks = [("attack/socket-inet", "socket(AF_INET, SOCK_STREAM, 0)"), ("attack/socket-udp", "socket(AF_INET, SOCK_DGRAM, 0)"),
                       ("attack/socket-mptcp", "socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)"), ("attack/socket-raw", "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)"),
                       ("attack/socket-packet", "socket(AF_PACKET, SOCK_RAW, htons(0x0))"), ("attack/socket-unix", "socket(AF_UNIX, SOCK_STREAM, 0)"),
                       ("attack/dns", "socket(AF_INET, SOCK_DGRAM, 0)"), ("attack/fastopen-sendto", "sendto(fd -1, flags MSG_FASTOPEN, 127.0.0.1:80)")]
        for tier in [0, 1, 2] {
            for (method, call) in attacks {
                assertStopped(try plugin(tier: tier, declaring: ["{host: 127.0.0.1, port: 9}"]).expectDeath(method), call: call)
            }
            let plugin = try plugin(tier: tier, declaring: ["{host: 127.0.0.1, port: 9}"])
            if tier > 0 {
                // libcurl asks for a wake-up pair and does without one: refused, not fatal.
                XCTAssertEqual(try plugin.callJSON("attack/socketpair-unix")["rc"], .number(-1), "tier \(tier)")
            } else {
                assertStopped(plugin.expectDeath("attack/socketpair-unix"), call: "socketpair(AF_UNIX, SOCK_STREAM, 0)")
            }
        }
    }

    /// A connect loop gets 32 requests per call and no more; the audit sees 33 entries, not thousands.
    func testAConnectLoopIsCappedPerCall() throws {
        let listener = try LoopbackListener()
        let plugin = try plugin(tier: 1, declaring: ["{host: 127.0.0.1, port: \(listener.port)}"])
        let seen = try attempts {
            let answer = try plugin.callJSON("attack/broker-many", input: #"{"host":"127.0.0.1","port":9,"count":5000}"#)
            XCTAssertEqual(answer["connected"], .number(0))
            XCTAssertTrue(answer["message"]?.stringValue?.contains("a call may ask for at most 32 connections") ?? false, "\(answer)")
        }
        XCTAssertEqual(seen.count, ConnectionBroker.requestsPerCall + 1)
        XCTAssertEqual(try plugin.callJSON("attack/broker-many", input: #"{"host":"127.0.0.1","port":\#(listener.port),"count":2}"#)["connected"], .number(2),
                       "the next call has its own budget")
    }

    func testConnectIsOnlyForTheInvokingThread() throws {
        let plugin = try plugin(tier: 1, declaring: ["{host: 127.0.0.1, port: 9}"])
        let answer = try plugin.callJSON("attack/broker-from-thread")
        XCTAssertEqual(answer["thread"], .string("1 -1 connect is only allowed from within invoke, on its thread"))
    }

    /// A host name built to forge terminal lines is refused, and reaches the audit and the plugin escaped.
    func testControlCharactersInADestinationAreEscaped() throws {
        let plugin = try plugin(tier: 2, declaring: ["{host: example.com, port: 80}"])
        let seen = try attempts {
            let message = try XCTUnwrap(try plugin.callJSON("attack/broker-control-characters")["message"]?.stringValue)
            XCTAssertFalse(message.unicodeScalars.contains { $0.value < 0x20 }, message)
        }
        let destination = try XCTUnwrap(seen.first?.destination)
        XCTAssertEqual(destination, #"evil\u001B[2J\r\nbrane: all clear\u0007:80"#)
    }

    /// A tier-2 name that resolves to this machine is refused: DNS cannot point a declared host at local services.
    func testATierTwoNameResolvingToThisMachineIsRefused() throws {
        let listener = try LoopbackListener()
        var hostName = [CChar](repeating: 0, count: 256)
        gethostname(&hostName, hostName.count)
        let candidates = ["vm", "runsc", String(decoding: hostName.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), "ip6-localhost"]
        guard let name = candidates.first(where: { name in
            guard case .success(let addresses) = SocketAddress.resolve(name, port: listener.port, deadline: .now + .seconds(2)) else { return false }
            return !NetworkAccess.isLoopback(name) && addresses.allSatisfy { $0.scope == .loopback }
        }) else { throw XCTSkip("no name here resolves only to loopback") }
        let plugin = try plugin(tier: 2, declaring: ["{host: \(name), port: \(listener.port)}", "{host: localhost, port: \(listener.port)}"])
        let refused = try broker(plugin, host: name, port: listener.port)
        XCTAssertTrue(refused["message"]?.stringValue?.contains("none of them is a public address") ?? false, "\(refused)")
        XCTAssertEqual(received(on: listener.fd), "")
        // Declared as this machine, it is allowed (and only its loopback addresses are used).
        XCTAssertEqual(try broker(plugin, host: "localhost", port: listener.port)["status"], .number(0))
    }

    /// A port nobody listens on: allowed, tried, and the failure named — within the call, not hung.
    func testAnUnansweredDestinationFailsWithTheReason() throws {
        let closedPort: UInt16 = try { let probe = try LoopbackListener(); return probe.port }()
        let plugin = try plugin(tier: 1, declaring: ["{host: 127.0.0.1, port: \(closedPort)}"])
        let seen = try attempts {
            let answer = try broker(plugin, host: "127.0.0.1", port: closedPort)
            XCTAssertEqual(answer["message"]?.stringValue, "127.0.0.1:\(closedPort): Connection refused")
        }
        XCTAssertEqual(seen.first?.outcome, .failed("Connection refused"))
        XCTAssertEqual(seen.first?.addresses, ["127.0.0.1:\(closedPort)"])
    }
}

/// Through the real CLI: every attempt, allowed or refused, is an audit entry naming the plugin,
/// the destination, the address and the outcome, and the log still verifies.
final class EgressAuditTests: XCTestCase {
    func testEveryAttemptIsAudited() throws {
        let listener = try LoopbackListener(), other = try LoopbackListener()
        let directory = Harness.pluginDirectory(self, manifest: Harness.hostileManifest.replacingOccurrences(of: "  tier: 0", with: "  tier: 1")
            + "network:\n  mode: loopback\n  connect: [{host: 127.0.0.1, port: \(listener.port)}]\n")
        let home = BraneHome(root: Harness.temporaryDirectory(self).path)
        for port in [listener.port, other.port] {
            let run = try CLI.run(["plugin", "run", directory, "attack/broker", "--input", #"{"host":"127.0.0.1","port":\#(port),"then":"send"}"#], home: home)
            XCTAssertEqual(run.status, 0, run.stderr)
        }
        let entries = try Marketplace(home: home).auditEntries().filter { $0.action == "plugin-connect" }
        XCTAssertEqual(entries.map(\.pluginID), ["test.brane.hostile", "test.brane.hostile"])
        XCTAssertEqual(entries.map(\.detail), [
            "connected to 127.0.0.1:\(listener.port) (127.0.0.1:\(listener.port))",
            "refused 127.0.0.1:\(other.port): not declared under network.connect; it declares 127.0.0.1:\(listener.port)",
        ])
        let verify = try CLI.run(["audit", "verify"], home: home)
        XCTAssertEqual(verify.status, 0, verify.stderr + verify.stdout)
    }
}

/// The manifest side: what `network.connect` may declare.
final class EgressManifestTests: XCTestCase {
    private func diagnostics(_ network: String, tier: Int = 1) -> [String] {
        let yaml = Harness.hostileManifest.replacingOccurrences(of: "  tier: 0", with: "  tier: \(tier)") + network
        do {
            return try ManifestLoader.parse(yaml, file: "manifest.yaml").warnings.map(\.description)
        } catch let failure as ValidationFailure {
            return failure.errors.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    /// Tier 1 declares literal loopback addresses or `localhost`: a name that only looks like one would be
    /// looked up — each lookup a byte to whatever resolver the machine uses.
    func testALoopbackDeclarationIsALiteralAddressOrLocalhost() {
        XCTAssertEqual(diagnostics("network:\n  mode: loopback\n  connect: [{host: localhost, port: 1}, {host: 127.0.0.2, port: 1}, {host: \"::1\", port: 1}]\n"), [])
        for host in ["127.0.0.1.x00.exfil.test", "127.attacker.net", "localhost.evil", "0x7f.0.0.1"] {
            let found = diagnostics("network:\n  mode: loopback\n  connect: [{host: \(host), port: 1}]\n")
            XCTAssertTrue(found.contains { $0.contains("is not a loopback address") }, "\(host): \(found)")
        }
    }

    func testUnixSocketEntriesMustBePlainAbsolutePaths() {
        XCTAssertEqual(diagnostics("network:\n  mode: loopback\n  connect: [{unix: /run/app.sock}]\n"), [])
        for (path, problem) in [("run/app.sock", "must be an absolute path"), ("/run/../etc/app.sock", "must be plain"),
                                ("/run//app.sock", "must be plain"), ("/" + String(repeating: "a", count: 120), "at most 107 bytes")] {
            let found = diagnostics("network:\n  mode: loopback\n  connect: [{unix: \"\(path)\"}]\n")
            XCTAssertTrue(found.count == 1 && found[0].contains("network.connect[0].unix") && found[0].contains(problem), "\(path): \(found)")
        }
        XCTAssertTrue(diagnostics("network:\n  mode: none\n  connect: [{unix: /run/app.sock}]\n").contains { $0.contains("network.mode is none") })
        XCTAssertTrue(diagnostics("network:\n  mode: loopback\n  connect: [{unix: /run/a.sock, port: 1}]\n").contains { $0.contains("port") })
    }
}
