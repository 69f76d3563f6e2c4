import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// `brane mcp serve`, driven by the official MCP Python SDK client (Tests/Scripts/mcp_session.py).
final class NeuronMCPTests: XCTestCase {
    /// Serves a tier-0 neuron with the units tool (pool 1), the hostile fixture's tools (pool 2) and
    /// a sensor: with `brane mcp serve`, or with `brane neuron run --mcp` when `run` is set.
    static func serveCommand(run: Bool = false) throws -> [String] {
        let directory = BundledPlugins.temporaryDirectory()
        let plugins = directory.appendingPathComponent("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: plugins.appendingPathComponent("test.brane.hostile").path,
                                                   withDestinationPath: BundledPlugins.repository.appendingPathComponent("Tests/Fixtures/Hostile").path)
        let neuron = directory.appendingPathComponent("neuron.yaml")
        try tierZeroNeuronYAML(id: "mcp-test", more: """
            tools:
              - plugin: com.brane.units
              - plugin: test.brane.hostile
                tools: [crash, slow]
                pool: 2
            sensors:
              - {plugin: com.brane.sensor.memory, interval: 1s}
            """).write(to: neuron, atomically: true, encoding: .utf8)
        let brane = URL(fileURLWithPath: try ResourceLocator.current.runner()).deletingLastPathComponent().appendingPathComponent("brane").path
        let command = run ? ["neuron", "run", neuron.path, "--mcp"] : ["mcp", "serve", "--neuron", neuron.path]
        return [brane] + command + ["--plugins", plugins.path, "--plugins", BundledPlugins.directory]
    }

    /// The client's report, and what the server wrote to standard error.
    func session(_ steps: String, run: Bool = false) throws -> (report: JSONValue, serverLog: String) {
        let session = try PythonTools.run("mcp_session.py", [steps, "--"] + (try Self.serveCommand(run: run)),
                                          environment: ["BRANE_HOME": BundledPlugins.temporaryDirectory().path])
        XCTAssertEqual(session.status, 0, session.stderr)
        return (try JSONValue(parsing: session.stdout), session.stderr)
    }

    func testAClientListsValidatesCallsSurvivesACrashAndCallsAgain() throws {
        let report = try session("""
            [["convert_units", {"value": 98.6, "from": "degF", "to": "degC"}],
             ["convert_units", {"value": "warm", "from": "degF"}],
             ["crash", {}],
             ["convert_units", {"value": 70, "from": "kg", "to": "lb"}],
             ["noop", {}],
             ["consult_com_brane_neuroscientist", {"readings": []}]]
            """).report
        XCTAssertEqual(report["tools"]?.objectValue.map { Set($0.keys) },
                       ["convert_units", "crash", "slow", "consult_com_brane_neuroscientist"], "exactly the allowed tools")
        XCTAssertEqual(report["tools"]?["convert_units"]?["required"], .array([.string("value"), .string("from"), .string("to")]),
                       "the manifest's inputSchema")
        let calls = report["calls"]?.arrayValue ?? []
        XCTAssertEqual(calls.count, 6)
        XCTAssertEqual(calls[0]["isError"], .bool(false))
        XCTAssertEqual(try JSONValue(parsing: calls[0]["text"]?.stringValue ?? "")["value"], .number(37))
        XCTAssertEqual(calls[1]["isError"], .bool(true))
        XCTAssertEqual(calls[1]["text"]?.stringValue, """
            invalid arguments for convert_units:
              arguments: missing required property 'to'
              arguments.value: expected number, found string "warm"
            """)
        XCTAssertEqual(calls[2]["isError"], .bool(true))
        XCTAssertTrue(calls[2]["text"]?.stringValue?.contains("SIGSEGV") == true, "\(calls[2])")
        XCTAssertTrue(calls[2]["text"]?.stringValue?.contains("the neuron keeps serving") == true, "\(calls[2])")
        XCTAssertEqual(calls[3]["isError"], .bool(false), "served again after the crash")
        XCTAssertEqual(calls[4]["protocolError"]?.stringValue, "Invalid params: unknown tool 'noop'", "not in the neuron's allow-list")
        XCTAssertEqual(calls[5]["isError"], .bool(true), "the specialist answered its own error for an empty history")
        XCTAssertFalse(calls[5]["text"]?.stringValue?.isEmpty ?? true)
    }

    func testConcurrentCallsAreServedByTheToolsInstancePool() throws {
        let report = try session(#"[{"parallel": [["slow", {}], ["slow", {}]]}]"#).report
        let pids = try (report["calls"]?.arrayValue ?? []).map { call -> Double in
            XCTAssertEqual(call["isError"], .bool(false), "\(call)")
            return try JSONValue(parsing: call["text"]?.stringValue ?? "")["pid"]?.numberValue ?? 0
        }
        XCTAssertEqual(pids.count, 2)
        XCTAssertEqual(Set(pids).count, 2, "two calls in flight at once are answered by two sandboxed instances")
    }

    func testNeuronRunServesItsToolsWhileItsSensorsRunAndStopsWhenTheClientLeaves() throws {
        let (report, serverLog) = try session(#"[["convert_units", {"value": 1, "from": "kg", "to": "lb"}], {"sleep": 1.5}, ["crash", {}]]"#, run: true)
        let calls = report["calls"]?.arrayValue ?? []
        XCTAssertEqual(calls.map { $0["isError"] }, [false, true], "\(calls)")
        XCTAssertTrue(serverLog.contains("com.brane.sensor.memory: stored (first)"), "the sensor runs while tools are served: \(serverLog)")
        XCTAssertTrue(serverLog.contains("== neuron mcp-test at tier 0 (sensitive: no network): the MCP client disconnected"), serverLog)
        XCTAssertTrue(serverLog.contains("MCP: 2 tool calls, 1 answered with an error"), serverLog)
        XCTAssertTrue(serverLog.contains("plugin deaths (killed and reported; the host kept running):\n    plugin test.brane.hostile"), serverLog)
        XCTAssertTrue(serverLog.contains("every plugin process stopped"), serverLog)
    }
}

/// Issue 14, point 3 (first part), with a raw JSON-RPC client: every call read is answered, and a
/// client that stops reading ends the session cleanly instead of killing the host with SIGPIPE.
final class MCPEndOfSessionTests: XCTestCase {
    private func start() throws -> (Process, FileHandle, FileHandle) {
        let command = try NeuronMCPTests.serveCommand()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = ["BRANE_HOME": BundledPlugins.temporaryDirectory().path, "PATH": "/usr/bin:/bin"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, input.fileHandleForWriting, output.fileHandleForReading)
    }

    private func requests(calls: Int) -> Data {
        var lines = [#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
                     #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#]
        lines += (1...calls).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"tools/call","params":{"name":"convert_units","arguments":{"value":\#($0),"from":"g","to":"mg"}}}"# }
        return Data((lines.joined(separator: "\n") + "\n").utf8)
    }

    func testEveryPipelinedCallIsAnsweredBeforeTheServerExits() throws {
        let (process, input, output) = try start()
        try input.write(contentsOf: requests(calls: 100))
        try input.close()
        let answers = String(decoding: output.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n").compactMap { try? JSONValue(parsing: Array($0.utf8)) }
        process.waitUntilExit()
        let ids = Set(answers.compactMap { $0["id"]?.numberValue.map(Int.init) })
        XCTAssertEqual(ids, Set(0...100), "every call read is answered")
        XCTAssertEqual(process.terminationReason, Process.TerminationReason.exit)
    }

    func testAClientThatStopsReadingEndsTheSessionCleanly() throws {
        let (process, input, output) = try start()
        try output.close()   // the client is gone: every write now meets EPIPE
        try input.write(contentsOf: requests(calls: 20))
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { try input.close() }
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, Process.TerminationReason.exit, "not killed by SIGPIPE (status \(process.terminationStatus))")
    }
}
