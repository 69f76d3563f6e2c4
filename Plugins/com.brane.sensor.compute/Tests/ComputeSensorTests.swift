import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class ComputeSensorTests: XCTestCase {
    static let id = "com.brane.sensor.compute"

    func testSamplesCPULoadAndTasks() throws {
        let reading = try sandboxed(BundledPlugins.path(Self.id), for: self).sample()
        let metrics = try XCTUnwrap(reading["metrics"])
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        XCTAssertEqual(metrics["cpu.cores"]?.numberValue, Double(cores))
        for key in ["cpu.percent"] + (0..<cores).map({ "cpu.\($0).percent" }) {
            let value = try XCTUnwrap(metrics[key]?.numberValue, key)
            XCTAssert((0...100).contains(value), "\(key) = \(value)")
        }
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(metrics["load.1m"]?.numberValue), 0)
        XCTAssertGreaterThan(try XCTUnwrap(metrics["tasks.total"]?.numberValue), 1)
    }

    /// Landlock confines a sensor to its declared paths: without /proc/loadavg in the manifest the
    /// same code is refused the file (EACCES), though it exists and is world-readable.
    func testASensorCannotReadOutsideItsDeclaredPaths() throws {
        let base = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        let directory = try BundledPlugins.copy(Self.id, into: base) {
            $0.replacingOccurrences(of: "read: [/proc/stat, /proc/loadavg]", with: "read: [/proc/stat]")
        }
        XCTAssertTrue(FileManager.default.isReadableFile(atPath: "/proc/loadavg"))
        XCTAssertThrowsError(try sandboxed(directory, for: self).sample()) { error in
            XCTAssertEqual("\(error)", "cannot read /proc/loadavg: Permission denied")
        }
    }
}
