@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// The container scanner's parser against recorded Docker Engine API answers (GET /version and
/// GET /containers/json?all=1, API 1.43), through the real sandbox and the real asset catalog.
final class ContainersScannerTests: XCTestCase {
    static let recorded = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("recorded")

    func engine(_ containers: String) throws -> JSONValue {
        func load(_ name: String) throws -> JSONValue {
            try JSONValue(parsing: Array(try Data(contentsOf: Self.recorded.appendingPathComponent(name))))
        }
        return .object(["engine": .object(["socket": .string("/var/run/docker.sock"), "version": try load("version.json"),
                                           "containers": try load(containers)])])
    }

    func testParsesRecordedAnswersAndTracksChangesBetweenScans() throws {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        let plugin = try sandboxed(BundledPlugins.path("com.brane.scanner.containers"), for: self)

        let first = try Scanning.scan(plugin, into: store, dockerInput: { try! self.engine("containers-before.json") })
        XCTAssertEqual(first.assets, 3)
        let api = try XCTUnwrap(try store.assets(kind: "container").first { $0.name == "clinic-api" })
        XCTAssertEqual(api.properties["image"], "clinic/api:2.3.1")
        XCTAssertEqual(api.properties["ports"], "0.0.0.0:8443->8080/tcp, 9090/tcp")
        XCTAssertEqual(api.properties["engine"], "docker 24.0.7 at /var/run/docker.sock")
        XCTAssertEqual(api.properties["id"], "9c4e1f2a3b5d")

        let second = try Scanning.scan(plugin, into: store, dockerInput: { try! self.engine("containers-after.json") })
        let changes = Dictionary(grouping: second.changes, by: \.change)
        XCTAssertEqual(changes[.removed]?.map(\.assetID), [ObservationStore.assetID(kind: "container", key: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90")])
        let changedAPI = try XCTUnwrap(changes[.changed]?.first { $0.assetID == api.id })
        XCTAssertEqual(changedAPI.detail["state"], "running → restarting")
        XCTAssertEqual(changedAPI.detail["ports"], "0.0.0.0:8443->8080/tcp, 9090/tcp → ")
        XCTAssertEqual(try store.asset(api.id)?.firstSeen, api.firstSeen, "the id is stable and first-seen is kept")
        XCTAssertEqual(try store.assets(kind: "container").count, 2)
        XCTAssertEqual(try store.assets(kind: "container", includeRemoved: true).count, 3)
    }

    func testNoEngineIsAClearNoteNotAnError() throws {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        let summary = try Scanning.scan(try sandboxed(BundledPlugins.path("com.brane.scanner.containers"), for: self), into: store,
                                        dockerInput: { DockerEngine.scannerInput(sockets: [directory.appendingPathComponent("docker.sock").path]) })
        XCTAssertEqual(summary.assets, 0)
        XCTAssertEqual(summary.notes, ["no container engine found (looked for \(directory.appendingPathComponent("docker.sock").path))"])
    }

    /// A malformed entry from a hostile or broken engine is skipped with a note naming what is
    /// wrong with it; the good ones are still catalogued (it once failed the whole scan).
    func testAMalformedContainerIsSkippedAloneWithANote() throws {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        var input = try engine("containers-before.json")
        var engineObject = input["engine"]!.objectValue!
        var containers = engineObject["containers"]!.arrayValue!
        var bad = containers[0].objectValue!
        bad["Created"] = 9_007_199_254_740_993
        containers.insert(.object(bad), at: 0)
        containers.insert(.object(["Id": "f00d", "Ports": [["PrivatePort": 80.5, "Type": "tcp"]]]), at: 2)
        containers.append(.string("\u{1b}[2J"))
        engineObject["containers"] = .array(containers)
        input = .object(["engine": .object(engineObject)])
        let summary = try Scanning.scan(try sandboxed(BundledPlugins.path("com.brane.scanner.containers"), for: self), into: store, dockerInput: { input })
        XCTAssertEqual(summary.assets, 3)
        XCTAssertEqual(summary.notes, [
            "container 0 skipped: invalid input: Created: 9007199254740992 is beyond ±2^53, past which a JSON number does not carry an integer exactly",
            "container 2 skipped: invalid input: Ports[0].PrivatePort: 80.5 is not a whole number",
            "container 5 skipped: invalid input: expected an object, found a string",
        ])
    }

    /// A flood of bad entries is counted, not named one by one: the notes must not outgrow the frame.
    func testAFloodOfMalformedEntriesIsCountedNotListed() throws {
        let directory = BundledPlugins.temporaryDirectory()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let store = try ObservationStore(path: directory.appendingPathComponent("observations.sqlite").path)
        let input: JSONValue = ["engine": ["socket": "/var/run/docker.sock", "containers": .array(Array(repeating: .object([:]), count: 200_000))]]
        let summary = try Scanning.scan(try sandboxed(BundledPlugins.path("com.brane.scanner.containers"), for: self), into: store, dockerInput: { input })
        XCTAssertEqual(summary.assets, 0)
        XCTAssertEqual(summary.notes.count, 11)
        XCTAssertEqual(summary.notes.first, #"container 0 skipped: invalid input: missing "Id""#)
        XCTAssertEqual(summary.notes.last, "199990 more containers skipped as malformed")
    }
}
