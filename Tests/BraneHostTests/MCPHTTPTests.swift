import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Issue 16, point 4: `brane mcp serve --http`, MCP's Streamable HTTP transport, driven by the
/// official Python SDK's Streamable HTTP client (1.x and 2.x) and by raw HTTP for the refusals.
final class MCPStreamableHTTPTests: XCTestCase {
    private lazy var directory: URL = {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }()

    /// A `brane mcp serve --http` of the host-tools neuron `id`, with its URL and token.
    private func serve(_ id: String, extra: [String] = [], home: BraneHome) throws -> (server: RunningProcess, url: String, port: Int, token: String) {
        let neuron = directory.appendingPathComponent("\(id).yaml")
        try hostNeuronYAML(id: id).write(to: neuron, atomically: true, encoding: .utf8)
        let server = try RunningProcess.brane(["mcp", "serve", "--neuron", neuron.path, "--plugins", BundledPlugins.directory, "--http", "127.0.0.1:0"] + extra,
                                              home: home)
        addTeardownBlock { server.signal(SIGTERM); _ = server.exitStatus() }
        XCTAssertTrue(server.waitFor("/mcp ("), server.stderr)
        let url = try XCTUnwrap(server.stderr.range(of: #"http://127\.0\.0\.1:[0-9]+/mcp"#, options: .regularExpression).map { String(server.stderr[$0]) }, server.stderr)
        let port = Int(url.split(separator: ":")[2].split(separator: "/")[0])!
        let token = try CLI.run(["mcp", "token"], home: home).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(token.count, 64)
        return (server, url, port, token)
    }

    func testClientsOfBothSDKLinesCallReadSubscribeAndHearTheAlertsOverHTTP() throws {
        let dataset = BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl"
        for sdk in PythonTools.SDK.allCases {
            let home = BraneHome(root: directory.appendingPathComponent("home-\(sdk)").path)
            let id = "http-\(sdk == .v1 ? "one" : "two")"
            let (server, url, _, token) = try serve(id, home: home)
            let inbox = "\(home.root)/inbox/\(id)/biometrics.daily"
            try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: dataset, toPath: "\(inbox)/hrv.jsonl")
            let feed = JSONValue.array([BuildProducts.brane.path, "neuron", "run", directory.appendingPathComponent("\(id).yaml").path,
                                        "--duration", "4s", "--plugins", BundledPlugins.directory].map(JSONValue.string)).serialized()
            let run = try PythonTools.run("mcp_resources.py", ["2", feed, "--url", url], sdk: sdk,
                                          environment: ["BRANE_HOME": home.root, "BRANE_MCP_TOKEN": token])
            XCTAssertEqual(run.status, 0, "\(sdk): \(run.stderr.suffix(2000))\n\(server.stderr)")
            let report = try JSONValue(parsing: run.stdout)
            XCTAssertEqual(report["sdk"]?.stringValue?.first, sdk == .v1 ? "1" : "2")
            XCTAssertEqual(report["subscribe"], true)
            XCTAssertEqual(report["latestReading"]?["isError"], false, "a host tool answers over HTTP: \(report["latestReading"] ?? .null)")
            XCTAssertEqual(report["resources"]?.arrayValue?.count, 6)
            XCTAssertEqual(report["feed"]?["status"], 0, "\(report["feed"] ?? .null)")
            XCTAssertEqual(report["alertUpdates"], 2, "both HRV-drop alerts are told over the session's stream (\(sdk)): \(report)")
            XCTAssertEqual(report["after"]?["alerts"]?.arrayValue?.compactMap { $0["alert"]?["date"]?.stringValue }, ["2026-03-03", "2026-03-04"])
        }
    }

    /// `neuron run --mcp --http`: the running neuron feeds the dataset dropped into its inbox
    /// once the client has subscribed, and tells it, in the same process, over HTTP.
    func testARunningNeuronServesOverHTTPAndTellsWhatItStores() throws {
        let home = BraneHome(root: directory.appendingPathComponent("home-run").path)
        let neuron = directory.appendingPathComponent("http-run.yaml")
        try hostNeuronYAML(id: "http-run").write(to: neuron, atomically: true, encoding: .utf8)
        let run = try RunningProcess.brane(["neuron", "run", neuron.path, "--plugins", BundledPlugins.directory, "--mcp", "--http", "127.0.0.1:0",
                                            "--duration", "40s"], home: home)
        defer { run.signal(SIGTERM); _ = run.exitStatus() }
        XCTAssertTrue(run.waitFor("/mcp ("), run.stderr)
        let url = try XCTUnwrap(run.stderr.range(of: #"http://127\.0\.0\.1:[0-9]+/mcp"#, options: .regularExpression).map { String(run.stderr[$0]) })
        let token = try CLI.run(["mcp", "token"], home: home).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let inbox = "\(home.root)/inbox/http-run/biometrics.daily"
        let dataset = BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl"
        let drop = JSONValue.array(["/bin/sh", "-c", "cp \"$0\" \"$1/.hrv\" && mv \"$1/.hrv\" \"$1/hrv.jsonl\"", .string(dataset), .string(inbox)]).serialized()
        let session = try PythonTools.run("mcp_resources.py", ["2", drop, "--url", url], sdk: .v2,
                                          environment: ["BRANE_HOME": home.root, "BRANE_MCP_TOKEN": token])
        XCTAssertEqual(session.status, 0, session.stderr.suffix(2000) + run.stderr)
        let report = try JSONValue(parsing: session.stdout)
        XCTAssertEqual(report["alertUpdates"], 2, "\(report)")
        XCTAssertEqual(report["after"]?["total"], 2)
        run.signal(SIGTERM)
        XCTAssertEqual(run.exitStatus(), 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("every plugin process stopped"), run.stdout)
    }

    func testEveryRefusalIsTheRightStatusAndASlowClientHoldsUpNoOne() throws {
        let home = BraneHome(root: directory.appendingPathComponent("home").path)
        let (_, _, port, token) = try serve("http-refusals", home: home)
        let run = try CLI.capture("/usr/bin/env", ["python3", BundledPlugins.repository.appendingPathComponent("Tests/Scripts/http_refusals.py").path,
                                                   "127.0.0.1", "\(port)", token])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try JSONValue(parsing: run.stdout)
        for (key, status) in [("noToken", 401), ("wrongToken", 401), ("tokenPrefix", 401), ("basicScheme", 401), ("foreignOrigin", 403),
                              ("forgedHost", 403), ("otherPath", 404), ("put", 405), ("parseError", 400), ("batch", 400),
                              ("noSession", 400), ("unknownSession", 404)] {
            XCTAssertEqual(report[key]?["status"], .number(Double(status)), "\(key): \(report[key] ?? .null)")
            XCTAssertFalse(report[key]?["body"]?.stringValue?.contains(token) ?? true, "no refusal echoes the token")
        }
        XCTAssertEqual(report["noToken"]?["authenticate"], #"Bearer realm="brane""#)
        XCTAssertEqual(report["longID"]?["status"], 400, "an id is short: the SDK repeats it in every event it keeps")
        XCTAssertEqual(report["caseTwins"], ["http/1.1 401 unauthorized"], "two spellings of Authorization never pass, whichever comes first")
        XCTAssertEqual(report["unauthorizedBody"]?["line"], "http/1.1 401 unauthorized")
        XCTAssertLessThan(report["unauthorizedBody"]?["seconds"]?.numberValue ?? 99, 2, "refused at its head, its body never read")
        XCTAssertTrue(report["http10"]?["head"]?.stringValue?.contains("connection: close") ?? false, "\(report["http10"] ?? .null)")
        XCTAssertGreaterThan(report["heldConnections"]?["held"]?.numberValue ?? 0, 128, "more held than the server keeps")
        XCTAssertEqual(report["heldConnections"]?["status"], 200, "connections without the token give way to one with it: \(report["heldConnections"] ?? .null)")
        XCTAssertTrue(report["foreignOrigin"]?["body"]?.stringValue?.contains("--allow-origin") ?? false, "\(report["foreignOrigin"] ?? .null)")
        XCTAssertEqual(report["declaredTooLarge"], "HTTP/1.1 413 Payload Too Large", "refused before it is read")
        XCTAssertLessThanOrEqual(report["streamedTooLarge"]?["sentMiB"]?.numberValue ?? 99, 12, "a body past the bound is cut off: \(report["streamedTooLarge"] ?? .null)")
        XCTAssertEqual(report["initialize"]?["status"], 200)
        XCTAssertEqual(report["initialize"]?["hasSession"], true)
        XCTAssertEqual(report["listed"], 200)
        XCTAssertEqual(report["deleted"], 200)
        XCTAssertEqual(report["afterDelete"], 404, "DELETE ends the session")
        XCTAssertEqual(report["servedBesideSlow"]?["status"], 200)
        XCTAssertLessThan(report["servedBesideSlow"]?["seconds"]?.numberValue ?? 99, 2, "served while a slow client trickles")
        XCTAssertEqual(report["sessionCap"]?["status"], 503, "\(report["sessionCap"] ?? .null)")
        XCTAssertLessThanOrEqual(report["sessionCap"]?["openedNow"]?.numberValue ?? 99, 16)
        let slow = report["slowClient"]?["seconds"]?.numberValue ?? 0
        XCTAssertTrue((9...16).contains(slow), "the slow client is cut off after the deadline: \(report["slowClient"] ?? .null)")
    }

    func testWhereAServerMayListenIsAPrivacyRule() throws {
        let home = BraneHome(root: directory.appendingPathComponent("home").path)
        let neuron = directory.appendingPathComponent("tier0.yaml")
        try hostNeuronYAML(id: "tier0").write(to: neuron, atomically: true, encoding: .utf8)
        let serve = ["mcp", "serve", "--neuron", neuron.path, "--plugins", BundledPlugins.directory, "--http"]
        let remote = try CLI.run(serve + ["0.0.0.0:0", "--allow-remote"], home: home)
        XCTAssertEqual(remote.status, 5, remote.stderr)
        XCTAssertTrue(remote.stderr.contains("neuron tier0 is tier 0: 0.0.0.0:0 is not on this machine, and a neuron of tier 0 or 1 is served only on loopback or a unix socket"), remote.stderr)
        // "localhost" is not looked up (hosts files can point it anywhere): it is 127.0.0.1.
        let named = try RunningProcess.brane(serve + ["localhost:0"], home: home)
        XCTAssertTrue(named.waitFor("/mcp ("), named.stderr)
        XCTAssertTrue(named.stderr.contains("at http://127.0.0.1:"), named.stderr)
        named.signal(SIGTERM)
        _ = named.exitStatus()
        // A tier-2 neuron serves beyond this machine only what is tier 2: not a tier-0 sensor's readings.
        let mixed = directory.appendingPathComponent("mixed.yaml")
        try hostNeuronYAML(id: "mixed", tier: 2, tools: ["latest_reading"]).replacingOccurrences(of: "specialists:\n  - plugin: com.brane.neuroscientist\n", with: "")
            .write(to: mixed, atomically: true, encoding: .utf8)
        let mixedRemote = try CLI.run(["mcp", "serve", "--neuron", mixed.path, "--plugins", BundledPlugins.directory, "--http", "0.0.0.0:0", "--allow-remote"], home: home)
        XCTAssertEqual(mixedRemote.status, 5, mixedRemote.stderr)
        XCTAssertTrue(mixedRemote.stderr.contains("neuron mixed serves latest_reading (host tool latest_reading), whose data is tier 0: 0.0.0.0:0 is not on this machine"), mixedRemote.stderr)
        let bad = try CLI.run(serve + ["localhost:99999"], home: home)
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--http expects PORT, HOST:PORT"), bad.stderr)
        let stray = try CLI.run(["mcp", "serve", "--neuron", neuron.path, "--plugins", BundledPlugins.directory, "--allow-remote"], home: home)
        XCTAssertTrue(stray.stderr.contains("--allow-origin and --allow-remote go with --http"), stray.stderr)

        // A unix socket is this machine: a tier-0 neuron may be served there, to the token's holder.
        let socketDirectory = directory.appendingPathComponent("sock")
        try FileManager.default.createDirectory(at: socketDirectory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        // A file where the socket would go is refused and kept.
        let precious = socketDirectory.appendingPathComponent("notes.txt").path
        try "keep me".write(toFile: precious, atomically: true, encoding: .utf8)
        let onFile = try CLI.run(serve + ["unix:\(precious)"], home: home)
        XCTAssertEqual(onFile.status, 5, onFile.stderr)
        XCTAssertTrue(onFile.stderr.contains("exists and is not a socket"), onFile.stderr)
        XCTAssertEqual(try String(contentsOfFile: precious, encoding: .utf8), "keep me")
        let socket = socketDirectory.appendingPathComponent("mcp.sock").path
        let server = try RunningProcess.brane(serve + ["unix:\(socket)"], home: home)
        defer { server.signal(SIGTERM); _ = server.exitStatus() }
        XCTAssertTrue(server.waitFor("over the unix socket"), server.stderr)
        var info = stat()
        XCTAssertEqual(stat(socket, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600, "only this user may connect")
        let token = try CLI.run(["mcp", "token"], home: home).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let client = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
            body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"u","version":"1"}}}'
            s.send(b"POST /mcp HTTP/1.1\\r\\nHost: localhost\\r\\nAuthorization: Bearer " + sys.argv[2].encode() + b"\\r\\nContent-Type: application/json\\r\\n"
                   + b"Accept: application/json, text/event-stream\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
            print(s.recv(4096).decode().split("\\r\\n")[0])
            """
        let answered = try CLI.capture("/usr/bin/env", ["python3", "-c", client, socket, token])
        XCTAssertEqual(answered.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "HTTP/1.1 200 OK", answered.stderr)
        // A second server does not take a live server's socket.
        let second = try CLI.run(serve + ["unix:\(socket)"], home: home)
        XCTAssertEqual(second.status, 5, second.stderr)
        XCTAssertTrue(second.stderr.contains("a server is listening on \(socket) already"), second.stderr)
        XCTAssertEqual(try CLI.capture("/usr/bin/env", ["python3", "-c", client, socket, token]).stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       "HTTP/1.1 200 OK", "the first server still answers on it")
    }

    /// What the SDK's transport keeps for a session is bounded: large answers end the session (404
    /// from then on, as for an expired one), and the client starts another.
    func testASessionEndsPastItsByteBound() throws {
        let home = BraneHome(root: directory.appendingPathComponent("home-bound").path)
        let (_, _, port, token) = try serve("http-bound", home: home)
        let store = try ObservationStore(path: home.observations)
        try store.record(readings: (0..<4).map { index in
            StoredReading(sensor: "com.brane.sensor.memory", takenAt: Date().addingTimeInterval(-Double(index)),
                          reading: SensorReading(json: ["metrics": [:], "states": ["blob": .string(String(repeating: "x", count: 200_000))]]), changed: [])
        })
        let client = """
            import http.client, json, sys
            port, token = int(sys.argv[1]), sys.argv[2]
            headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
            def post(body, extra={}):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                c.request("POST", "/mcp", body=json.dumps(body), headers={**headers, **extra})
                r = c.getresponse(); data = r.read(); c.close(); return r
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "b", "version": "1"}}}
            session = {"Mcp-Session-Id": post(init).getheader("Mcp-Session-Id"), "MCP-Protocol-Version": "2025-11-25"}
            for n in range(1, 200):
                if post({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "latest_reading", "arguments": {}}}, session).status == 404:
                    break
            print(json.dumps({"calls": n, "again": post(init).status}))
            """
        let run = try CLI.capture("/usr/bin/env", ["python3", "-c", client, "\(port)", token])
        XCTAssertEqual(run.status, 0, run.stderr)
        let report = try JSONValue(parsing: run.stdout)
        XCTAssertLessThan(report["calls"]?.numberValue ?? 999, 100, "about 40 answers of 256 KiB pass 32 MiB kept three times: \(report)")
        XCTAssertEqual(report["again"], 200, "a new session starts")
    }

    /// A reload cannot change what a server beyond this machine serves into what it may not serve.
    func testAReloadThatWouldServeTierZeroDataBeyondThisMachineIsRefused() throws {
        let home = BraneHome(root: directory.appendingPathComponent("home-reload").path)
        let file = directory.appendingPathComponent("reloaded.yaml")
        try neuronYAML(id: "reloaded", tier: 2, more: "tools:\n  - plugin: com.brane.fetch\n").write(to: file, atomically: true, encoding: .utf8)
        let run = try RunningProcess.brane(["neuron", "run", file.path, "--plugins", BundledPlugins.directory, "--mcp", "--http", "0.0.0.0:0",
                                            "--allow-remote", "--duration", "30s"], home: home)
        defer { run.signal(SIGTERM); _ = run.exitStatus() }
        XCTAssertTrue(run.waitFor("/mcp ("), run.stderr + run.stdout)
        // Now with a tier-0 sensor and a host tool over its readings: valid, but not for 0.0.0.0.
        try hostNeuronYAML(id: "reloaded", tier: 2, tools: ["latest_reading"]).replacingOccurrences(of: "specialists:\n  - plugin: com.brane.neuroscientist\n", with: "")
            .write(to: file, atomically: true, encoding: .utf8)
        run.signal(SIGHUP)
        XCTAssertTrue(run.waitFor("reload refused"), run.stderr + run.stdout)
        XCTAssertTrue(run.stderr.contains("the new file could not be served where MCP is served now: neuron reloaded serves latest_reading"), run.stderr)
    }

    func testClientConfigurationsTakeTheURLAndTheToken() throws {
        let home = BraneHome(root: directory.appendingPathComponent("home").path)
        let neuron = directory.appendingPathComponent("configured.yaml")
        try hostNeuronYAML(id: "configured").write(to: neuron, atomically: true, encoding: .utf8)
        let config = ["mcp", "config", "--neuron", neuron.path, "--plugins", BundledPlugins.directory, "--http", "127.0.0.1:8765", "--client"]
        let vscode = try JSONValue(parsing: try CLI.run(config + ["vscode"], home: home).stdout)
        XCTAssertEqual(vscode["servers"]?["configured"]?["type"], "http")
        XCTAssertEqual(vscode["servers"]?["configured"]?["url"], "http://127.0.0.1:8765/mcp")
        XCTAssertEqual(vscode["servers"]?["configured"]?["headers"]?["Authorization"], "Bearer ${input:brane-token}", "the workspace file holds no secret")
        XCTAssertEqual(vscode["inputs"]?.arrayValue?.first?["password"], true)
        let cursor = try JSONValue(parsing: try CLI.run(config + ["cursor"], home: home).stdout)
        let token = try CLI.run(["mcp", "token"], home: home).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(cursor["mcpServers"]?["configured"]?["url"], "http://127.0.0.1:8765/mcp")
        XCTAssertEqual(cursor["mcpServers"]?["configured"]?["headers"]?["Authorization"], .string("Bearer \(token)"))
        let anywhere = try CLI.run(["mcp", "config", "--neuron", neuron.path, "--plugins", BundledPlugins.directory, "--http", "0.0.0.0:8765", "--client", "vscode"], home: home)
        XCTAssertTrue(anywhere.stderr.contains("0.0.0.0 is where a server listens, not an address to connect to"), anywhere.stderr)
        let lan = try CLI.run(["mcp", "config", "--neuron", neuron.path, "--plugins", BundledPlugins.directory, "--http", "192.0.2.7:8765", "--client", "vscode"], home: home)
        XCTAssertEqual(lan.status, 5, lan.stderr)
        XCTAssertTrue(lan.stderr.contains("neuron configured is tier 0: 192.0.2.7:8765 is not on this machine"), lan.stderr)
        let run = try CLI.run(config + ["vscode", "--run"], home: home)
        XCTAssertTrue(run.stderr.contains("--run has no effect with --http"), run.stderr)
        let claude = try CLI.run(config + ["claude-desktop"], home: home)
        XCTAssertEqual(claude.status, 2)
        XCTAssertTrue(claude.stderr.contains("custom connector"), claude.stderr)
        var info = stat()
        XCTAssertEqual(stat(MCPToken.path(home), &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        // A token others may read is refused, with the fix.
        chmod(MCPToken.path(home), 0o644)
        let shared = try CLI.run(["mcp", "token"], home: home)
        XCTAssertNotEqual(shared.status, 0)
        XCTAssertTrue(shared.stderr.contains("readable by its group or others"), shared.stderr)
    }
}
