@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class PortsScannerTests: XCTestCase {
    /// A port this test listens on is found, and the host names this process as its owner.
    func testFindsAListeningPortAndItsProcess() throws {
        let listener = try LoopbackListener()
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        _ = try Scanning.scan(try sandboxed(BundledPlugins.path("com.brane.scanner.ports"), for: self), into: store)
        let port = try XCTUnwrap(try store.assets(kind: "port").first { $0.name == "tcp 127.0.0.1:\(listener.port)" })
        XCTAssertEqual(port.properties["process"], "\(ProcessInfo.processInfo.processName.prefix(15)) (pid \(getpid()))")
        XCTAssertNil(port.properties["inode"])
    }
}
