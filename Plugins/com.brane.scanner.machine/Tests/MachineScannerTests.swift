import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class MachineScannerTests: XCTestCase {
    func testDescribesThisMachine() throws {
        let scan = try sandboxed(BundledPlugins.path("com.brane.scanner.machine"), for: self)
        guard case .result(let bytes) = try scan.call(method: "scanner/scan", input: Array("{}".utf8)) else { return XCTFail("scan failed") }
        let machine = try XCTUnwrap(try JSONValue(parsing: bytes)["assets"]?.arrayValue?.first?["properties"])
        var system = utsname()
        uname(&system)
        let release = withUnsafeBytes(of: system.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        XCTAssertEqual(machine["kernel"]?.stringValue, "Linux \(release)")
        XCTAssertEqual(machine["hostname"]?.stringValue, ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init))
        XCTAssertEqual(machine["cpuCores"]?.stringValue, String(ProcessInfo.processInfo.activeProcessorCount))
        XCTAssertNotEqual(machine["os"]?.stringValue, "unknown")
        let boot = try XCTUnwrap(Double(machine["bootTime"]?.stringValue ?? ""))
        XCTAssertLessThan(boot, Date().timeIntervalSince1970)
        XCTAssertNotNil(machine["virtualization"]?.stringValue)
    }
}
