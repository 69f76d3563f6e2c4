import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class NetworkSensorTests: XCTestCase {
    /// The sensor observes the machine's namespace: it reports the interfaces the host sees.
    func testReportsTheMachinesInterfacesAndTCPStates() throws {
        let reading = try sandboxed(BundledPlugins.path("com.brane.sensor.network"), for: self).sample()
        let machine = Set(try String(contentsOfFile: "/proc/net/dev", encoding: .utf8).split(separator: "\n").dropFirst(2)
            .compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) })
        guard case .object(let detail)? = reading["detail"] else { return XCTFail("no detail") }
        XCTAssertEqual(Set(detail.keys.map { String($0.dropFirst("iface.".count)) }), machine)
        let metrics = try XCTUnwrap(reading["metrics"])
        XCTAssertNotNil(metrics["iface.lo.rxBytesPerSec"]?.numberValue)
        XCTAssertNotNil(metrics["iface.lo.rxErrors"]?.numberValue, "error totals are metrics, so the manifest's iface.*.rxErrors threshold applies")
        XCTAssertNil(metrics["iface.lo.rxErrorsPerSec"])
        XCTAssertNotNil(metrics["tcp.connections"]?.numberValue)
    }
}

final class NetworkObserverAttackTests: XCTestCase {
    /// `network.observe` keeps the host's namespace but not the right to use it: tier 0 still dies on socket().
    func testAnObservingTier0PluginStillCannotOpenASocket() throws {
        let base = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        let hostile = BundledPlugins.repository.appendingPathComponent("Tests/Fixtures/Hostile/manifest.yaml")
        let manifest = try String(contentsOf: hostile, encoding: .utf8) + "network:\n  mode: none\n  observe: true\n"
        try manifest.write(to: base.appendingPathComponent("manifest.yaml"), atomically: true, encoding: .utf8)
        let plugin = try sandboxed(base.path, for: self)
        XCTAssertFalse(plugin.plan.isolateNetwork)
        do {
            let outcome = try plugin.call(method: "attack/socket-inet", input: Array("{}".utf8))
            XCTFail("socket() must kill a tier-0 plugin, got \(outcome)")
        } catch {
            guard case .died(let death) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(death.cause.forbiddenCall?.description, "socket(AF_INET, SOCK_STREAM, 0)", "\(death)")
        }
    }
}
