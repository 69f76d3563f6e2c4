@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Every way a package can be bad, each refused with a clear message while the installed
/// version keeps working and nothing is left behind.
final class MarketplaceAttackTests: XCTestCase {
    let id = MarketFixture.id

    /// 0.1.0 installed and working; `attack` makes 0.2.0 (or the index) bad; installing 0.2.0 must be refused.
    private func assertRefused(_ reason: MarketplaceError.Reason, mentioning text: String, requirement: String = "0.2.0",
                               file: StaticString = #filePath, line: UInt = #line,
                               attack: (MarketFixture) throws -> Void) throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(id)
        try attack(f)
        let error = f.refusal { try f.market.install(self.id, requirement: try VersionRequirement(requirement)) }
        XCTAssertEqual(error?.reason, reason, "\(error?.message ?? "no error")", file: file, line: line)
        XCTAssertTrue(error?.message.contains(text) ?? false, "\(error?.message ?? "") should mention \(text)", file: file, line: line)
        XCTAssertEqual(try f.installedVersion, "0.1.0", file: file, line: line)
        XCTAssertEqual(try f.convertWithInstalled(), 0.005, "the previous version still runs", file: file, line: line)
        XCTAssertEqual(try f.market.verify(), [], file: file, line: line)
        try f.assertNoDebris(file: file, line: line)
        XCTAssertEqual(try f.market.auditEntries().last?.action, "refuse", "refusals are audited", file: file, line: line)
    }

    private func archive(_ f: MarketFixture, _ version: String) -> String { "\(f.indexDirectory)/archives/\(id)-\(version).tar" }

    func testATamperedArchiveByteIsRefused() throws {
        try assertRefused(.digestMismatch, mentioning: "SHA-256") { f in
            try f.publish(version: "0.2.0")
            var bytes = try Data(contentsOf: URL(fileURLWithPath: archive(f, "0.2.0")))
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: archive(f, "0.2.0")))
        }
    }

    func testAnArchiveLongerThanDeclaredIsCutOff() throws {
        try assertRefused(.tooLarge, mentioning: "larger than") { f in
            try f.publish(version: "0.2.0")
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: archive(f, "0.2.0")))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(repeating: 0, count: 4096))
            try handle.close()
        }
    }

    func testAnArchiveShorterThanDeclaredIsRefused() throws {
        try assertRefused(.sizeMismatch, mentioning: "the signed index says") { f in
            try f.publish(version: "0.2.0")
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: archive(f, "0.2.0")))
            try handle.truncate(atOffset: 1024)
            try handle.close()
        }
    }

    func testAnEditedIndexFailsItsSignature() throws {
        try assertRefused(.badSignature, mentioning: "signature does not verify") { f in
            try f.publish(version: "0.2.0")
            let edited = try f.indexText.replacingOccurrences(of: "tier: 0", with: "tier: 2")
            try edited.write(toFile: "\(f.indexDirectory)/index.yaml", atomically: true, encoding: .utf8)
        }
    }

    func testAnIndexSignedByAnUnpinnedKeyIsRefused() throws {
        try assertRefused(.badSignature, mentioning: "key") { f in
            try f.publish(version: "0.2.0")
            try f.sign(try MarketplaceIndex.parse(try f.indexText, file: "index.yaml"), with: try Ed25519Key.generate())
        }
    }

    func testAReplayedOlderIndexIsARollback() throws {
        try assertRefused(.rollback, mentioning: "version 1, but version 2 was seen") { f in
            let old = try ["index.yaml", "index.yaml.sig"].map { try Data(contentsOf: URL(fileURLWithPath: "\(f.indexDirectory)/\($0)")) }
            try f.publish(version: "0.2.0")
            try f.market.refreshIndex("test")
            for (name, data) in zip(["index.yaml", "index.yaml.sig"], old) {
                try data.write(to: URL(fileURLWithPath: "\(f.indexDirectory)/\(name)"))
            }
        }
    }

    func testAnExpiredIndexIsRefusedUnlessAllowed() throws {
        try assertRefused(.expired, mentioning: "--allow-expired") { f in
            try f.publish(version: "0.2.0", validDays: 1)
            let later = Date().addingTimeInterval(2 * 86_400)
            f.market.now = { later }
        }
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0", validDays: 1)
        try f.addIndex()
        let later = Date().addingTimeInterval(2 * 86_400)
        f.market.now = { later }
        XCTAssertEqual(try f.market.install(id, allowExpired: true).action, .installed, "--allow-expired accepts it knowingly")
    }

    func testPathTraversalInAnArchiveIsRefused() throws {
        try assertRefused(.unsafeArchive, mentioning: "\"..\"") { f in
            try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0")
                + [TarEntry(path: "data/../../escaped", kind: .file, mode: 0o644, contents: Array("x".utf8))])
        }
    }

    /// Deeper than `verify` walks, an install could never start again: refused at install instead.
    func testAnArchiveNestedPastTheWalkLimitIsRefused() throws {
        try assertRefused(.unsafeArchive, mentioning: "deeper than 64 levels") { f in
            try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0")
                + [TarEntry(path: String(repeating: "d/", count: 70) + "f", kind: .file, mode: 0o644, contents: Array("x".utf8))])
        }
    }

    func testAnAbsolutePathInAnArchiveIsRefused() throws {
        let target = "/tmp/brane-absolute-\(UUID().uuidString)"
        try assertRefused(.unsafeArchive, mentioning: "absolute path") { f in
            try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0")
                + [TarEntry(path: target, kind: .file, mode: 0o644, contents: Array("x".utf8))])
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: target))
    }

    func testALinkOutOfThePluginDirectoryIsRefused() throws {
        for target in ["../../../../etc", "/etc/shadow", "data/../../x"] {
            try assertRefused(.unsafeArchive, mentioning: "links must stay inside") { f in
                try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0")
                    + [TarEntry(path: "config", kind: .symlink(target: target), mode: 0o777)])
            }
        }
    }

    func testHardLinksAndDeviceFilesAreRefused() throws {
        try assertRefused(.unsafeArchive, mentioning: "hard link") { f in
            try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0")
                + [TarEntry(path: "shadow", kind: .hardLink(target: "/etc/shadow"), mode: 0o644)])
        }
        try assertRefused(.unsafeArchive, mentioning: "device file") { f in
            try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0")
                + [TarEntry(path: "sda", kind: .device, mode: 0o644)])
        }
    }

    func testAnotherABIMajorIsRefused() throws {
        // Declared in the signed index: refused before the archive is fetched.
        try assertRefused(.incompatible, mentioning: "newer major version") { f in
            try f.publishCrafted(version: "0.2.0", abi: "2.0",
                                 entries: try f.unitsEntries(version: "0.2.0") { $0.replacingOccurrences(of: "abi: \"1.0\"", with: "abi: \"2.0\"") })
        }
        // Hidden in the manifest only: refused when the manifest is validated.
        try assertRefused(.incompatible, mentioning: "newer major version") { f in
            try f.publishCrafted(version: "0.2.0",
                                 entries: try f.unitsEntries(version: "0.2.0") { $0.replacingOccurrences(of: "abi: \"1.0\"", with: "abi: \"2.0\"") })
        }
    }

    func testATierZeroManifestDeclaringNetworkIsRefused() throws {
        try assertRefused(.invalidManifest, mentioning: "may not declare network access") { f in
            try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0") {
                $0 + "network:\n  mode: loopback\n  connect:\n    - {host: 127.0.0.1, port: 8080}\n"
            })
        }
    }

    func testAManifestThatDisagreesWithTheSignedIndexIsRefused() throws {
        try assertRefused(.incompatible, mentioning: "the signed index says 0") { f in
            try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0") {
                $0.replacingOccurrences(of: "tier: 0", with: "tier: 1")
            })
        }
    }

    func testAYankedVersionIsNotInstalled() throws {
        try assertRefused(.yanked, mentioning: "yanked") { f in
            try f.publish(version: "0.2.0")
            _ = try Publisher(indexDirectory: f.indexDirectory, key: f.key).yank(id, version: "0.2.0")
        }
    }

    func testASecondConcurrentInstallOfTheSamePluginIsRefused() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(id)
        try f.publish(version: "0.2.0")
        var inProgress: PluginLock? = try PluginLock(home: f.home, plugin: id)   // what a first `brane plugin install` holds
        let error = f.refusal { try f.market.install(self.id) }
        XCTAssertEqual(error?.reason, .busy)
        XCTAssertTrue(error?.message.contains("another brane process is changing com.brane.units") ?? false)
        XCTAssertEqual(try f.installedVersion, "0.1.0")
        XCTAssertNotNil(inProgress)
        inProgress = nil
        XCTAssertEqual(try f.market.install(id).action, .upgraded, "once the first finishes, the second may go")
    }
}
