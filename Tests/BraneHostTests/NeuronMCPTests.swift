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
        let plugins = try BundledPlugins.fixturePlugins("Hostile", id: "test.brane.hostile", in: directory)
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
        let brane = BuildProducts.brane.path
        let command = run ? ["neuron", "run", neuron.path, "--mcp"] : ["mcp", "serve", "--neuron", neuron.path]
        return [brane] + command + ["--plugins", plugins.path, "--plugins", BundledPlugins.directory]
    }

    /// The client's report, and what the server wrote to standard error. The session is run with
    /// the client of both major lines of the Python SDK, which must see the same answers.
    func session(_ steps: String, run: Bool = false) throws -> (report: JSONValue, serverLog: String) {
        var sessions: [(report: JSONValue, serverLog: String)] = []
        for sdk in PythonTools.SDK.allCases {
            let session = try PythonTools.run("mcp_session.py", [steps, "--"] + (try Self.serveCommand(run: run)), sdk: sdk,
                                              environment: ["BRANE_HOME": BundledPlugins.temporaryDirectory().path])
            XCTAssertEqual(session.status, 0, "\(sdk): \(session.stderr)")
            guard case .object(var report) = try JSONValue(parsing: session.stdout) else { throw XCTSkip("no report") }
            XCTAssertEqual(report["sdk"]?.stringValue?.first, sdk == .v1 ? "1" : "2", "the \(sdk) client ran")
            report["sdk"] = nil
            report["listSeconds"] = nil
            sessions.append((.object(report), session.stderr))
        }
        // Pids differ from run to run; everything else the two clients saw must be the same.
        let withoutPids = sessions.map { $0.report.serialized().replacingOccurrences(of: #"pid[^0-9]{0,4}[0-9]+"#, with: "pid", options: .regularExpression) }
        XCTAssertEqual(withoutPids.first, withoutPids.last, "the 1.x and 2.x clients saw the same")
        return sessions[0]
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
        lines += (0..<calls).map { #"{"jsonrpc":"2.0","id":\#($0 + 1),"method":"tools/call","params":{"name":"convert_units","arguments":{"value":\#($0 + 1),"from":"g","to":"mg"}}}"# }
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

    /// The SDK's answers too (initialize, tools/list, ping), and a last line without its newline.
    func testEveryRequestTheSDKAnswersIsAnsweredBeforeTheServerExits() throws {
        for _ in 0..<5 {
            let (process, input, output) = try start()
            var lines = [#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#,
                         #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, #"{"jsonrpc":"2.0","id":"list","method":"tools/list"}"#]
            lines += (1...50).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"ping"}"# }
            try input.write(contentsOf: Data((lines.joined(separator: "\n") + "\n" + #"{"jsonrpc":"2.0","id":"last","method":"ping"}"#).utf8))
            try input.close()
            let answers = String(decoding: output.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n").compactMap { try? JSONValue(parsing: Array($0.utf8))["id"] }
            process.waitUntilExit()
            XCTAssertEqual(Set(answers), Set([0, "list", "last"] + (1...50).map { JSONValue.number(Double($0)) }))
        }
    }

    /// A client gone with calls still waiting: they are cancelled, not worked off first.
    func testAClientGoneWithCallsWaitingEndsPromptly() throws {
        let (process, input, output) = try start()
        try input.write(contentsOf: requests(calls: 0))
        try input.write(contentsOf: Data((1...20).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"tools/call","params":{"name":"slow","arguments":{}}}"# + "\n" }.joined().utf8))
        usleep(200_000)
        try output.close()
        try input.write(contentsOf: Data((#"{"jsonrpc":"2.0","id":"p","method":"ping"}"# + "\n").utf8))   // its answer meets EPIPE
        let started = Date()
        try? input.close()
        process.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(started), 2.5, "20 calls of 300 ms on 2 instances would take 3 s")
        XCTAssertEqual(process.terminationReason, Process.TerminationReason.exit)
    }

    /// A client that closed the server's standard error does not kill it before it serves (SIGPIPE).
    func testAClosedStandardErrorDoesNotKillTheServer() throws {
        let command = try NeuronMCPTests.serveCommand()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.environment = ["BRANE_HOME": BundledPlugins.temporaryDirectory().path, "PATH": "/usr/bin:/bin"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        (process.standardInput, process.standardOutput, process.standardError) = (input, output, errors)
        try errors.fileHandleForReading.close()
        try process.run()
        try input.fileHandleForWriting.write(contentsOf: requests(calls: 3))
        try input.fileHandleForWriting.close()
        let answers = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
        process.waitUntilExit()
        XCTAssertEqual(answers.count, 4, "initialize and three calls")
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

/// Issue 14, point 3, with a raw JSON-RPC client on `brane mcp serve`: errors as the JSON-RPC
/// specification words them (carrying the request's id whenever it can be read), calls inside a
/// batch, `notifications/cancelled`, a queue per tool, and lines read in linear time.
final class MCPProtocolTests: XCTestCase {
    /// A server for a neuron with the units tool (pool 1) and the hostile fixture's noop, slow and
    /// hang tools (pool 2); lines are written by the test and answers collected as they come.
    final class Server: @unchecked Sendable {
        let process = Process()
        /// Its BRANE_HOME.
        let home: String
        private let input: FileHandle
        private let lock = NSLock()
        private var answers: [(JSONValue, Date)] = []
        private var raw: [String] = []
        private var splitter = LineSplitter(limit: 64 << 20)

        /// Serves that neuron, or the one `neuronYAML` describes.
        init(neuronYAML: String? = nil) throws {
            let directory = BundledPlugins.temporaryDirectory()
            let plugins = try BundledPlugins.fixturePlugins("Hostile", id: "test.brane.hostile", in: directory)
            let neuron = directory.appendingPathComponent("neuron.yaml")
            try (neuronYAML ?? tierZeroNeuronYAML(id: "rpc-test", more: """
                tools:
                  - plugin: com.brane.units
                  - plugin: test.brane.hostile
                    tools: [noop, slow, hang]
                    pool: 2
                """)).write(to: neuron, atomically: true, encoding: .utf8)
            let brane = BuildProducts.brane
            process.executableURL = brane
            process.arguments = ["mcp", "serve", "--neuron", neuron.path, "--plugins", plugins.path, "--plugins", BundledPlugins.directory]
            home = directory.appendingPathComponent("home").path
            process.environment = ["BRANE_HOME": home, "PATH": "/usr/bin:/bin"]
            let stdin = Pipe(), stdout = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = FileHandle.nullDevice
            input = stdin.fileHandleForWriting
            stdout.fileHandleForReading.readabilityHandler = { [unowned self] handle in
                let bytes = handle.availableData
                lock.withLock {
                    for line in splitter.feed(bytes) {
                        guard case .complete(let line) = line else { continue }
                        raw.append(String(decoding: line, as: UTF8.self))
                        if let answer = try? JSONValue(parsing: line) { answers.append((answer, Date())) }
                    }
                }
            }
            try process.run()
            send(#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#)
            send(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            XCTAssertNotNil(answer(to: "init"))
        }

        func send(_ line: String) { send(Data((line + "\n").utf8)) }
        func send(_ bytes: Data) { try? input.write(contentsOf: bytes) }

        func call(_ id: Int, _ tool: String, _ arguments: String = "{}") {
            send(#"{"jsonrpc":"2.0","id":\#(id),"method":"tools/call","params":{"name":"\#(tool)","arguments":\#(arguments)}}"#)
        }

        func cancel(_ id: Int) {
            send(#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":\#(id),"reason":"the user changed their mind"}}"#)
        }

        /// The answer whose id is `id` (a batch's array counts for each id in it), waiting up to `timeout`.
        func answer(to id: JSONValue, timeout: TimeInterval = 15) -> (JSONValue, Date)? {
            let end = Date().addingTimeInterval(timeout)
            repeat {
                if let found = lock.withLock({ answers.first { $0.0["id"] == id || ($0.0.arrayValue?.contains { $0["id"] == id } ?? false) } }) {
                    return found
                }
                usleep(5_000)
            } while Date() < end
            return nil
        }

        var lines: [String] { lock.withLock { raw } }

        func close() -> Int32 {
            try? input.close()
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    private func error(_ answer: JSONValue?) -> (code: Double?, message: String) {
        (answer?["error"]?["code"]?.numberValue, answer?["error"]?["message"]?.stringValue ?? "")
    }

    func testEveryBadMessageGetsTheSpecificationsErrorWithItsIdWhenReadable() throws {
        let server = try Server()
        let cases: [(line: String, id: JSONValue, code: Double, says: String)] = [
            ("this is not json", .null, -32700, "Parse error"),
            (#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"noop","arguments":{"x":NaN}}}"#, 7, -32700, "expected a value"),
            (#"{"jsonrpc":"2.0","id":"inf","method":"tools/call","params":{"name":"noop","arguments":{"x":Infinity}}}"#, "inf", -32700, "Parse error"),
            (#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"noop","arguments":{"x":1e400}}}"#, 8, -32700, "number out of range"),
            (#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"noop","arguments":{"x":"\ud800"}}}"#, 9, -32700, "unpaired surrogate"),
            (#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"noop","arguments":{"x":"\udc00 low"}}}"#, 10, -32700, "unpaired surrogate"),
            (#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"noop","arguments":"#
                + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}}", 11, -32700, "nested deeper than 256 levels"),
            (#"{"jsonrpc":"2.0","id":12,"method":"tools/list","method":"tools/call","params":{"name":"noop"}}"#, 12, -32700, "duplicate key"),
            ("[]", .null, -32600, "empty batch"),
            ("42", .null, -32600, "a message is a JSON object"),
            (#"{"jsonrpc":"1.0","id":13,"method":"ping"}"#, 13, -32600, "jsonrpc must be \"2.0\""),
            (#"{"id":14,"method":"ping"}"#, 14, -32600, "jsonrpc must be \"2.0\""),
            (#"{"jsonrpc":"2.0","id":{"nested":1},"method":"ping"}"#, .null, -32600, "id must be a string or an integer"),
            (#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, .null, -32600, "id must be a string or an integer"),
            (#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, .null, -32600, "id must be a string or an integer, found null"),
            (#"{"jsonrpc":"2.0","id":15,"method":7}"#, 15, -32600, "method must be a string"),
            (#"{"jsonrpc":"2.0","id":16,"method":"tools/call","params":"noop"}"#, 16, -32600, "params must be an object or an array"),
            (#"{"jsonrpc":"2.0","id":17}"#, 17, -32600, "needs a method"),
            (#"{"jsonrpc":"2.0","id":18,"method":"tools/call","params":{"arguments":{}}}"#, 18, -32602, "needs params.name"),
            (#"{"jsonrpc":"2.0","id":19,"method":"tools/call","params":{"name":"noop","arguments":[1]}}"#, 19, -32602, "params.arguments must be an object"),
            (#"{"jsonrpc":"2.0","id":23,"method":"ping","result":{}}"#, 23, -32600, "carries no result or error"),
            (#"{"jsonrpc":"2.0","id":24,"method":"resources/list\u202e"}"#, 24, -32601, "Method not found: resources/list\\u202E"),
            (#"{"jsonrpc":"2.0","id":25,"method":"tools/list","params":{"cursor":""# + String(repeating: "c", count: 70_000) + #""}}"#,
             25, -32600, "it may have at most 64 KiB"),
        ]
        for (line, id, code, says) in cases { server.send(line) }
        // A string that is not UTF-8 (bytes, not an escape).
        server.send(Data(#"{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"noop","arguments":{"x":""#.utf8) + Data([0xC3, 0x28])
                    + Data(#""}}}"#.utf8 + [0x0A]))
        // A response (this server sends no requests) and a blank CRLF line are never answered.
        server.send(#"{"jsonrpc":"2.0","id":26,"result":{}}"#)
        server.send(#"{"jsonrpc":"2.0","id":27,"error":"oops"}"#)
        server.send("\r")
        server.send(#"{"jsonrpc":"2.0","id":22,"method":"ping"}"#)
        XCTAssertNotNil(server.answer(to: 22), "still serving after every bad line")
        XCTAssertNil(server.answer(to: 26, timeout: 0))
        XCTAssertNil(server.answer(to: 27, timeout: 0))
        for (line, id, code, says) in cases where id != .null {
            let (got, message) = error(server.answer(to: id)?.0)
            XCTAssertEqual(got, code, "\(line.prefix(120)) → \(message)")
            XCTAssertTrue(message.contains(says), "\(line.prefix(120)) → \(message)")
        }
        XCTAssertEqual(error(server.answer(to: 21)?.0).code, -32700)
        XCTAssertTrue(error(server.answer(to: 21)?.0).message.contains("not UTF-8"), error(server.answer(to: 21)?.0).message)
        // The answers without an id, in order: each says what was wrong, none has a made-up id.
        let nullAnswers = server.lines.compactMap { try? JSONValue(parsing: $0) }.filter { $0["id"] == .null }
        let expected = cases.filter { $0.id == .null }
        XCTAssertEqual(nullAnswers.count, expected.count, "\(nullAnswers)")
        for (answer, (line, _, code, says)) in zip(nullAnswers, expected) {
            XCTAssertEqual(error(answer).code, code, "\(line.prefix(80)) → \(answer)")
            XCTAssertTrue(error(answer).message.contains(says), "\(line.prefix(80)) → \(answer)")
        }
        XCTAssertEqual(server.close(), 0)
    }

    func testToolCallsInsideABatchAreServed() throws {
        let server = try Server()
        server.send(#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"convert_units","arguments":{"value":2,"from":"kg","to":"g"}}},"#
                    + #"{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"noop","arguments":{}}},"#
                    + #"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"convert_units","arguments":{"value":"x"}}}]"#)
        let batch = try XCTUnwrap(server.answer(to: 1)?.0.arrayValue, "a batch is answered with an array")
        let byID = Dictionary(uniqueKeysWithValues: batch.map { ($0["id"]?.numberValue ?? 0, $0) })
        XCTAssertEqual(Set(byID.keys), [1, 2, 3, 4])
        XCTAssertEqual(byID[1]?["result"]?["structuredContent"]?["value"], .number(2000), "\(batch)")
        XCTAssertEqual(byID[3]?["result"]?["isError"], .bool(false), "\(batch)")
        XCTAssertEqual(byID[4]?["result"]?["isError"], .bool(true), "invalid arguments are the tool's error result: \(batch)")

        // JSON-RPC 2.0 §6: each item on its own — a bad one is an error entry beside the others'
        // answers, a response and a notification have none; ping and tools/list are answered here.
        server.send(#"[{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"noop","arguments":{}}},{"jsonrpc":"1.0","id":11,"method":"ping"},7,"#
                    + #"{"jsonrpc":"2.0","id":12,"result":{}},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":13,"method":"tools/list"},"#
                    + #"{"jsonrpc":"2.0","id":14,"method":"initialize","params":{}}]"#)
        let mixed = try XCTUnwrap(server.answer(to: 10)?.0.arrayValue)
        XCTAssertEqual(mixed.map { $0["id"] ?? "missing" }, [10, 11, .null, 13, 14], "\(mixed)")
        XCTAssertEqual(mixed.map { $0["error"]?["code"]?.numberValue }, [nil, -32600, -32600, nil, -32600], "\(mixed)")
        XCTAssertEqual(mixed[3]["result"]?["tools"]?.arrayValue?.count, 5, "the neuron's five tools")
        server.send("[" + Array(repeating: "1", count: 1001).joined(separator: ",") + "]")   // past the batch limit: one error, not 1,001
        server.send("[1,2,3]")
        server.send(#"{"jsonrpc":"2.0","id":15,"method":"ping"}"#)
        XCTAssertNotNil(server.answer(to: 15))
        XCTAssertTrue(server.lines.contains { line in (try? JSONValue(parsing: line))?.arrayValue?.map { $0["error"]?["code"] } == [-32600, -32600, -32600] },
                      "three items, three errors")
        XCTAssertTrue(server.lines.contains { $0.contains("a batch of 1001 messages; at most 1000") }, "\(server.lines.suffix(4))")
        XCTAssertFalse(server.lines.contains { ((try? JSONValue(parsing: $0))?.arrayValue?.count ?? 0) >= 1000 }, "no answer per item past the limit")

        // A call's arguments reach the tool as sent, in a batch as alone (the SDK rewrote data: URLs).
        server.send(#"[{"jsonrpc":"2.0","id":16,"method":"tools/call","params":{"name":"convert_units","arguments":{"value":1,"from":"data:,hello%20world","to":"g"}}}]"#)
        let echoed = try XCTUnwrap(server.answer(to: 16)?.0.arrayValue?.first?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue)
        XCTAssertTrue(echoed.contains(#""data:,hello%20world""#), echoed)

        // Its calls run at once, each in its plugin's queue, and one id is one call across batches.
        let started = Date()
        server.send(#"[{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"hang","arguments":{}}},"#
                    + #"{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"hang","arguments":{}}},"#
                    + #"{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"noop","arguments":{}}}]"#)
        server.send(#"{"jsonrpc":"2.0","id":22,"method":"ping"}"#)
        XCTAssertLessThan(try XCTUnwrap(server.answer(to: 22)).1.timeIntervalSince(started), 1, "nothing waits behind a batch")
        let parallel = try XCTUnwrap(server.answer(to: 21)?.0.arrayValue)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4.5, "two 2.5 s calls side by side, not one after the other")
        XCTAssertEqual(parallel.compactMap { $0["error"]?["message"]?.stringValue }.filter { $0.contains("already used by a call in progress") }.count, 1,
                       "\(parallel)")

        // A cancel inside a batch stops a call made alone; a batch of only that gets no answer.
        server.call(30, "hang")
        usleep(200_000)
        server.send(#"[{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":30}}]"#)
        server.send(#"{"jsonrpc":"2.0","id":31,"method":"ping"}"#)
        XCTAssertNotNil(server.answer(to: 31))
        XCTAssertNil(server.answer(to: 30, timeout: 3), "cancelled")
        XCTAssertEqual(server.close(), 0)
    }

    /// Ids are bytes, not Unicode-equivalent text; a cancelled waiting call frees its place and its id at once.
    func testIdsAreExactAndCancelledWaitingCallsFreeTheirPlace() throws {
        let server = try Server()
        server.send(#"{"jsonrpc":"2.0","id":"\u00c5","method":"tools/call","params":{"name":"hang","arguments":{}}}"#)
        server.send(#"{"jsonrpc":"2.0","id":"\u212b","method":"tools/call","params":{"name":"noop","arguments":{}}}"#)
        XCTAssertEqual(server.answer(to: "\u{212b}")?.0["result"]?["isError"], .bool(false), "Å (U+212B) is not Å (U+00C5)")
        server.send(#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"A\u030a"}}"#)
        XCTAssertNotNil(server.answer(to: "\u{00c5}", timeout: 5), "a cancel naming A + ring above stops nothing else")

        for id in 1...2 { server.call(id, "hang") }
        for id in 3...254 { server.call(id, "hang") }   // nearly the 256 a queue holds
        usleep(300_000)
        for id in 3...254 { server.cancel(id) }
        usleep(300_000)
        for id in 300..<500 { server.call(id, "noop") }   // room again at once: 200 more fit beside the two running
        server.call(9, "noop")   // a cancelled id, free again
        let reused = try XCTUnwrap(server.answer(to: 9, timeout: 10)).0
        XCTAssertEqual(reused["result"]?["isError"], .bool(false), "\(reused)")
        XCTAssertEqual(server.lines.filter { $0.contains("busy") }, [])
        XCTAssertNil(server.answer(to: 100, timeout: 0), "cancelled while waiting: never answered")
        XCTAssertEqual(server.close(), 0)
    }

    /// A cancelled call gets no answer; a running one is stopped (its instance killed and
    /// replaced), so the calls behind it go on at once; a waiting one is never made.
    func testACancelledCallIsStoppedAndNotAnswered() throws {
        let server = try Server()
        server.call(1, "hang")
        server.call(2, "hang")
        server.call(3, "hang")      // waits for one of the two instances
        server.call(4, "noop")      // behind it
        usleep(300_000)             // 1 and 2 are running
        let cancelled = Date()
        server.cancel(3)
        server.cancel(1)
        let noop = try XCTUnwrap(server.answer(to: 4, timeout: 10))
        XCTAssertEqual(noop.0["result"]?["isError"], .bool(false), "\(noop.0)")
        XCTAssertLessThan(noop.1.timeIntervalSince(cancelled), 2.0, "served by the instance that replaced the cancelled call's, not after the 2.5 s hang")
        XCTAssertNotNil(server.answer(to: 2, timeout: 10), "the call not cancelled is answered")
        usleep(500_000)
        XCTAssertNil(server.answer(to: 1, timeout: 0), "no answer for a cancelled call")
        XCTAssertNil(server.answer(to: 3, timeout: 0))
        // The instance that served the cancelled call is gone; a new one serves the next call.
        server.call(5, "noop")
        XCTAssertEqual(server.answer(to: 5)?.0["result"]?["isError"], .bool(false))
        XCTAssertEqual(server.close(), 0)
    }

    /// A plugin's queue holds 256 waiting calls; the next is answered "busy" at once, not queued.
    func testAFullQueueRefusesTheNextCallAtOnce() throws {
        let server = try Server()
        for id in 1...2 { server.call(id, "hang") }
        usleep(300_000)   // both instances busy
        for id in 3...258 { server.call(id, "hang") }
        let sent = Date()
        server.call(259, "noop")
        let refused = try XCTUnwrap(server.answer(to: 259, timeout: 2))
        XCTAssertLessThan(refused.1.timeIntervalSince(sent), 1, "refused at once, not after the 2.5 s hangs")
        XCTAssertEqual(refused.0["result"]?["isError"], .bool(true))
        XCTAssertTrue(refused.0["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue?
            .contains("test.brane.hostile is busy: 256 calls are waiting for it") == true, "\(refused.0)")
        for id in 3...258 { server.cancel(id) }
        XCTAssertEqual(server.close(), 0)
    }

    /// Two id reuses: a second call under the id of one in progress is refused, as is cancelling nothing.
    func testAnIdInUseIsRefusedAndAStrayCancelIsIgnored() throws {
        let server = try Server()
        server.call(1, "slow")
        server.call(1, "noop")
        server.cancel(99)
        let first = try XCTUnwrap(server.answer(to: 1))
        XCTAssertEqual(error(first.0).code, -32600, "the second use of id 1 is answered at once: \(first.0)")
        XCTAssertTrue(error(first.0).message.contains("already used by a call in progress"), "\(first.0)")
        usleep(600_000)
        let answers = server.lines.filter { $0.contains(#""id":1"#) }
        XCTAssertEqual(answers.count, 2, "the refusal and the slow call's answer: \(answers)")
        XCTAssertEqual(server.close(), 0)
    }

    /// 32 slow calls fill the hostile tool's queue (4.8 s of work for its two instances); a call
    /// to the units tool does not wait behind them.
    func testASaturatedToolDoesNotDelayAnother() throws {
        let server = try Server()
        for id in 1...32 { server.call(id, "slow") }
        let sent = Date()
        server.call(100, "convert_units", #"{"value":1,"from":"kg","to":"g"}"#)
        let units = try XCTUnwrap(server.answer(to: 100))
        XCTAssertEqual(units.0["result"]?["isError"], .bool(false))
        XCTAssertLessThan(units.1.timeIntervalSince(sent), 1.5, "answered while the slow tool's backlog lasts 4.8 s")
        XCTAssertNil(server.answer(to: 32, timeout: 0), "the backlog is still being worked off")
        XCTAssertEqual(server.close(), 0, "and end of input waits for all of it")
        XCTAssertEqual(Set(server.lines.compactMap { try? JSONValue(parsing: $0)["id"]?.numberValue }.filter { $0 >= 1 && $0 <= 32 }).count, 32)
    }

    /// An 8 MB line is read in linear time and refused (past the 4 MiB message limit) with its id;
    /// a ping behind it is answered at once; a 3 MB call within the limit is served.
    func testLongLinesAreReadInLinearTimeAndBounded() throws {
        let server = try Server()
        let started = Date()
        server.send(#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"noop","arguments":{"text":""#
                    + String(repeating: "x", count: 8_000_000) + #""}}}"#)
        server.send(#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#)
        let refused = try XCTUnwrap(server.answer(to: 1))
        XCTAssertEqual(error(refused.0).code, -32600)
        XCTAssertTrue(error(refused.0).message.contains("the message is 8000"), error(refused.0).message)
        XCTAssertNotNil(server.answer(to: 2))
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "an 8 MB line used to take 50 s")
        server.send(#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"noop","arguments":{"text":""#
                    + String(repeating: "y", count: 3_000_000) + #""}}}"#)
        XCTAssertEqual(server.answer(to: 3)?.0["result"]?["isError"], .bool(false))
        XCTAssertEqual(server.close(), 0)
    }
}

/// Issue 15, point 5: `brane mcp config` prints each client's snippet — VS Code's `servers` with
/// `"type": "stdio"`, Claude Desktop's and Cursor's `mcpServers` — and the command it names serves.
final class MCPClientConfigTests: XCTestCase {
    func testEachClientsSnippetStartsAServerThatAnswers() throws {
        let home = BraneHome(root: BundledPlugins.temporaryDirectory().path)
        let neuron = BundledPlugins.repository.appendingPathComponent("examples/neurons/sports-medicine.yaml").path
        for (client, key) in [("claude-desktop", "mcpServers"), ("vscode", "servers"), ("cursor", "mcpServers")] {
            let run = try CLI.run(["mcp", "config", "--client", client, "--neuron", neuron, "--plugins", BundledPlugins.directory], home: home)
            XCTAssertEqual(run.status, 0, run.stderr)
            let server = try XCTUnwrap(try JSONValue(parsing: run.stdout)[key]?["sports-medicine"], run.stdout)
            XCTAssertEqual(server["type"], client == "vscode" ? "stdio" : nil, client)
            XCTAssertEqual(server["env"]?["BRANE_HOME"]?.stringValue, home.root)
            let command = try XCTUnwrap(server["command"]?.stringValue)
            XCTAssertTrue(command.hasPrefix("/") && FileManager.default.isExecutableFile(atPath: command), command)
            let arguments = (server["args"]?.arrayValue ?? []).compactMap(\.stringValue)
            XCTAssertEqual(Array(arguments.prefix(4)), ["mcp", "serve", "--neuron", neuron])

            // What the client would start: it answers initialize and lists the neuron's tools.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: command)
            process.arguments = arguments
            process.environment = ["BRANE_HOME": home.root, "PATH": "/usr/bin:/bin"]
            let input = Pipe(), output = Pipe()
            (process.standardInput, process.standardOutput, process.standardError) = (input, output, FileHandle.nullDevice)
            try process.run()
            try input.fileHandleForWriting.write(contentsOf: Data("""
                {"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}
                {"jsonrpc":"2.0","id":1,"method":"tools/list"}

                """.utf8))
            try input.fileHandleForWriting.close()
            let answers = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
                .compactMap { try? JSONValue(parsing: Array($0.utf8)) }
            process.waitUntilExit()
            XCTAssertEqual(answers.first { $0["id"] == 1 }?["result"]?["tools"]?.arrayValue?.isEmpty, false, client)
        }
        let refused = try CLI.run(["mcp", "config", "--client", "vscode", "--neuron", "/nonexistent.yaml"], home: home)
        XCTAssertEqual(refused.status, 2, "a neuron that does not load is no snippet: \(refused.stderr)")
    }
}

/// Issue 15, point 1: `brane --version` names the release, the plugin ABI it speaks and the
/// checkout's git revision it was built from (recorded by the GitRevisionPlugin build tool).
final class VersionTests: XCTestCase {
    func testTheVersionNamesReleaseABIAndRevision() throws {
        let run = try CLI.run(["--version"], home: BraneHome(root: BundledPlugins.temporaryDirectory().path))
        XCTAssertEqual(run.status, 0, run.stderr)
        let git = try CLI.capture("/usr/bin/git", ["-C", BundledPlugins.repository.path, "rev-parse", "--short=12", "HEAD"])
        let revision = git.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(revision.count, 12, git.stderr)
        let line = run.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(line == "brane \(BraneRelease.version), plugin ABI \(ABIVersion.host), git \(revision)"
                      || line == "brane \(BraneRelease.version), plugin ABI \(ABIVersion.host), git \(revision)+changes", line)
    }
}

/// Issue 15, point 2 (the layout): `scripts/install` lays Brane out under a prefix, and the
/// installed `brane` finds its runner and profiles from its own prefix and runs a bundled plugin
/// sandboxed from there (a copied binary used to report "NO sandbox runner").
final class InstallLayoutTests: XCTestCase {
    /// The runner and the bundled C plugins are built by cc (CBuildPlugin): loading the Swift
    /// runtime and libstdc++ they never use had tripled the runner's exec and made a C plugin
    /// idle at 4.9 MiB instead of 1.5.
    func testTheRunnerAndTheCPluginsLinkNoSwiftRuntime() throws {
        let built = BuildProducts.directory.appendingPathComponent(ResourceLocator.builtByCC)
        for file in ["brane-sandbox", "libBraneSysinfo.so", "libBraneMedterms.so"] {
            let dynamic = try CLI.capture("/usr/bin/readelf", ["-d", built.appendingPathComponent(file).path])
            XCTAssertEqual(dynamic.status, 0, dynamic.stderr)
            let needed = dynamic.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            XCTAssertTrue(needed.contains { $0.contains("libc.so.6") }, "\(file): \(needed)")
            XCTAssertFalse(needed.contains { $0.contains("swift") || $0.contains("libstdc++") }, "\(file): \(needed)")
        }
        XCTAssertEqual(try ResourceLocator.current.runner(), built.appendingPathComponent("brane-sandbox").path)
    }

    func testTheInstalledBraneRunsABundledPluginSandboxedFromItsPrefix() throws {
        let prefix = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: prefix) }
        let build = BuildProducts.directory.path
        let install = try CLI.capture(BundledPlugins.repository.appendingPathComponent("scripts/install").path,
                                      ["--prefix", prefix.path, "--build-dir", build])
        XCTAssertEqual(install.status, 0, install.stderr)
        // A prefix the .pc file or the unit would misread is refused before anything is written.
        for bad in ["\(prefix.path)/with space", "\(prefix.path)/hash#x", "\(prefix.path)/pct%i", "\(prefix.path)/amp&x"] {
            let refused = try CLI.capture(BundledPlugins.repository.appendingPathComponent("scripts/install").path, ["--prefix", bad, "--build-dir", build])
            XCTAssertEqual(refused.status, 64, refused.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: bad), bad)
        }
        for part in ["bin/brane", "libexec/brane/brane-sandbox", "share/brane/security-profiles/tier-0.json", "include/brane/brane_plugin.h",
                     "lib/pkgconfig/brane-plugin.pc", "lib/brane/plugins/com.brane.sysinfo/manifest.yaml", "lib/brane/plugins/com.brane.medterms/data"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: prefix.appendingPathComponent(part).path), part)
        }
        let home = ["BRANE_HOME": prefix.appendingPathComponent("home").path]
        let brane = prefix.appendingPathComponent("bin/brane").path
        let plugin = prefix.appendingPathComponent("lib/brane/plugins/com.brane.sysinfo").path
        let inspect = try CLI.capture(brane, ["plugin", "inspect", plugin], environment: home)
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("profile \(prefix.path)/share/brane/security-profiles/tier-0.json"), inspect.stdout)
        let run = try CLI.capture(brane, ["plugin", "run", plugin, "sensor/sample", "--json"], environment: home)
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try JSONValue(parsing: run.stdout)["ok"], .bool(true), run.stdout)
        let cflags = try CLI.capture("/usr/bin/pkg-config", ["--cflags", "brane-plugin"],
                                     environment: ["PKG_CONFIG_PATH": prefix.appendingPathComponent("lib/pkgconfig").path])
        XCTAssertEqual(cflags.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "-I\(prefix.path)/include/brane", cflags.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: prefix.appendingPathComponent("share/brane/swift/BranePluginKit/Package.swift").path))

        // The service unit runs this prefix's brane, and systemd finds nothing wrong in it.
        let unit = prefix.appendingPathComponent("lib/systemd/system/brane-neuron@.service").path
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        XCTAssertTrue(text.contains("\nExecStart=\(brane) neuron run /etc/brane/neurons/%i.yaml\n"), text)
        XCTAssertTrue(text.contains("\nKillMode=mixed\n"), "SIGTERM must reach brane alone, which stops its plugins itself")
        let verify = try CLI.capture("/usr/bin/systemd-analyze", ["verify", unit])
        XCTAssertEqual(verify.status, 0, verify.stderr)
        XCTAssertEqual(verify.stdout + verify.stderr, "")
    }

    /// The .deb holds the /usr layout with its Depends computed from what it links; unpacked
    /// anywhere, its brane runs a bundled plugin sandboxed from its own tree.
    func testTheDebianPackageHoldsTheLayoutAndItsBraneRunsAPluginSandboxed() throws {
        let scratch = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.path)
        let build = BuildProducts.directory.path
        let made = try CLI.capture(BundledPlugins.repository.appendingPathComponent("scripts/package-deb").path,
                                   ["--build-dir", build, "--out", scratch.path])
        XCTAssertEqual(made.status, 0, made.stderr)
        let package = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(package.hasSuffix(".deb"), package)
        let info = try CLI.capture("/usr/bin/dpkg-deb", ["--field", package, "Package", "Depends"])
        XCTAssertTrue(info.stdout.contains("Package: brane"), info.stdout)
        for dependency in ["libc6", "libcap2", "libseccomp2", "libssl3", "libcurl4", "libsqlite3-0"] {
            XCTAssertTrue(info.stdout.contains(dependency), "Depends lacks \(dependency): \(info.stdout)")
        }
        let root = scratch.appendingPathComponent("root")
        XCTAssertEqual(try CLI.capture("/usr/bin/dpkg-deb", ["-x", package, root.path]).status, 0)
        for part in ["usr/bin/brane", "usr/libexec/brane/brane-sandbox", "usr/lib/systemd/system/brane-neuron@.service",
                     "usr/share/brane/swift/BranePluginKit/Package.swift", "usr/lib/brane/plugins/com.brane.readability/libbrane_readability.so"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent(part).path), part)
        }
        let unit = try String(contentsOfFile: root.appendingPathComponent("usr/lib/systemd/system/brane-neuron@.service").path, encoding: .utf8)
        XCTAssertTrue(unit.contains("\nExecStart=/usr/bin/brane neuron run"), unit)
        let run = try CLI.capture(root.appendingPathComponent("usr/bin/brane").path,
                                  ["plugin", "run", root.appendingPathComponent("usr/lib/brane/plugins/com.brane.sysinfo").path, "sensor/sample", "--json"],
                                  environment: ["BRANE_HOME": scratch.appendingPathComponent("home").path])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try JSONValue(parsing: run.stdout)["ok"], .bool(true), run.stdout)
    }
}
