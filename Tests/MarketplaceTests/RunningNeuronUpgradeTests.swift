import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Issue 14, point 8: `plugin upgrade` or `remove` of a plugin a running neuron uses warns, naming
/// the neuron and its process, and the neuron keeps serving the version it started with — even an
/// instance started again after a death, because that version's files stay until it stops.
final class RunningNeuronUpgradeTests: XCTestCase {
    private let id = MarketFixture.id

    /// `brane mcp serve` of a neuron using the installed units plugin, driven line by line.
    private final class Serve {
        let process = Process()
        private let input: FileHandle, output: FileHandle
        private var pending = Data()

        init(neuron: String, home: BraneHome) throws {
            let brane = BuildProducts.brane
            process.executableURL = brane
            process.arguments = ["mcp", "serve", "--neuron", neuron]
            process.environment = ["BRANE_HOME": home.root, "PATH": "/usr/bin:/bin"]
            let stdin = Pipe(), stdout = Pipe()
            (process.standardInput, process.standardOutput, process.standardError) = (stdin, stdout, FileHandle.nullDevice)
            (input, output) = (stdin.fileHandleForWriting, stdout.fileHandleForReading)
            try process.run()
            _ = request(#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
        }

        /// Sends one request and reads lines until its answer.
        func request(_ line: String) -> JSONValue? {
            try? input.write(contentsOf: Data((line + "\n").utf8))
            let id = (try? JSONValue(parsing: line))?["id"]
            while true {
                if let newline = pending.firstIndex(of: 0x0A) {
                    let answer = try? JSONValue(parsing: Array(pending[pending.startIndex..<newline]))
                    pending = Data(pending[(newline + 1)...])
                    if answer?["id"] == id { return answer }
                    continue
                }
                let more = output.availableData
                if more.isEmpty { return nil }
                pending += more
            }
        }

        /// True when the call was answered with a result that is not an error.
        func convert(_ n: Int) -> Bool {
            request(#"{"jsonrpc":"2.0","id":\#(n),"method":"tools/call","params":{"name":"convert_units","arguments":{"value":5,"from":"mg","to":"g"}}}"#)?["result"]?["isError"] == .bool(false)
        }

        func stop() -> Int32 {
            try? input.close()
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    func testAnUpgradeAndARemoveWarnAndTheRunningNeuronKeepsItsVersion() throws {
        let f = try MarketFixture.installed(self)
        let neuron = "\(f.root)/units-neuron.yaml"
        try """
            apiVersion: brane.dev/v1
            kind: Neuron
            id: units-neuron
            name: units-neuron
            privacyTier: 0
            model: {provider: ollama, model: m, endpoint: "http://127.0.0.1:11434"}
            tools:
              - plugin: com.brane.units

            """.write(toFile: neuron, atomically: true, encoding: .utf8)
        let old = try XCTUnwrap(try f.market.installedDirectory(id))
        let serve = try Serve(neuron: neuron, home: f.home)
        XCTAssertTrue(serve.convert(1))

        try f.publish(version: "0.2.0")
        let upgrade = try CLI.run(["plugin", "upgrade", id], home: f.home)
        XCTAssertEqual(upgrade.status, 0, upgrade.stderr)
        XCTAssertTrue(upgrade.stderr.contains("brane: warning: neuron units-neuron (pid \(serve.process.processIdentifier), `brane mcp serve`) "
            + "is running com.brane.units 0.1.0: it keeps serving that version, whose files stay until it stops; "
            + "it moves to the new version when it reloads (SIGHUP) or restarts"), upgrade.stderr)
        XCTAssertEqual(try f.installedVersion, "0.2.0")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(old)/manifest.yaml"), "the version it runs stays on disk")

        // Its instance dies: the one started in its place comes from the version the neuron started with.
        for pid in ProcessTable.children(of: serve.process.processIdentifier) { kill(pid, SIGKILL) }
        _ = serve.convert(2)   // the call that finds the instance dead
        XCTAssertTrue(serve.convert(3), "a new instance of 0.1.0 serves")

        let remove = try CLI.run(["plugin", "remove", id], home: f.home)
        XCTAssertEqual(remove.status, 0, remove.stderr)
        XCTAssertTrue(remove.stderr.contains("is running com.brane.units 0.1.0") && remove.stderr.contains("a reload keeps its running configuration"),
                      remove.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(old)/manifest.yaml"))
        XCTAssertTrue(serve.convert(4), "still serving after the remove")
        XCTAssertEqual(serve.stop(), 0)

        // Once it has stopped, the next change to any plugin removes what was kept, and nobody is warned.
        XCTAssertEqual(RunningNeurons.live(home: f.home), [])
        try f.publish("com.brane.sysinfo", version: "0.1.0")
        _ = try f.market.refreshIndex("test", allowExpired: false)
        XCTAssertEqual(try f.market.install("com.brane.sysinfo").warnings, [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: old), "kept files go with the next change of another plugin too")
        let reinstall = try f.market.install(id)
        XCTAssertEqual(reinstall.warnings, [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: old), "kept files go once no running neuron uses them")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(f.home.plugins)/\(id)"),
                       [URL(fileURLWithPath: reinstall.path).lastPathComponent])
    }

    /// A run/ planted as a link: its target's files are neither read as records nor removed as dead ones.
    func testARunDirectoryThatIsALinkIsNotFollowed() throws {
        let f = try MarketFixture(self)
        try f.home.prepare()
        let elsewhere = "\(f.root)/elsewhere"
        try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
        try #"{"pid":1,"neuron":"x","command":"neuron run","plugins":[]}"#.write(toFile: "\(elsewhere)/123.json", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(f.home.root)/run", withDestinationPath: elsewhere)
        XCTAssertEqual(RunningNeurons.live(home: f.home), [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(elsewhere)/123.json"), "not removed through the link")
    }
}
