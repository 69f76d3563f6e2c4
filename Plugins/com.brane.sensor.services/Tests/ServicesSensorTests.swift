import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class ServicesSensorTests: XCTestCase {
    func testChecksDeclaredEndpointsAndReportsStates() throws {
        let base = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        try FileManager.default.createDirectory(at: base.appendingPathComponent("site"), withIntermediateDirectories: true)
        try Data("ok".utf8).write(to: base.appendingPathComponent("site/health"))
        let server = try StaticHTTPServer(root: base.appendingPathComponent("site").path)
        let undeclared = try LoopbackListener()  // listening, but its port is not in the manifest
        let directory = try BundledPlugins.copy("com.brane.sensor.services", into: base) {
            $0.replacingOccurrences(of: "port: 8080}", with: "port: \(server.port)}")
        }
        let endpoints: [JSONValue] = [("api", "http://127.0.0.1:\(server.port)/health"), ("broken", "http://127.0.0.1:\(server.port)/missing"),
                                      ("elsewhere", "http://127.0.0.1:\(undeclared.port)/")]
            .map { .object(["name": .string($0.0), "url": .string($0.1)]) }
        let reading = try sandboxed(directory, config: .object(["endpoints": .array(endpoints)]), for: self).sample()
        XCTAssertEqual(reading["states"]?["service.api"]?.stringValue, "up")
        XCTAssertEqual(reading["metrics"]?["service.api.status"]?.numberValue, 200)
        XCTAssertNotNil(reading["metrics"]?["service.api.responseMs"]?.numberValue)
        XCTAssertEqual(reading["states"]?["service.broken"]?.stringValue, "degraded")
        XCTAssertEqual(reading["metrics"]?["service.broken.status"]?.numberValue, 404)
        XCTAssertEqual(reading["states"]?["service.elsewhere"]?.stringValue, "down")
        XCTAssertEqual(reading["states"]?["service.elsewhere.error"]?.stringValue,
                       "connect: 127.0.0.1:\(undeclared.port): not declared under network.connect; it declares 127.0.0.1:\(server.port)",
                       "the host connects for the plugin, only to declared ports")
    }
}
