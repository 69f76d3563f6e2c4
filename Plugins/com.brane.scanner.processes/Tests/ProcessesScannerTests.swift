import BraneHost
import BraneTestSupport
import Foundation
import XCTest

final class ProcessesScannerTests: XCTestCase {
    func testListsProcessesWithParentAndUserAndRedactsSecrets() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/sh")
        // A shell blocked in `read` on a pipe: no grandchild, and SIGTERM ends it at once.
        child.arguments = ["-c", "read -r line", "brane-test", "--token", "hunter2", "--password=swordfish", "API_KEY=abc123",
                           "https://alice:s3cret@db.example/clinic", "--verbose"]
        let stdin = Pipe()
        child.standardInput = stdin
        try child.run()
        addTeardownBlock {  // reaped here, so no other test sees a stray child
            child.terminate()
            child.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.1)

        let scan = try sandboxed(BundledPlugins.path("com.brane.scanner.processes"), for: self)
        guard case .result(let bytes) = try scan.call(method: "scanner/scan", input: Array("{}".utf8)) else { return XCTFail("scan failed") }
        let assets = try XCTUnwrap(try JSONValue(parsing: bytes)["assets"]?.arrayValue)
        let shell = try XCTUnwrap(assets.first { $0["properties"]?["pid"]?.stringValue == String(child.processIdentifier) })
        XCTAssertEqual(shell["properties"]?["ppid"]?.stringValue, String(getpid()))
        XCTAssertEqual(shell["properties"]?["user"]?.stringValue, NSUserName())
        XCTAssertEqual(shell["properties"]?["command"]?.stringValue,
                       "/bin/sh -c read -r line brane-test --token [redacted] --password=[redacted] API_KEY=[redacted] https://alice:[redacted]@db.example/clinic --verbose")
        XCTAssertFalse(String(decoding: bytes, as: UTF8.self).contains("hunter2"))
        XCTAssertGreaterThan(assets.count, 3)
    }
}
