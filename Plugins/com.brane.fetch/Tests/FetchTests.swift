import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class FetchTests: XCTestCase {
    var base: URL!
    var server: StaticHTTPServer!

    override func setUpWithError() throws {
        base = BundledPlugins.temporaryDirectory()
        try FileManager.default.createDirectory(at: base.appendingPathComponent("site"), withIntermediateDirectories: true)
        try Data("<h1>RMSSD</h1> root mean square of successive differences\n".utf8).write(to: base.appendingPathComponent("site/rmssd.html"))
        server = try StaticHTTPServer(root: base.appendingPathComponent("site").path)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: base) }

    /// The plugin, with its manifest declaring only the loopback test server.
    func plugin() throws -> (Manifest, SupervisedPlugin) {
        let directory = try BundledPlugins.copy("com.brane.fetch", into: base) { manifest in
            let start = manifest.range(of: "  connect:\n")!, end = manifest.range(of: "filesystem:")!
            return manifest.replacingCharacters(in: start.lowerBound..<end.lowerBound,
                                                with: "  connect:\n    - {host: 127.0.0.1, port: \(self.server.port)}\n")
        }
        let bundle = try PluginBundle.open(directory)
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: bundle), runner: try ResourceLocator.current.runner())
        addTeardownBlock { plugin.stop() }
        return (bundle.manifest, plugin)
    }

    func fetch(_ plugin: SupervisedPlugin, _ url: String) throws -> PluginInstance.CallOutcome {
        let call = JSONValue.object(["name": .string("fetch_url"), "arguments": .object(["url": .string(url)])])
        return try plugin.call(method: "tools/call", input: Array(call.serialized().utf8))
    }

    func testFetchesFromADeclaredHostInsideTheTier2Sandbox() throws {
        let (manifest, plugin) = try plugin()
        let request = try ToolRequest(manifest: manifest, tool: "fetch_url",
                                      arguments: .object(["url": .string("http://127.0.0.1:\(server.port)/rmssd.html"), "maxBytes": .number(10)]))
        guard case .result(let bytes) = try plugin.call(method: "tools/call", input: request.input) else { return XCTFail("fetch failed") }
        let page = try JSONValue(parsing: bytes)
        XCTAssertEqual(page["status"]?.numberValue, 200)
        XCTAssertEqual(page["body"]?.stringValue, "<h1>RMSSD<")
        XCTAssertEqual(page["truncated"], .bool(true))
        XCTAssertEqual(plugin.plan.profile.brane.tier, 2)
    }

    func testTheHostRefusesAnUndeclaredHostBeforeThePluginRuns() throws {
        let (manifest, plugin) = try plugin()
        for url in ["http://127.0.0.2:\(server.port)/rmssd.html", "http://127.0.0.1:\(server.port + 1)/", "https://example.com/",
                    "file:///etc/passwd", "http://user@127.0.0.1:\(server.port)/"] {
            XCTAssertThrowsError(try ToolRequest(manifest: manifest, tool: "fetch_url", arguments: .object(["url": .string(url)])), url) { error in
                guard case ToolRequest.Refusal.undeclaredHost(_, let path, _, let declared) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(path, "arguments.url")
                XCTAssertEqual(declared, ["127.0.0.1:\(server.port)"])
            }
        }
        XCTAssertNil(plugin.pid, "the plugin was never started")
    }

    /// Bypassing the host's schema check (as `brane plugin run` does): the plugin holds maxBytes to
    /// the schema's bounds itself, so a negative limit never reaches its write callback.
    func testTheBodyLimitIsCheckedByThePluginToo() throws {
        let (_, plugin) = try plugin()
        for limit: JSONValue in [-5, 0, 1_048_577] {
            let call = JSONValue.object(["name": "fetch_url", "arguments": .object(["url": .string("http://127.0.0.1:\(server.port)/rmssd.html"), "maxBytes": limit])])
            guard case .pluginError(let bytes) = try plugin.call(method: "tools/call", input: Array(call.serialized().utf8)) else { return XCTFail("maxBytes \(limit)") }
            XCTAssertEqual(try JSONValue(parsing: bytes)["message"]?.stringValue, "maxBytes: \(limit.serialized()) is outside 1–1048576")
        }
    }

    /// Bypassing the host's tool check: the plugin has no socket of its own, and the host's broker
    /// refuses to connect it to an undeclared port.
    func testTheBrokerRefusesAnUndeclaredPortEvenWhenTheToolCheckIsBypassed() throws {
        let other = try StaticHTTPServer(root: base.appendingPathComponent("site").path)
        let url = "http://127.0.0.1:\(other.port)/rmssd.html"
        let (_, plugin) = try plugin()
        guard case .pluginError(let bytes) = try fetch(plugin, url) else { return XCTFail("an undeclared port must be unreachable") }
        let message = try XCTUnwrap(try JSONValue(parsing: bytes)["message"]?.stringValue)
        XCTAssertEqual(message, "127.0.0.1:\(other.port): not declared under network.connect; it declares 127.0.0.1:\(server.port)")
        // The same server accepts connections from the host, so the refusal was the sandbox's.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = other.port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(connected, 0)
    }
}
