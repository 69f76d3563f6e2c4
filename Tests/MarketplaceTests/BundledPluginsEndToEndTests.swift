import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Every bundled plugin goes through the real path a user takes: packed into a signed local
/// index, installed with `brane plugin install`, inspected, and run from its installed copy.
final class BundledPluginsEndToEndTests: XCTestCase {
    func testEveryBundledPluginInstallsFromTheIndexAndRunsInstalled() throws {
        let market = try MarketFixture(self)
        let directories = try FileManager.default.contentsOfDirectory(atPath: BundledPlugins.directory).sorted()
            .map { "\(BundledPlugins.directory)/\($0)" }.filter { FileManager.default.fileExists(atPath: "\($0)/manifest.yaml") }
        XCTAssertGreaterThanOrEqual(directories.count, 15)
        let report = try Publisher(indexDirectory: market.indexDirectory, key: market.key).publish(directories, name: "test")
        XCTAssertEqual(report.published.count, directories.count)
        try market.addIndex()

        for directory in directories {
            let manifest = try PluginBundle.open(directory).manifest
            let install = try CLI.run(["plugin", "install", manifest.id], home: market.home)
            XCTAssertEqual(install.status, 0, "\(manifest.id): \(install.stderr)")
            let inspect = try CLI.run(["plugin", "inspect", manifest.id, "--json"], home: market.home)
            XCTAssertEqual(inspect.status, 0, "\(manifest.id): \(inspect.stderr)")
            let sandbox = try JSONValue(parsing: Array(inspect.stdout.utf8))
            XCTAssertEqual(sandbox["plugin"]?["tier"]?.numberValue, Double(manifest.tier.rawValue), manifest.id)
        }

        // The installed copies run: data shipped in data/, consults resolved among installed plugins, sensors and scanners.
        let lookup = try CLI.run(["tool", "call", "com.brane.medterms", "lookup_medical_term", "--args", #"{"term":"hrv"}"#], home: market.home)
        XCTAssertEqual(lookup.status, 0, lookup.stderr)
        XCTAssertTrue(lookup.stdout.contains("Heart rate variability"))

        let days = try String(contentsOfFile: BundledPlugins.path("com.brane.neuroscientist") + "/Tests/hrv-90-days.jsonl", encoding: .utf8)
            .split(separator: "\n").prefix(61).joined(separator: ",")
        let request = "\(market.root)/readings.json"
        try "{\"readings\": [\(days)]}".write(toFile: request, atomically: true, encoding: .utf8)
        let advice = try CLI.run(["specialist", "consult", "com.brane.coach", "--input", request, "--json"], home: market.home)
        XCTAssertEqual(advice.status, 0, advice.stderr)
        XCTAssertEqual(try JSONValue(parsing: Array(advice.stdout.utf8))["result"]?["recommendation"]?.stringValue, "deload")

        let sensor = try CLI.run(["sensor", "read", "com.brane.sensor.memory", "--json"], home: market.home)
        XCTAssertEqual(sensor.status, 0, sensor.stderr)
        let scan = try CLI.run(["scan", "--json"], home: market.home)
        XCTAssertEqual(scan.status, 0, scan.stderr)
        XCTAssertEqual(try JSONValue(parsing: Array(scan.stdout.utf8)).arrayValue?.count, 4, "every installed scanner ran")
        let snapshot = try CLI.run(["sensor", "snapshot", "--out", "\(market.root)/snapshot.toml"], home: market.home)
        XCTAssertEqual(snapshot.status, 0, snapshot.stderr)
    }
}
