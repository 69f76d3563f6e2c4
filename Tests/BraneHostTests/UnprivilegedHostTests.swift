import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// CI runs as root; Brane must hold as an ordinary user too. When the suite runs as root, these
/// re-run a representative subset of the hostile suite through the real CLI as a throw-away
/// unprivileged user (setpriv to nobody, no groups): the sandbox then comes from a user namespace.
final class UnprivilegedHostTests: XCTestCase {
    private func asNobody(_ arguments: [String]) throws -> CLI.Run {
        try XCTSkipIf(geteuid() != 0, "already unprivileged: the whole suite is this test")
        let setpriv = "/usr/bin/setpriv"
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: setpriv), "setpriv (util-linux) is not installed")
        let home = Harness.temporaryDirectory(self)
        XCTAssertEqual(chown(home.path, 65534, 65534), 0)
        let brane = BuildProducts.brane.path
        return try CLI.capture(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", brane] + arguments,
                               environment: ["BRANE_HOME": home.path])
    }

    private func run(_ method: String, input: String = "{}") throws -> CLI.Run {
        try asNobody(["plugin", "run", Harness.hostileDirectory, method, "--input", input])
    }

    func testTheSandboxHoldsForAnUnprivilegedHost() throws {
        let ping = try run("ping")
        XCTAssertEqual(ping.status, 0, ping.stderr)
        XCTAssertTrue(ping.stdout.contains("\"pong\": true"), ping.stdout)

        let socket = try run("attack/socket-inet")
        XCTAssertEqual(socket.status, 3, socket.stderr)
        XCTAssertTrue(socket.stderr.contains("socket(AF_INET, SOCK_STREAM, 0) is not allowed at tier 0"), socket.stderr)

        let execve = try run("attack/execve")
        XCTAssertTrue(execve.stderr.contains(#"execve("/bin/sh", …) is not allowed"#), execve.stderr)

        let passwd = try run("attack/open-read", input: #"{"path":"/etc/passwd"}"#)
        XCTAssertTrue(passwd.stdout.contains("\"errno\": 13"), "Landlock closes a world-readable file outside the allow-list: \(passwd.stdout)")
        XCTAssertTrue(try run("inspect/uname").stdout.contains("brane-sandbox"), "a UTS namespace through a user namespace")

        let selfSignal = try run("attack/raise-sigsys")
        XCTAssertTrue(selfSignal.stderr.contains("that the sandbox did not send"), selfSignal.stderr)

        // Tier 1 as an unprivileged host: still no socket of its own, and the host's brokered stream arrives.
        let listener = try LoopbackListener()
        let tierOne = Harness.pluginDirectory(self, manifest: Harness.hostileManifest.replacingOccurrences(of: "  tier: 0", with: "  tier: 1")
            + "network:\n  mode: loopback\n  connect: [{host: 127.0.0.1, port: \(listener.port)}]\n")
        XCTAssertEqual(chmod(URL(fileURLWithPath: tierOne).deletingLastPathComponent().path, 0o755) | chmod(tierOne, 0o755), 0)
        let brokered = try asNobody(["plugin", "run", tierOne, "attack/broker", "--input", #"{"host":"127.0.0.1","port":\#(listener.port),"then":"send"}"#])
        XCTAssertTrue(brokered.stdout.contains("\"rc\": 22"), brokered.stdout + brokered.stderr)
        let udp = try asNobody(["plugin", "run", tierOne, "attack/socket-udp"])
        XCTAssertTrue(udp.stderr.contains("socket(AF_INET, SOCK_DGRAM, 0) is not allowed at tier 1"), udp.stderr)

        let inspect = try asNobody(["plugin", "inspect", Harness.hostileDirectory])
        XCTAssertTrue(inspect.stdout.contains("identity: the host's user"), "threads bound the user, not the instance: \(inspect.stdout)")
    }
}
