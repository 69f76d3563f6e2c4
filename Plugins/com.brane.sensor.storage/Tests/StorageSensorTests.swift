import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class StorageSensorTests: XCTestCase {
    static let id = "com.brane.sensor.storage"

    func testReportsTheRootMountAndDiskRates() throws {
        let metrics = try XCTUnwrap(try sandboxed(BundledPlugins.path(Self.id), for: self).sample()["metrics"])
        let rootUse = try XCTUnwrap(metrics["mount./.usedPercent"]?.numberValue)
        var fs = statvfs()
        XCTAssertEqual(statvfs("/", &fs), 0)
        let expected = Double(fs.f_blocks - fs.f_bfree) / Double(fs.f_blocks - fs.f_bfree + fs.f_bavail) * 100
        XCTAssertEqual(rootUse, expected, accuracy: 1)
        XCTAssertNotNil(metrics["mount./.inodesUsedPercent"]?.numberValue)
        guard case .object(let all) = metrics else { return XCTFail() }
        XCTAssertFalse(all.keys.contains { $0.hasPrefix("mount./proc") || $0.hasPrefix("mount./sys.") }, "pseudo filesystems are skipped")
    }

    /// statfs is allowed only to plugins that declare filesystem.usage: without it the call kills the sensor.
    func testWithoutDeclaringUsageStatfsIsASandboxViolation() throws {
        let base = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        let directory = try BundledPlugins.copy(Self.id, into: base) { $0.replacingOccurrences(of: "  usage: true\n", with: "") }
        XCTAssertThrowsError(try sandboxed(directory, for: self).sample()) { error in
            guard case SupervisedPlugin.CallError.died(let death) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(death.cause.forbiddenCall?.name, "statfs", "\(death)")
            XCTAssertEqual(death.termination, .signaled(signal: SIGKILL, coreDumped: false), "the host kills it, having seen the call")
        }
    }
}
