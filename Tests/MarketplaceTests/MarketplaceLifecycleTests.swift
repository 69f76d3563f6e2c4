import BraneHost
import BraneTestSupport
import Foundation
import GRDB
import XCTest

final class MarketplaceLifecycleTests: XCTestCase {
    let id = MarketFixture.id

    func testPublishAddSearchInstallUpgradePinRemove() throws {
        let f = try MarketFixture(self)
        let first = try f.publish(version: "0.1.0")
        XCTAssertEqual(first.version, 1)
        XCTAssertEqual(try f.publish(version: "0.1.0").unchanged, ["com.brane.units 0.1.0"], "republishing the same bytes changes nothing")
        try f.addIndex()
        XCTAssertEqual(try f.market.search("DOSE conversion").map(\.id), [id])
        XCTAssertEqual(try f.market.search("convert_units").first?.tools, ["convert_units"])
        XCTAssertEqual(try f.market.search("no such thing"), [])

        XCTAssertEqual(try f.market.install(id).action, .installed)
        XCTAssertEqual(try f.market.install(id).action, .unchanged)
        XCTAssertEqual(try f.convertWithInstalled(), 0.005)

        try f.publish(version: "0.2.0")
        try f.publish(version: "1.0.0")
        try f.market.setPinned(id, true)
        XCTAssertEqual(f.refusal { try f.market.upgrade(self.id) }?.reason, .usage, "a pinned plugin is not upgraded")
        try f.market.setPinned(id, false)
        XCTAssertEqual(try f.market.install(id, requirement: try VersionRequirement("^0.1")).action, .unchanged)
        let upgraded = try f.market.install(id, requirement: try VersionRequirement("~0.2"))
        XCTAssertEqual([upgraded.action.rawValue, upgraded.version, upgraded.previousVersion], ["upgraded", "0.2.0", "0.1.0"])
        XCTAssertEqual(try f.market.upgrade(id).version, "1.0.0")
        XCTAssertEqual(try f.convertWithInstalled(), 0.005)
        try f.assertNoDebris()

        // The receipt outlives the index.
        try f.market.removeIndex("test")
        XCTAssertEqual(try f.installedVersion, "1.0.0")
        XCTAssertEqual(try f.convertWithInstalled(), 0.005, "an installed plugin runs without its index")

        try f.market.remove(id)
        XCTAssertNil(try f.installedVersion)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(f.home.plugins)/\(id)"))
        XCTAssertEqual(try f.market.auditEntries().map(\.action),
                       ["index-add", "install", "pin", "unpin", "upgrade", "upgrade", "index-remove", "remove"])
        XCTAssertNil(f.market.audit.firstBreak(in: try f.market.auditEntries()))
    }

    func testReleasesAreImmutable() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        let changed = try f.pluginCopy(version: "0.1.0")
        try "# a changed manifest\n".appendLine(to: "\(changed)/manifest.yaml")
        let error = f.refusal { _ = try Publisher(indexDirectory: f.indexDirectory, key: f.key).publish([changed]) }
        XCTAssertTrue(error?.message.contains("releases are immutable") ?? false, error?.message ?? "")
    }

    func testVerifyNamesEveryChangedMissingOrAddedFile() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        let path = try XCTUnwrap(try f.market.install(id).path)
        XCTAssertEqual(try f.market.verify(id), [])
        try "tampered".write(toFile: "\(path)/manifest.yaml", atomically: true, encoding: .utf8)
        try "extra".write(toFile: "\(path)/dropped.sh", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(path)/libBraneUnits.so")
        let problems = try f.market.verify()
        XCTAssertEqual(problems.map(\.file), ["libBraneUnits.so", "manifest.yaml", "dropped.sh"])
        XCTAssertEqual(problems.map { $0.problem.components(separatedBy: ":")[0] },
                       ["missing", "content changed", "not part of the install (added afterwards)"])
        // The next install repairs it.
        try f.market.remove(id)
        try f.market.install(id)
        XCTAssertEqual(try f.market.verify(), [])
    }

    func testTheAuditChainNamesAnEditedRemovedOrReorderedEntry() throws {
        func damaged(_ sql: String) throws -> String? {
            let f = try MarketFixture(self)
            try f.publish(version: "0.1.0")
            try f.addIndex()
            try f.market.install(id)
            try f.market.setPinned(id, true)
            try f.market.setPinned(id, false)
            XCTAssertNil(f.market.audit.firstBreak(in: try f.market.auditEntries()))
            try f.market.registry.write { try $0.execute(sql: sql) }
            return f.market.audit.firstBreak(in: try f.market.auditEntries())
        }
        XCTAssertTrue(try damaged("UPDATE audit SET detail = 'nothing to see' WHERE sequence = 2")?.hasPrefix("entry #2 (install") ?? false)
        XCTAssertTrue(try damaged("DELETE FROM audit WHERE sequence = 3")?.contains("entry #3 is missing") ?? false)
        // Swap entries 3 and 4 whole, MACs included.
        let swapped = try damaged("""
            UPDATE audit SET sequence = -1 WHERE sequence = 3; UPDATE audit SET sequence = 3 WHERE sequence = 4;
            UPDATE audit SET sequence = 4 WHERE sequence = -1
            """)
        XCTAssertTrue(swapped?.hasPrefix("entry #3 (unpin") ?? false, swapped ?? "not detected")
    }

    func testUpgradeAllGoesOnPastABrokenPluginAndSkipsPinnedOnes() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.publish("com.brane.sysinfo", version: "0.1.0")
        try f.addIndex()
        try f.market.install(id)
        try f.market.install("com.brane.sysinfo")
        try f.publish(version: "0.2.0")
        try f.publish("com.brane.sysinfo", version: "0.2.0")
        let archive = "\(f.indexDirectory)/archives/\(id)-0.2.0.tar"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        bytes[600] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: archive))

        let run = try CLI.run(["plugin", "upgrade", "--all", "--json"], home: f.home)
        XCTAssertEqual(run.status, 5, run.stderr)
        struct Result: Decodable, Equatable { var plugin: String, status: String }
        let results = try JSONDecoder().decode([Result].self, from: Data(run.stdout.utf8))
        XCTAssertEqual(results, [Result(plugin: "com.brane.sysinfo", status: "upgraded"), Result(plugin: id, status: "failed")])
        XCTAssertEqual(try f.installedVersion, "0.1.0")

        try f.market.setPinned(id, true)
        let pinned = try CLI.run(["plugin", "upgrade", "--all"], home: f.home)
        XCTAssertEqual(pinned.status, 0, pinned.stderr)
        XCTAssertTrue(pinned.stdout.contains("com.brane.units: skipped, pinned at 0.1.0"), pinned.stdout)
    }

    /// SIGKILL right after each step of an upgrade: the registry and tree stay consistent, the
    /// installed version keeps working, and the next install completes and clears the debris.
    func testAnInstallKilledAtAnyStepLeavesAConsistentHost() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(id)
        try f.publish(version: "0.2.0")
        for step in ["fetching", "verified", "unpacked", "validated", "activated", "recorded"] {
            let run = try CLI.run(["plugin", "install", id], home: f.home, environment: ["BRANE_FAULT_KILL_AFTER": step])
            XCTAssertEqual(run.signal, SIGKILL, "killed after \(step)")
            XCTAssertEqual(try f.market.verify(), [], "after a kill at \(step)")
            XCTAssertEqual(try f.installedVersion, step == "recorded" ? "0.2.0" : "0.1.0", step)
            XCTAssertEqual(try f.convertWithInstalled(), 0.005, "still runs after a kill at \(step)")
            XCTAssertEqual(try f.market.install(id).version, "0.2.0", "the next install completes (\(step))")
            try f.assertNoDebris()
            try f.market.install(id, requirement: try VersionRequirement("0.1.0"))
        }
    }

    func testHTTPIndexesGoThroughLibcurlWithTheSizeCap() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        let server = try StaticHTTPServer(root: f.indexDirectory)
        try f.market.addIndex(name: "web", location: "http://127.0.0.1:\(server.port)/", publicKeyPEM: f.key.publicKeyPEM)
        XCTAssertEqual(try f.market.install(id).action, .installed)
        XCTAssertEqual(try f.convertWithInstalled(), 0.005)

        try f.publish(version: "0.2.0")
        server.padding = 1 << 20   // a server that keeps sending past the declared size
        let error = f.refusal { try f.market.install(self.id) }
        XCTAssertEqual(error?.reason, .tooLarge, error?.message ?? "")
        XCTAssertEqual(try f.installedVersion, "0.1.0")
        server.padding = 0
        let missing = f.refusal { try f.market.addIndex(name: "gone", location: "http://127.0.0.1:\(server.port)/nowhere", publicKeyPEM: f.key.publicKeyPEM) }
        XCTAssertTrue(missing?.message.contains("HTTP 404") ?? false, missing?.message ?? "")
    }

    /// The CLI does not link libcurl, which with the 28 libraries it brings costs every command
    /// about 3 ms at exec: it loads it for the first transfer (Sources/CCurl). The loader's own log
    /// shows when.
    func testTheCLILoadsLibcurlOnlyForATransfer() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        let server = try StaticHTTPServer(root: f.indexDirectory)
        let keyFile = "\(f.root)/publisher.pem"
        try f.key.publicKeyPEM.write(toFile: keyFile, atomically: true, encoding: .utf8)
        func loadsLibcurl(_ run: CLI.Run) -> Bool { run.stderr.contains("file=libcurl.so.4") }

        let list = try CLI.run(["plugin", "list"], home: f.home, environment: ["LD_DEBUG": "files"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertFalse(loadsLibcurl(list))
        let add = try CLI.run(["index", "add", "web", "http://127.0.0.1:\(server.port)/", "--key", keyFile], home: f.home,
                              environment: ["LD_DEBUG": "files"])
        XCTAssertEqual(add.status, 0, add.stderr)
        XCTAssertTrue(loadsLibcurl(add), add.stderr)
        let install = try CLI.run(["plugin", "install", id], home: f.home)
        XCTAssertEqual(install.status, 0, install.stderr)
        XCTAssertEqual(try f.installedVersion, "0.1.0")
    }

    /// With libcurl unloadable (hidden by a mount in a namespace of the test's own), a transfer
    /// fails with the loader's reason as the host's problem, nothing is added, and commands that
    /// fetch nothing still work.
    func testWithoutLibcurlATransferFailsClearlyAndNothingElse() throws {
        try XCTSkipIf(geteuid() != 0, "hiding libcurl takes a mount namespace")
        let libcurl = try FileManager.default.contentsOfDirectory(atPath: "/usr/lib").filter { $0.hasSuffix("-linux-gnu") }
            .map { URL(fileURLWithPath: "/usr/lib/\($0)/libcurl.so.4").resolvingSymlinksInPath().path }
            .first { FileManager.default.fileExists(atPath: $0) }
        let hidden = try XCTUnwrap(libcurl, "libcurl.so.4 is not installed")
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        let server = try StaticHTTPServer(root: f.indexDirectory)
        let keyFile = "\(f.root)/publisher.pem"
        try f.key.publicKeyPEM.write(toFile: keyFile, atomically: true, encoding: .utf8)
        func withoutLibcurl(_ arguments: [String]) throws -> CLI.Run {
            try CLI.capture("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c", #"mount --bind /dev/null "$0" && exec "$@""#,
                                                 hidden, BuildProducts.brane.path] + arguments, environment: ["BRANE_HOME": f.home.root])
        }
        let add = try withoutLibcurl(["index", "add", "web", "http://127.0.0.1:\(server.port)/", "--key", keyFile])
        XCTAssertEqual(add.status, 4, add.stderr)
        XCTAssertTrue(add.stderr.contains("libcurl could not start: ") && add.stderr.contains("libcurl.so.4"), add.stderr)
        XCTAssertEqual(try f.market.registry.indexes().count, 0)
        let version = try withoutLibcurl(["--version"])
        XCTAssertEqual(version.status, 0, version.stderr)
    }

    func testIndexLocationsByPathAndFileURL() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        let record = try f.market.addIndex(name: "by-url", location: "file://\(f.indexDirectory)/index.yaml", publicKeyPEM: f.key.publicKeyPEM)
        XCTAssertEqual(record.location, f.indexDirectory)
        XCTAssertEqual(try f.market.install(id).action, .installed)
        XCTAssertEqual(try IndexLocation("index", relativeTo: f.root).base, f.indexDirectory)
        XCTAssertEqual(f.refusal { _ = try IndexLocation("ftp://example.org/index") }?.reason, .usage)
    }

    func testVersionRequirements() throws {
        func accepts(_ requirement: String, _ versions: [String]) throws -> [String] {
            let r = try VersionRequirement(requirement)
            return versions.filter { r.accepts(SemanticVersion($0)!) }
        }
        let all = ["0.1.0", "0.1.5", "0.2.0", "1.0.0", "1.2.3", "1.3.0", "2.0.0", "2.0.0-beta.1"]
        XCTAssertEqual(try accepts("^1.2", all), ["1.2.3", "1.3.0"])
        XCTAssertEqual(try accepts("^0.1", all), ["0.1.0", "0.1.5"])
        XCTAssertEqual(try accepts("~1.2.0", all), ["1.2.3"])
        XCTAssertEqual(try accepts(">=0.2 <2", all), ["0.2.0", "1.0.0", "1.2.3", "1.3.0"])
        XCTAssertEqual(try accepts("1", all), ["1.0.0", "1.2.3", "1.3.0"])
        XCTAssertEqual(try accepts("2.0.0-beta.1", all), ["2.0.0-beta.1"])
        XCTAssertThrowsError(try VersionRequirement("^one"))
    }

    func testTarRoundTripKeepsLongPathsAndLinks() throws {
        let long = String(repeating: "d/", count: 70) + "file.txt"
        let entries = [TarEntry(path: long, kind: .file, mode: 0o644, contents: Array("hi".utf8)),
                       TarEntry(path: "link", kind: .symlink(target: "d"), mode: 0o777)]
        XCTAssertEqual(try Tar.read(try Tar.write(entries)), entries)
        XCTAssertEqual(try Tar.write(entries), try Tar.write(entries), "deterministic")
        XCTAssertThrowsError(try Tar.read(Array(try Tar.write(entries).prefix(700))))
    }
}

private extension String {
    func appendLine(to path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(utf8))
        try handle.close()
    }
}
