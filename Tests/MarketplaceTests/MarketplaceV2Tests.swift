@testable import BraneHost
import BraneTestSupport
import Foundation
import GRDB
import XCTest

/// Marketplace v2, point 1: a name from the command line or an index is checked against the id
/// and version grammars before it is used for anything, so it never becomes a path that leaves
/// `$BRANE_HOME` or reaches another plugin's files.
final class UntrustedNameTests: XCTestCase {
    let id = MarketFixture.id

    /// 0.1.0 installed, a sentinel beside `$BRANE_HOME`: after `body`, everything is as it was.
    private func assertNothingTouched(_ f: MarketFixture, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) throws {
        let sentinel = "\(f.root)/outside/keep"
        try FileManager.default.createDirectory(atPath: sentinel, withIntermediateDirectories: true)
        let before = try FileManager.default.contentsOfDirectory(atPath: f.home.root).sorted()
        try body()
        XCTAssertTrue(FileManager.default.fileExists(atPath: sentinel), "a directory outside BRANE_HOME survives", file: file, line: line)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: f.home.root).sorted(), before, file: file, line: line)
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.home.registry) && FileManager.default.fileExists(atPath: f.home.auditKey), file: file, line: line)
        XCTAssertEqual(try f.installedVersion, "0.1.0", file: file, line: line)
        XCTAssertEqual(try f.convertWithInstalled(), 0.005, "the installed plugin still runs", file: file, line: line)
        XCTAssertEqual(try f.market.verify(), [], file: file, line: line)
        XCTAssertNil(f.market.audit.firstBreak(in: try f.market.auditEntries()), "the audit chain is intact", file: file, line: line)
        try f.assertNoDebris(file: file, line: line)
    }

    func testNamesThatAreNotIdsAreRefusedBeforeAnyFilesystemAction() throws {
        let f = try MarketFixture.installed(self)
        let names = ["..", "", ".", "/", "../../../outside", "com.brane.units/../..", "../com.brane.units", "-rf", "com..brane",
                     ".com.brane", "com.brane.", "COM.BRANE.UNITS", "com.brane.units\u{0}", "ｃom.brane.units", "com.brane.units@x",
                     "com brane", String(repeating: "a.", count: 80) + "a", "com.brane.units\n", "plugins", "locks"]
        try assertNothingTouched(f) {
            for name in names {
                let operations: [(String, () throws -> Void)] = [
                    ("install", { try f.market.install(name) }), ("upgrade", { try f.market.upgrade(name) }),
                    ("remove", { try f.market.remove(name) }), ("pin", { try f.market.setPinned(name, true) }),
                    ("unpin", { try f.market.setPinned(name, false) }),
                ]
                for (operation, run) in operations {
                    let error = f.refusal(run)
                    XCTAssertNotNil(error, "\(operation) \(name.debugDescription) must be refused")
                    XCTAssertTrue([.usage, .notFound].contains(error?.reason), "\(operation) \(name.debugDescription): \(error?.message ?? "")")
                    XCTAssertFalse(error?.message.contains("\n") ?? false, "one line: \(error?.message ?? "")")
                }
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.home.locks + "/...lock"), "no lock file was made for a non-id")
    }

    /// An id that is a prefix of another's: its clean-up never takes the other's staging or versions.
    func testAnIdThatIsAPrefixOfAnotherTouchesNothingOfIt() throws {
        let f = try MarketFixture.installed(self)
        let inProgress = "\(f.home.staging)/\(id)@0badc0de"
        try FileManager.default.createDirectory(atPath: inProgress, withIntermediateDirectories: true)
        for prefix in ["com.brane", "com.brane.unit", "com"] {
            _ = f.refusal { try f.market.install(prefix) }
            _ = f.refusal { try f.market.remove(prefix) }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: inProgress), "com.brane.units' staging survives")
        try FileManager.default.removeItem(atPath: inProgress)
        XCTAssertEqual(try f.convertWithInstalled(), 0.005)
    }

    /// A signed index whose version, id or both hold a path: refused as an invalid index; nothing installs anywhere.
    func testASignedVersionOrIdWithAPathIsRefused() throws {
        for (from, to) in [(#"version: "0.2.0""#, #"version: "0.2.0+x/../../../../pwned""#), (#"version: "0.2.0""#, #"version: "0.2.0-a/../b""#),
                           (#"id: "\#(MarketFixture.id)""#, #"id: "../../pwned""#)] {
            let f = try MarketFixture.installed(self)
            try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0"))
            let text = try f.indexText
            XCTAssertTrue(text.contains(from), text)
            try f.sign(text: text.replacingOccurrences(of: from, with: to))
            try assertNothingTouched(f) {
                let error = f.refusal { try f.market.install(self.id, requirement: try VersionRequirement("0.2.0")) }
                XCTAssertNotNil(error, to)
            }
            for leaked in ["\(f.root)/pwned", "\(f.home.root)/pwned", "\(f.home.plugins)/pwned", "/tmp/pwned"] {
                XCTAssertFalse(FileManager.default.fileExists(atPath: leaked), "\(to): \(leaked)")
            }
        }
    }

    /// A version string is strict semver: no `/`, no `..`, ASCII identifiers only.
    func testVersionsAreStrictSemver() {
        for text in ["1.0.0+x/y", "1.0.0-../a", "1.0.0+..", "1.0.0-a b", "1.0.0+ü", "1.0.0-", "1.0.0+", "01.0.0", "1.0.0/"] {
            XCTAssertNil(SemanticVersion(text), text)
        }
        for text in ["1.0.0", "1.0.0-rc.1", "1.0.0+build.5-x", "0.0.1-alpha-2"] { XCTAssertNotNil(SemanticVersion(text), text) }
    }
}

/// Marketplace v2, point 6: pin and unpin hold the plugin's lock and change the receipt in place.
final class PinUnderLockTests: XCTestCase {
    func testAPinWhileTheLockIsHeldIsRefusedAsBusy() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(MarketFixture.id)
        let lock = try PluginLock(home: f.home, plugin: MarketFixture.id)
        XCTAssertEqual(f.refusal { try f.market.setPinned(MarketFixture.id, true) }?.reason, .busy)
        withExtendedLifetime(lock) {}
    }

    /// A receipt changed under the lock (an upgrade) keeps its new path when a pin follows.
    func testAPinChangesOnlyThePinnedFlag() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(MarketFixture.id)
        try f.publish(version: "0.2.0")
        try f.market.upgrade(MarketFixture.id)
        let upgraded = try XCTUnwrap(try f.market.registry.receipt(MarketFixture.id))
        try f.market.setPinned(MarketFixture.id, true)
        let pinned = try XCTUnwrap(try f.market.registry.receipt(MarketFixture.id))
        XCTAssertTrue(pinned.pinned)
        XCTAssertEqual(pinned.path, upgraded.path)
        XCTAssertEqual(pinned.version, "0.2.0")
        XCTAssertEqual(try f.market.verify(), [])
    }
}

/// Marketplace v2, point 5: every read has a type check and a deadline.
final class BoundedReadTests: XCTestCase {
    /// A FIFO, a directory or a device where an index, signature or archive should be: refused at once, not waited on.
    func testNonRegularFilesAreRefusedWithoutBlocking() throws {
        for (what, make) in [("FIFO", { (path: String) in XCTAssertEqual(mkfifo(path, 0o600), 0) }),
                             ("directory", { (path: String) in try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false) }),
                             ("device", { (path: String) in try! FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/dev/zero") })] {
            // The archive.
            let f = try MarketFixture(self)
            try f.publish(version: "0.1.0")
            try f.addIndex()
            let archive = "\(f.indexDirectory)/archives/\(MarketFixture.id)-0.1.0.tar"
            try FileManager.default.removeItem(atPath: archive)
            make(archive)
            let started = ContinuousClock.now
            let error = f.refusal { try f.market.install(MarketFixture.id) }
            XCTAssertLessThan(ContinuousClock.now - started, .seconds(5), what)
            XCTAssertTrue(error?.message.contains("is not a regular file") ?? false, "\(what): \(error?.message ?? "")")
            XCTAssertNil(try f.installedVersion)
            try f.assertNoDebris()
            // The signature, on index add.
            let g = try MarketFixture(self)
            try g.publish(version: "0.1.0")
            let signature = "\(g.indexDirectory)/index.yaml.sig"
            try FileManager.default.removeItem(atPath: signature)
            make(signature)
            XCTAssertTrue(g.refusal { try g.addIndex() }?.message.contains("is not a regular file") ?? false, what)
        }
    }

    /// A mirror that trickles (4 bytes a second) is abandoned once it stays under the minimum rate.
    func testATricklingMirrorIsAbandoned() throws {
        let listener = try LoopbackListener()
        let fd = listener.fd
        Thread.detachNewThread {
            let peer = accept(fd, nil, nil)
            guard peer >= 0 else { return }
            defer { close(peer) }
            var request = [UInt8](repeating: 0, count: 4096)
            _ = recv(peer, &request, request.count, 0)
            _ = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".withCString { send(peer, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            for _ in 0..<60 {
                guard send(peer, "abcd", 4, Int32(MSG_NOSIGNAL)) == 4 else { return }
                sleep(1)
            }
        }
        var fetcher = Fetcher()
        fetcher.stallSeconds = 2
        let started = ContinuousClock.now
        XCTAssertThrowsError(try fetcher.fetch("http://127.0.0.1:\(listener.port)/index.yaml", remote: true, limit: 1 << 20)) { error in
            XCTAssertEqual((error as? MarketplaceError)?.reason, .fetchFailed, "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(10))
    }

    func testADeclaredArchiveSizeIsCapped() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.sign(text: try f.indexText.replacing(#/size: \d+/#, with: "size: \(MarketplaceIndex.archiveSizeLimit + 1)"))
        let error = f.refusal { try f.addIndex() }
        XCTAssertEqual(error?.reason, .invalidIndex, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("size") ?? false, error?.message ?? "")
    }
}

/// Marketplace v2, point 9: a bare id means an installed plugin, never a directory that happens to have its name.
final class BareIDTests: XCTestCase {
    func testABareIDNeverPicksUpADirectoryInTheWorkingDirectory() throws {
        let f = try MarketFixture(self)
        let work = "\(f.root)/work"
        // A look-alike of the units plugin, planted where the user happens to stand.
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: try f.pluginCopy(version: "0.1.0"), toPath: "\(work)/\(MarketFixture.id)")
        let bare = try CLI.run(["plugin", "run", MarketFixture.id, "ping"], home: f.home, in: work)
        XCTAssertEqual(bare.status, 2, bare.stdout)
        XCTAssertTrue(bare.stderr.contains("is not an installed plugin") && bare.stderr.contains("./\(MarketFixture.id)"), bare.stderr)
        let path = try CLI.run(["plugin", "run", "./\(MarketFixture.id)", "ping"], home: f.home, in: work)
        XCTAssertEqual(path.status, 0, path.stderr)
        // Once installed, the bare id is the installed plugin.
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(MarketFixture.id)
        let installed = try CLI.run(["plugin", "inspect", MarketFixture.id], home: f.home, in: work)
        XCTAssertTrue(installed.stdout.contains(f.home.plugins), installed.stdout)
    }
}

/// Marketplace v2, point 12: no index text reaches a terminal raw, and no field forges a row.
final class IndexTextTests: XCTestCase {
    func testControlCharactersInIndexFieldsAreRefusedAtTheIndex() throws {
        for (from, to) in [(#"description: ""#, #"description: "evil\nID  VERSION\ncom.fake  9.9.9 "#),
                           (#"description: ""#, #"description: "\u001B]0;pwned\u0007 "#),
                           (#"description: ""#, #"description: "\u009B31m "#),
                           (#"tools: ["#, #"tools: ["x\ny", "#)] {
            let f = try MarketFixture(self)
            try f.publish(version: "0.1.0")
            let text = try f.indexText
            XCTAssertTrue(text.contains(from), text)
            try f.sign(text: text.replacingOccurrences(of: from, with: to))
            let error = f.refusal { try f.addIndex() }
            XCTAssertEqual(error?.reason, .invalidIndex, "\(to): \(error?.message ?? "accepted")")
            XCTAssertFalse(error?.message.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B || $0.value == 0x07 } ?? true, error?.message ?? "")
        }
    }

    /// The CLI's tables escape what a receipt or catalog row holds, whatever put it there.
    func testTablesKeepEveryCellOnOneLine() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.registry.write { try $0.execute(sql: "UPDATE catalog SET description = ?", arguments: ["line\ncom.forged  6.6.6\u{1B}[2J"]) }
        let search = try CLI.run(["plugin", "search"], home: f.home)
        XCTAssertEqual(search.stdout.split(separator: "\n").count, 2, search.stdout)
        XCTAssertFalse(search.stdout.contains("\u{1B}"), search.stdout)
        XCTAssertTrue(search.stdout.contains(#"line\ncom.forged"#), search.stdout)
    }
}

/// Marketplace v2, point 2: the signed record is the truth at run time.
final class StartVerificationTests: XCTestCase {
    private func installed() throws -> (MarketFixture, String) {
        let f = try MarketFixture.installed(self)
        return (f, try XCTUnwrap(try f.market.registry.receipt(MarketFixture.id)?.path))
    }

    private func assertRefusedToStart(_ f: MarketFixture, naming file: String, target: String = MarketFixture.id,
                                      line: UInt = #line) throws {
        let run = try CLI.run(["plugin", "run", target, "tools/call", "--input", #"{"name":"convert_units","arguments":{"value":1,"from":"g","to":"mg"}}"#], home: f.home)
        XCTAssertEqual(run.status, 5, run.stderr, line: line)
        XCTAssertTrue(run.stderr.contains("will not start") && run.stderr.contains(file), run.stderr, line: line)
        XCTAssertEqual(try f.market.auditEntries().last?.action, "refuse-start", line: line)
    }

    func testAChangedLibraryDoesNotStart() throws {
        let (f, path) = try installed()
        let library = URL(fileURLWithPath: "\(path)/libBraneUnits.so")
        var bytes = try Data(contentsOf: library)
        bytes[bytes.count - 1] ^= 0x01
        try bytes.write(to: library)
        try assertRefusedToStart(f, naming: "libBraneUnits.so")
        // Named by its path, the install directory is held to the same receipt.
        try assertRefusedToStart(f, naming: "libBraneUnits.so", target: path)
    }

    func testAManifestRewrittenToAnotherTierDoesNotStart() throws {
        let (f, path) = try installed()
        let manifest = "\(path)/manifest.yaml"
        let text = try String(contentsOfFile: manifest, encoding: .utf8)
        try (text.replacingOccurrences(of: "  tier: 0", with: "  tier: 2") + "network:\n  mode: hosts\n  connect: [{host: example.com, port: 443}]\n")
            .write(toFile: manifest, atomically: false, encoding: .utf8)
        try assertRefusedToStart(f, naming: "manifest.yaml")
        XCTAssertEqual(f.refusal { _ = try f.market.installedDirectory(MarketFixture.id) }?.reason, .tampered)
    }

    func testAFileAddedToTheInstallDoesNotStart() throws {
        let (f, path) = try installed()
        try Data("x".utf8).write(to: URL(fileURLWithPath: "\(path)/libpreload.so"))
        try assertRefusedToStart(f, naming: "libpreload.so")
    }

    /// A new mtime without new bytes re-hashes once and still starts: the stamp is a cache, not the check.
    func testATouchedButUnchangedFileStillStarts() throws {
        let (f, path) = try installed()
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 0), timespec(tv_sec: 1_000_000, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, "\(path)/libBraneUnits.so", &times, 0), 0)
        XCTAssertEqual(try f.market.installedDirectory(MarketFixture.id), path)
        XCTAssertEqual(try f.convertWithInstalled(), 0.005)
    }
}

/// Marketplace v2, points 7 and 8: names equal as text are one name; every parse is bounded.
final class BoundedParsingTests: XCTestCase {
    func testAnAliasBombIsRefusedQuicklyAtItsFile() throws {
        var bomb = "config:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 { bomb += "  a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let started = ContinuousClock.now
        XCTAssertThrowsError(try ManifestLoader.parse(MarketFixture.unitsManifest + bomb, file: "manifest.yaml")) { error in
            XCTAssertTrue("\(error)".contains("manifest.yaml:1:1") && "\(error)".contains("alias bomb"), "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
        let deep = "config:\n  x: " + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "\n"
        XCTAssertThrowsError(try ManifestLoader.parse(MarketFixture.unitsManifest + deep, file: "manifest.yaml")) { error in
            XCTAssertTrue("\(error)".contains("deeper than 64"), "\(error)")
        }
    }

    /// An index is bounded in proportion to what it carries: a few thousand plugins are far past a
    /// manifest's node limit and still read.
    func testALargeIndexIsNotMistakenForABomb() throws {
        let plugins = (0..<3000).map { i in
            MarketplaceIndex.Plugin(id: "org.example.p\(i)", releases: [MarketplaceIndex.Release(
                version: SemanticVersion("1.0.\(i)")!, kind: .synapse, abi: .host, tier: .sensitive, description: "plugin \(i)",
                tools: ["tool_\(i)"], archive: "archives/p\(i).tar", sha256: String(repeating: "0", count: 64), size: 1, yanked: false)])
        }
        let text = try MarketplaceIndex(name: "big", version: 1, expires: Date().addingTimeInterval(3600), plugins: plugins).yaml()
        XCTAssertEqual(try MarketplaceIndex.parse(text, file: "index.yaml").plugins.count, 3000)
    }

    func testAManifestOrNeuronFileThatIsNotARegularFileIsRefusedWithoutBlocking() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("brane-fifo-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        XCTAssertEqual(mkfifo(directory + "/manifest.yaml", 0o600), 0)
        XCTAssertThrowsError(try ManifestLoader.load(path: directory + "/manifest.yaml")) { error in
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
        XCTAssertThrowsError(try NeuronLoader.load(path: "/dev/zero", plugins: PluginLocator())) { error in
            XCTAssertTrue("\(error)".contains("not a regular file"), "\(error)")
        }
    }

    func testHugeVersionNumbersAreAClearErrorNotATrap() {
        for text in ["^9223372036854775807.0.0", "~9223372036854775807", "9223372036854775807", ">=99999999999999999999.0.0", "^2147483648",
                     "^2147483647.0.0", "2147483647", "~2147483647.2147483647.0"] {
            XCTAssertThrowsError(try VersionRequirement(text), text)
        }
        XCTAssertNoThrow(try VersionRequirement("^2147483646.0.0"))
    }

    /// A symlink header with a size hides the next blocks from `tar tf`; such an archive is refused.
    func testANonFileEntryWithDataIsRefused() throws {
        var bytes = try Tar.write([TarEntry(path: "link", kind: .symlink(target: "manifest.yaml"), mode: 0o777, contents: []),
                                   TarEntry(path: "manifest.yaml", kind: .file, mode: 0o644, contents: Array("x".utf8))])
        // Claim 512 bytes of data for the link, and fix the header's checksum.
        let size = Array(String(format: "%011o", 512).utf8)
        bytes.replaceSubrange(124..<135, with: size)
        bytes.replaceSubrange(148..<156, with: Array(repeating: UInt8(ascii: " "), count: 8))
        let sum = bytes[0..<512].reduce(0) { $0 + Int($1) }
        bytes.replaceSubrange(148..<155, with: Array(String(format: "%06o\0", sum).utf8))
        XCTAssertThrowsError(try Tar.read(bytes)) { error in
            XCTAssertTrue("\(error)".contains("GNU tar would list this archive differently"), "\(error)")
        }
    }

    /// Two entries that differ only in Unicode normalisation are one name: the archive is refused, and verify stays sound.
    func testNormalisationTwinsInAnArchiveAreRefused() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(MarketFixture.id)
        var entries = try f.unitsEntries(version: "0.2.0")
        entries += [TarEntry(path: "data/caf\u{E9}", kind: .file, mode: 0o644, contents: Array("a".utf8)),
                    TarEntry(path: "data/cafe\u{301}", kind: .file, mode: 0o644, contents: Array("b".utf8))]
        try f.publishCrafted(version: "0.2.0", entries: entries)
        let error = f.refusal { try f.market.install(MarketFixture.id, requirement: try VersionRequirement("0.2.0")) }
        XCTAssertEqual(error?.reason, .unsafeArchive, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("Unicode normalisation") ?? false, error?.message ?? "")
        XCTAssertEqual(try f.installedVersion, "0.1.0")
        XCTAssertEqual(try f.market.verify(), [])
        XCTAssertEqual(try f.convertWithInstalled(), 0.005)
    }
}

/// Marketplace v2, point 10: `$BRANE_HOME` is kept safe.
final class HomeSafetyTests: XCTestCase {
    private func freshHome() -> BraneHome {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("brane-home-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        return BraneHome(root: root)
    }

    func testAHomeOthersCanWriteIsRefused() throws {
        let home = freshHome()
        try FileManager.default.createDirectory(atPath: home.root, withIntermediateDirectories: true)
        for mode: mode_t in [0o777, 0o770, 0o722] {
            XCTAssertEqual(chmod(home.root, mode), 0)
            XCTAssertThrowsError(try Marketplace(home: home), String(mode, radix: 8)) { error in
                XCTAssertTrue("\(error)".contains(geteuid() == 0 ? "chmod 711" : "chmod 700"), "\(error)")
            }
        }
        XCTAssertEqual(chmod(home.root, 0o700), 0)
        XCTAssertNoThrow(try Marketplace(home: home))
    }

    func testTheAuditKeyIsPrivateWholeAndADamagedOneIsNamed() throws {
        let home = freshHome()
        _ = try Marketplace(home: home)
        var info = stat()
        XCTAssertEqual(stat(home.auditKey, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
        XCTAssertEqual(info.st_size, 32)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: home.root).filter { $0.hasPrefix("audit.key.") }, [], "no temporary left")
        try Data("short".utf8).write(to: URL(fileURLWithPath: home.auditKey))
        XCTAssertThrowsError(try Marketplace(home: home)) { error in
            XCTAssertTrue("\(error)".contains(home.auditKey) && "\(error)".contains("damaged"), "\(error)")
        }
    }

    /// Two dozen first commands at once on a fresh home: every one succeeds, and they agree on one key.
    func testConcurrentFirstCommandsAllSucceed() throws {
        let home = freshHome()
        let runs = (0..<24).map { _ in
            let process = Process()
            process.executableURL = BuildProducts.brane
            process.arguments = ["plugin", "list", "--json"]
            process.environment = ["BRANE_HOME": home.root, "PATH": "/usr/bin:/bin"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        for process in runs { try process.run() }
        for process in runs { process.waitUntilExit() }
        XCTAssertEqual(runs.map(\.terminationStatus), Array(repeating: 0, count: 24))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: home.auditKey)).count, 32)
    }
}

/// Marketplace v2, point 4: trust is per origin, and rollback state cannot be reset.
final class OriginTrustTests: XCTestCase {
    /// A second index, under its own key, offering `version` of the units plugin.
    private func otherIndex(_ f: MarketFixture, version: String) throws -> (directory: String, key: Ed25519Key) {
        let directory = "\(f.root)/other-index", key = try Ed25519Key.generate()
        try Publisher(indexDirectory: directory, key: key).publish([try f.pluginCopy(version: version)], name: "other")
        try f.market.addIndex(name: "other", location: directory, publicKeyPEM: key.publicKeyPEM)
        return (directory, key)
    }

    func testASecondIndexOfferingAHigherVersionDoesNotTakeOver() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(MarketFixture.id)
        _ = try otherIndex(f, version: "0.2.0")
        XCTAssertEqual(try f.market.install(MarketFixture.id).action, .unchanged, "install stays with the plugin's index")
        XCTAssertEqual(try f.market.upgrade(MarketFixture.id).action, .unchanged, "upgrade stays with the plugin's index")
        XCTAssertEqual(try f.installedVersion, "0.1.0")
        // Named explicitly, the other index may take it.
        XCTAssertEqual(try f.market.install(MarketFixture.id, index: "other").version, "0.2.0")
        XCTAssertEqual(try f.market.registry.receipt(MarketFixture.id)?.indexName, "other")
    }

    func testABrokenOrExpiredIndexDoesNotBlockAHealthyOne() throws {
        for damage in ["signature", "expired"] {
            let f = try MarketFixture(self)
            try f.publish(version: "0.1.0")
            try f.addIndex()
            let (directory, key) = try otherIndex(f, version: "0.1.0")
            if damage == "signature" {
                try "AAAA\n".write(toFile: "\(directory)/index.yaml.sig", atomically: true, encoding: .utf8)
            } else {
                try Publisher(indexDirectory: directory, key: key).publish([try f.pluginCopy(version: "0.1.0")], name: "other", validDays: -1)
            }
            XCTAssertEqual(try f.market.install(MarketFixture.id).action, .installed, damage)
            XCTAssertEqual(try f.market.registry.receipt(MarketFixture.id)?.indexName, "test", damage)
            XCTAssertEqual(try f.market.auditEntries().filter { $0.action == "refuse" }.count, 1, "the broken index is recorded: \(damage)")
        }
    }

    func testRollbackStateSurvivesRemoveAndAddAndIsAudited() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        let old = (try Data(contentsOf: URL(fileURLWithPath: "\(f.indexDirectory)/index.yaml")),
                   try Data(contentsOf: URL(fileURLWithPath: "\(f.indexDirectory)/index.yaml.sig")))
        try f.publish(version: "0.2.0")
        _ = try f.market.refreshIndex("test")
        try f.market.removeIndex("test")
        try old.0.write(to: URL(fileURLWithPath: "\(f.indexDirectory)/index.yaml"))
        try old.1.write(to: URL(fileURLWithPath: "\(f.indexDirectory)/index.yaml.sig"))
        let error = f.refusal { try f.addIndex() }
        XCTAssertEqual(error?.reason, .rollback, error?.message ?? "the old copy was accepted")
        XCTAssertEqual(try f.market.auditEntries().last?.action, "refuse")
    }

    func testTheSameVersionWithOtherBytesIsRefused() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        let text = try f.indexText
        try f.sign(text: text.replacingOccurrences(of: "description: \"", with: "description: \"quietly changed "))
        let error = f.refusal { _ = try f.market.refreshIndex("test") }
        XCTAssertEqual(error?.reason, .rollback, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("other contents") ?? false, error?.message ?? "")
    }

    /// Another index signed by the same key, served in this one's place, is refused: the name is pinned with the key.
    func testAnotherIndexSignedByTheSameKeyCannotStandIn() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        var index = try MarketplaceIndex.parse(try f.indexText, file: "index.yaml")
        index.name = "payments"
        index.version += 1
        try f.sign(index)
        let error = f.refusal { _ = try f.market.refreshIndex("test") }
        XCTAssertEqual(error?.reason, .badSignature, error?.message ?? "")
        XCTAssertTrue(error?.message.contains("standing in") ?? false, error?.message ?? "")
    }
}

/// Marketplace v2, point 11: the audit log tells the whole story it can.
final class AuditStoryTests: XCTestCase {
    func testAnEmptiedOrCutLogIsDetectedAgainstTheReceipts() throws {
        for cut in ["DELETE FROM audit", "DELETE FROM audit WHERE sequence = (SELECT MAX(sequence) FROM audit)"] {
            let f = try MarketFixture(self)
            try f.publish(version: "0.1.0")
            try f.addIndex()
            try f.market.install(MarketFixture.id)
            XCTAssertEqual(try CLI.run(["audit", "verify"], home: f.home).status, 0)
            try f.market.registry.write { try $0.execute(sql: cut) }
            let verify = try CLI.run(["audit", "verify"], home: f.home)
            XCTAssertEqual(verify.status, 5, cut)
            XCTAssertTrue(verify.stderr.contains("no audit entry records that install"), verify.stderr)
        }
    }
}

/// Marketplace v2, point 3: the index vouches for the whole sandbox declaration, and allow-lists are bounded.
final class VouchedSandboxTests: XCTestCase {
    /// Refused for `reason`, the previous version still runs, nothing left behind, the refusal audited.
    private func assertRefused(_ f: MarketFixture, _ reason: MarketplaceError.Reason, mentioning text: String, granted: [String] = [],
                               line: UInt = #line) throws {
        let error = f.refusal { try f.market.install(MarketFixture.id, requirement: try VersionRequirement("0.2.0"), grantedPaths: granted) }
        XCTAssertEqual(error?.reason, reason, error?.message ?? "installed", line: line)
        XCTAssertTrue(error?.message.contains(text) ?? false, error?.message ?? "", line: line)
        XCTAssertEqual(try f.installedVersion, "0.1.0", line: line)
        XCTAssertEqual(try f.convertWithInstalled(), 0.005, line: line)
        try f.assertNoDebris(line: line)
        XCTAssertEqual(try f.market.auditEntries().last?.action, "refuse", line: line)
    }

    private func manifest(read: [String] = [], write: [String] = [], extraTool: Bool = false) -> (String) -> String {
        { text in
            var text = text
            if !read.isEmpty || !write.isEmpty {
                text += "filesystem:\n" + (read.isEmpty ? "" : "  read: [\(read.joined(separator: ", "))]\n") + (write.isEmpty ? "" : "  write: [\(write.joined(separator: ", "))]\n")
            }
            if extraTool {
                text = text.replacingOccurrences(of: "tools:\n", with: "tools:\n  - name: exfiltrate\n    description: x\n    inputSchema: {type: object}\n")
            }
            return text
        }
    }

    func testAToolTheIndexDoesNotListIsRefused() throws {
        let f = try MarketFixture.installed(self)
        try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0", editManifest: manifest(extraTool: true)))
        try assertRefused(f, .incompatible, mentioning: "the manifest's tools is convert_units exfiltrate but the signed index says convert_units")
    }

    func testFilesystemPathsTheIndexDoesNotVouchForAreRefused() throws {
        let f = try MarketFixture.installed(self)
        try f.publishCrafted(version: "0.2.0", entries: try f.unitsEntries(version: "0.2.0", editManifest: manifest(read: ["/proc"])))
        try assertRefused(f, .incompatible, mentioning: "filesystem.read is /proc but the signed index says (none)")
    }

    /// Vouched for by a valid signature, and still refused: the paths no installed plugin may have.
    func testAllowListsAreBounded() throws {
        let f = try MarketFixture.installed(self)
        let cases: [(read: [String], write: [String], mentioning: String)] = [
            (["/"], [], "is the whole filesystem"), ([], ["/"], "is the whole filesystem"),
            (["\(f.home.root)/audit.key"], [], "reaches BRANE_HOME"), ([f.home.root], [], "reaches BRANE_HOME"),
            ([URL(fileURLWithPath: f.home.root).deletingLastPathComponent().path], [], "reaches BRANE_HOME"),
            ([], ["data"], "own install tree"), (["/home"], [], "without a grant"), (["/etc/shadow"], [], "without a grant"),
            ([], ["/var/tmp/x"], "without a grant"), (["/proc/../etc"], [], "contain '..'"), (["//etc/./shadow"], [], "without a grant"),
        ]
        for (index, c) in cases.enumerated() {
            try f.publishCrafted(version: "0.2.\(index)", read: c.read, write: c.write,
                                 entries: try f.unitsEntries(version: "0.2.\(index)", editManifest: manifest(read: c.read.map { "\"\($0)\"" }, write: c.write.map { "\"\($0)\"" })))
            let error = f.refusal { try f.market.install(MarketFixture.id, requirement: try VersionRequirement("0.2.\(index)")) }
            XCTAssertTrue(error?.message.contains(c.mentioning) ?? false, "\(c): \(error?.message ?? "installed")")
            XCTAssertEqual(try f.installedVersion, "0.1.0")
        }
        XCTAssertEqual(try f.convertWithInstalled(), 0.005)
    }

    func testAGrantedPathIsAllowedShownAndAudited() throws {
        let f = try MarketFixture.installed(self)
        try f.publishCrafted(version: "0.2.0", read: ["/srv/reference"], entries: try f.unitsEntries(version: "0.2.0", editManifest: manifest(read: ["/srv/reference"])))
        try assertRefused(f, .unsafeArchive, mentioning: "pass --allow-path /srv/reference")
        // Named by the user, it installs; the grant is in the audit entry and carried by the receipt.
        XCTAssertThrowsError(try f.market.install(MarketFixture.id, requirement: try VersionRequirement("0.2.0"), grantedPaths: ["srv"]))
        let outcome = try f.market.install(MarketFixture.id, requirement: try VersionRequirement("0.2.0"), grantedPaths: ["/srv"])
        XCTAssertEqual(outcome.version, "0.2.0")
        XCTAssertTrue(try f.market.auditEntries().last?.detail.contains("granted /srv") ?? false)
        XCTAssertEqual(try f.market.registry.receipt(MarketFixture.id)?.grantedPaths, "/srv")
    }
}

/// Marketplace v2, point 10: read-only commands work on a read-only home (a read-only bind mount).
final class ReadOnlyHomeTests: XCTestCase {
    func testReadOnlyCommandsWorkOnAReadOnlyHome() throws {
        try XCTSkipIf(geteuid() != 0, "a read-only bind mount needs root (CI runs as root)")
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(MarketFixture.id)
        let brane = BuildProducts.brane.path
        let commands = [["plugin", "list"], ["plugin", "info", MarketFixture.id], ["plugin", "search", "unit"], ["plugin", "verify"],
                        ["audit", "verify"], ["audit", "show"], ["index", "list"],
                        ["plugin", "run", MarketFixture.id, "tools/call", "--input", #"{"name":"convert_units","arguments":{"value":5,"from":"mg","to":"g"}}"#]]
        let script = "mount --bind -o ro \(f.home.root) \(f.home.root) || exit 99\n"
            + commands.map { "echo '== \($0[0]) \($0[1])'; \(brane) " + $0.map { "'\($0)'" }.joined(separator: " ") + " || echo \"FAILED $?\"" }.joined(separator: "\n")
            + "\ntouch \(f.home.root)/x 2>/dev/null && echo WRITABLE\n"
        let run = try CLI.capture("/usr/bin/unshare", ["--mount", "sh", "-c", script], environment: ["BRANE_HOME": f.home.root])
        try XCTSkipIf(run.status == 99, "no mount namespace here: \(run.stderr)")
        XCTAssertFalse(run.stdout.contains("FAILED") || run.stdout.contains("WRITABLE"), run.stdout + run.stderr)
        XCTAssertTrue(run.stdout.contains("0.005"), run.stdout)
        XCTAssertTrue(run.stdout.contains("audit log intact"), run.stdout)
    }
}

/// The attacks a red-team pass found against Marketplace v2, kept as tests.
final class MarketplaceRedTeamTests: XCTestCase {
    private func victim(_ f: MarketFixture) throws -> String {
        let victim = "\(f.root)/victim"
        try FileManager.default.createDirectory(atPath: victim + "/keep", withIntermediateDirectories: true)
        try Data("precious".utf8).write(to: URL(fileURLWithPath: victim + "/precious.txt"))
        return victim
    }

    /// A link planted as plugins/<id>: install and remove never walk into what it points to.
    func testALinkedVersionsDirectoryNeverLeadsOutside() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        let victim = try victim(f)
        try FileManager.default.createDirectory(atPath: f.home.plugins, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(f.home.plugins)/\(MarketFixture.id)", withDestinationPath: victim)
        _ = f.refusal { try f.market.install(MarketFixture.id) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: victim).sorted(), ["keep", "precious.txt"])
        // Installed, then the directory swapped for a link: remove takes the link, not the victim.
        try f.market.install(MarketFixture.id)
        try FileManager.default.removeItem(atPath: "\(f.home.plugins)/\(MarketFixture.id)")
        try FileManager.default.createSymbolicLink(atPath: "\(f.home.plugins)/\(MarketFixture.id)", withDestinationPath: victim)
        try f.market.remove(MarketFixture.id)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: victim).sorted(), ["keep", "precious.txt"])
    }

    func testLinkedStagingOrLocksAreRefused() throws {
        let f = try MarketFixture.installed(self)
        let victim = try victim(f)
        try FileManager.default.removeItem(atPath: f.home.staging)
        try FileManager.default.createSymbolicLink(atPath: f.home.staging, withDestinationPath: victim)
        XCTAssertThrowsError(try Marketplace(home: f.home)) { XCTAssertTrue("\($0)".contains("not a directory"), "\($0)") }
        try FileManager.default.removeItem(atPath: f.home.staging)
        try FileManager.default.createDirectory(atPath: f.home.staging, withIntermediateDirectories: false)
        let outside = "\(f.root)/outside.lock"
        try? FileManager.default.removeItem(atPath: "\(f.home.locks)/\(MarketFixture.id).lock")
        try FileManager.default.createSymbolicLink(atPath: "\(f.home.locks)/\(MarketFixture.id).lock", withDestinationPath: outside)
        XCTAssertNotNil(f.refusal { try f.market.remove(MarketFixture.id) })
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside), "no lock file is made through a link")
        var info = stat()
        XCTAssertEqual(stat(victim, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o755, "prepare never chmods through a link")
    }

    func testARegistryEditIsFoundByAuditVerify() throws {
        let f = try MarketFixture.installed(self)
        try f.market.registry.write { try $0.execute(sql: "UPDATE installedFiles SET sha256 = ?, stamp = NULL WHERE path = 'manifest.yaml'", arguments: [String(repeating: "a", count: 64)]) }
        let problems = try f.market.auditProblems()
        XCTAssertTrue(problems.contains { $0.contains("differs from what entry") }, "\(problems)")
    }

    func testAMovedHomeDoesNotRunCodeFromItsOldPlace() throws {
        let f = try MarketFixture.installed(self)
        let moved = BraneHome(root: f.home.root + "-moved")
        try FileManager.default.moveItem(atPath: f.home.root, toPath: moved.root)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: moved.root) }
        let error = f.refusal { _ = try Marketplace(home: moved).installedBundle(MarketFixture.id) }
        XCTAssertEqual(error?.reason, .tampered, error?.message ?? "started")
    }

    func testTwinsAndDeepTreesAddedToAnInstallAreFound() throws {
        let f = try MarketFixture.installed(self)
        let path = try XCTUnwrap(try f.market.installedDirectory(MarketFixture.id))
        // The receipt has manifest.yaml; a file whose name is its Unicode twin is another file.
        try Data("x".utf8).write(to: URL(fileURLWithPath: "\(path)/READM\u{45}\u{301}.md"))
        XCTAssertEqual(f.refusal { _ = try f.market.installedBundle(MarketFixture.id) }?.reason, .tampered)
        try FileManager.default.removeItem(atPath: "\(path)/READM\u{45}\u{301}.md")
        try FileManager.default.createDirectory(atPath: path + String(repeating: "/d", count: 70), withIntermediateDirectories: true)
        XCTAssertTrue(try f.market.verify().contains { $0.problem.contains("deeper than 64") })
    }

    func testAPublishedVersionNeverChangesItsBytes() throws {
        let f = try MarketFixture.installed(self)
        var index = try MarketplaceIndex.parse(try f.indexText, file: "index.yaml")
        index.plugins[0].releases[0].sha256 = String(repeating: "b", count: 64)
        index.version += 1
        try f.sign(index)
        XCTAssertEqual(f.refusal { _ = try f.market.refreshIndex("test") }?.reason, .digestMismatch)
        XCTAssertEqual(try f.market.auditEntries().last?.action, "refuse")
    }

    /// Red team: the check compared only with the catalog of the update before, so a version
    /// dropped in one update could come back with other bytes in the next, or after the index was
    /// removed and added again; and `0.1.0+b` replaced `0.1.0` in the same index.
    func testAPublishedVersionCannotComeBackWithOtherBytes() throws {
        let f = try MarketFixture.installed(self)
        var index = try MarketplaceIndex.parse(try f.indexText, file: "index.yaml")
        let original = index.plugins[0].releases[0]
        var later = original
        later.version = SemanticVersion("0.2.0")!
        later.sha256 = String(repeating: "c", count: 64)
        index.plugins[0].releases = [later]
        index.version += 1
        try f.sign(index)
        try f.market.refreshIndex("test")  // 0.1.0 is no longer offered

        var changed = original
        changed.sha256 = String(repeating: "b", count: 64)
        index.plugins[0].releases = [changed, later]
        index.version += 1
        try f.sign(index)
        XCTAssertEqual(f.refusal { _ = try f.market.refreshIndex("test") }?.reason, .digestMismatch, "offered again with other bytes")
        try f.market.removeIndex("test")
        XCTAssertEqual(f.refusal { try f.addIndex() }?.reason, .digestMismatch, "removed and added again")

        index.plugins[0].releases = [original, later]
        try f.sign(index)
        try f.addIndex()  // the bytes it was published with are fine
        var twice = original
        twice.version = SemanticVersion("\(original.version)+rebuilt")!
        twice.sha256 = String(repeating: "d", count: 64)
        index.plugins[0].releases = [original, twice, later]
        index.version += 1
        try f.sign(index)
        let refusal = f.refusal { _ = try f.market.refreshIndex("test") }
        XCTAssertEqual(refusal?.reason, .invalidIndex)
        XCTAssertTrue(refusal?.message.contains("twice") ?? false, "\(String(describing: refusal))")
        XCTAssertEqual(try f.market.registry.releases(of: index.plugins[0].id).first { $0.version == original.version.description }?.sha256,
                       original.sha256, "the catalog still offers the published bytes")
    }

    /// Red team: String's == holds canonically equivalent names equal, while the histories are
    /// looked up by bytes, so "café" re-spelt decomposed was a fresh index: rollback and re-hash.
    func testANameReSpeltInUnicodeIsAnotherIndex() throws {
        let f = try MarketFixture(self)
        var index = try f.addIndex(declaring: "caf\u{E9}", version: 5)
        index.name = "cafe\u{301}"
        index.version = 1
        index.plugins[0].releases[0].sha256 = String(repeating: "e", count: 64)
        try f.sign(index)
        let refusal = f.refusal { _ = try f.market.refreshIndex("test") }
        XCTAssertEqual(refusal?.reason, .badSignature, "\(String(describing: refusal))")
        XCTAssertEqual(try f.market.registry.indexes().first?.highestVersion, 5)
    }

    /// Red team: an index added before names were pinned had its histories under its local name,
    /// and they were looked up under the name it declares: any update passed as the first.
    func testAnIndexFromBeforeNamesWerePinnedKeepsItsHistory() throws {
        let f = try MarketFixture(self)
        var index = try f.addIndex(declaring: "declared", version: 7)
        // As migrations v3 and v5 left such an index: no pinned name, histories under "test".
        try DatabaseQueue(path: f.home.registry).write { db in
            try db.execute(sql: "UPDATE indexes SET declaredName = NULL")
            try db.execute(sql: "UPDATE indexHistory SET name = 'test'")
            try db.execute(sql: "UPDATE releaseHistory SET name = 'test'")
        }
        let published = index
        index.version = 1
        try f.sign(index)
        XCTAssertEqual(f.refusal { _ = try f.market.refreshIndex("test") }?.reason, .rollback)
        index.version = 8
        index.plugins[0].releases[0].sha256 = String(repeating: "e", count: 64)
        try f.sign(index)
        XCTAssertEqual(f.refusal { _ = try f.market.refreshIndex("test") }?.reason, .digestMismatch)
        index = published
        index.version = 8
        try f.sign(index)
        try f.market.refreshIndex("test")
        XCTAssertEqual(try f.market.registry.indexes().first?.declaredName, "declared", "pinned by the first update")
    }

    /// Red team: one plugin listed twice, each entry with one version, passed the per-entry check;
    /// and a version whose prerelease had a leading zero was another version ordered as the same.
    func testOnePluginListedTwiceAndLeadingZerosAreRefused() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        var index = try MarketplaceIndex.parse(try f.indexText, file: "index.yaml")
        var again = index.plugins[0]
        again.releases[0].version = SemanticVersion("0.1.0+again")!
        again.releases[0].sha256 = String(repeating: "e", count: 64)
        index.plugins.append(again)
        index.version += 1
        try f.sign(index)
        let refusal = f.refusal { _ = try f.market.refreshIndex("test") }
        XCTAssertEqual(refusal?.reason, .invalidIndex)
        XCTAssertTrue(refusal?.message.contains("lists \(MarketFixture.id) twice") ?? false, "\(String(describing: refusal))")
        for text in ["0.1.0-01", "1.0.0-rc.01", "1.0.0-00"] { XCTAssertNil(SemanticVersion(text), text) }
        for text in ["0.1.0-0", "1.0.0-rc.10", "1.0.0-0a", "1.0.0+01", "1.0.0-x.0"] { XCTAssertNotNil(SemanticVersion(text), text) }
    }

    /// Red team: publishing into an index at Int.max trapped on the version's overflow.
    func testAnIndexAtTheLargestVersionIsAnErrorToPublishInto() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        var index = try MarketplaceIndex.parse(try f.indexText, file: "index.yaml")
        index.version = .max
        try f.sign(index)
        let refusal = f.refusal { try f.publish(version: "0.2.0") }
        XCTAssertEqual(refusal?.reason, .usage)
        XCTAssertTrue(refusal?.message.contains("the largest there is") ?? false, "\(String(describing: refusal))")
        XCTAssertEqual(f.refusal { _ = try Publisher(indexDirectory: f.indexDirectory, key: f.key).yank(MarketFixture.id, version: "0.1.0") }?.reason, .usage)
    }

    /// Red team: a damaged receipt's error quoted the whole row, its manifest included.
    func testADamagedReceiptIsOneBoundedLine() throws {
        let f = try MarketFixture.installed(self)
        try DatabaseQueue(path: f.home.registry).write { db in
            try db.execute(sql: "UPDATE installs SET installedAt = 'not a time', manifest = ?", arguments: [String(repeating: "x", count: 100_000)])
        }
        let refusal = f.refusal { _ = try f.market.registry.receipts() }
        XCTAssertEqual(refusal?.reason, .io)
        XCTAssertLessThan(refusal?.message.utf8.count ?? .max, 600, refusal?.message ?? "")
        XCTAssertTrue(refusal?.message.contains("registry read failed") ?? false, refusal?.message ?? "")
        XCTAssertTrue(refusal?.message.contains("bytes cut]") ?? false, "the row was longer than the line: \(refusal?.message ?? "")")
    }

    func testTheRollbackMarkFollowsTheIndexNotItsLocalName() throws {
        let f = try MarketFixture(self)
        try f.publish(version: "0.1.0")
        let old = try Data(contentsOf: URL(fileURLWithPath: "\(f.indexDirectory)/index.yaml"))
        let oldSignature = try Data(contentsOf: URL(fileURLWithPath: "\(f.indexDirectory)/index.yaml.sig"))
        try f.publish(version: "0.2.0")
        try f.addIndex()
        try old.write(to: URL(fileURLWithPath: "\(f.indexDirectory)/index.yaml"))
        try oldSignature.write(to: URL(fileURLWithPath: "\(f.indexDirectory)/index.yaml.sig"))
        let error = f.refusal { _ = try f.market.addIndex(name: "mirror", location: f.indexDirectory, publicKeyPEM: f.key.publicKeyPEM) }
        XCTAssertEqual(error?.reason, .rollback, error?.message ?? "the older copy was accepted under another local name")
    }

    func testAV7TarHeaderIsRefused() throws {
        var bytes = try Tar.write([TarEntry(path: "manifest.yaml", kind: .file, mode: 0o644, contents: Array("x".utf8))])
        bytes.replaceSubrange(257..<265, with: [UInt8](repeating: 0, count: 8))
        bytes.replaceSubrange(148..<156, with: Array(repeating: UInt8(ascii: " "), count: 8))
        let sum = bytes[0..<512].reduce(0) { $0 + Int($1) }
        bytes.replaceSubrange(148..<155, with: Array(String(format: "%06o\0", sum).utf8))
        XCTAssertThrowsError(try Tar.read(bytes)) { XCTAssertTrue("\($0)".contains("not a POSIX ustar header"), "\($0)") }
    }

    /// Paths that lead into the home, or anywhere, by a link: judged by where they resolve too.
    func testPathsThatResolveIntoTheHomeAreRefused() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("brane-policy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base + "/real/plugins", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createSymbolicLink(atPath: base + "/home", withDestinationPath: base + "/real")
        try FileManager.default.createSymbolicLink(atPath: base + "/innocent", withDestinationPath: base + "/real")
        let home = BraneHome(root: base + "/home")
        for (entry, granted, mentioning) in [(base + "/real/plugins", [base], "reaches BRANE_HOME"), (base + "/innocent/audit.key", [base + "/innocent"], "reaches BRANE_HOME"),
                                             ("/proc/self/root\(base)/real", ["/proc"], "magic link"), ("/proc/1/root/etc/shadow", [], "magic link")] {
            let problems = PathPolicy.problems(read: [entry], write: [], home: home, granted: granted)
            XCTAssertTrue(problems.contains { $0.contains(mentioning) }, "\(entry): \(problems)")
        }
    }

    func testAMissingKeyBesideASignedLogIsAnError() throws {
        let f = try MarketFixture.installed(self)
        try FileManager.default.removeItem(atPath: f.home.auditKey)
        XCTAssertThrowsError(try Marketplace(home: f.home)) { XCTAssertTrue("\($0)".contains("is missing, but the audit log has entries"), "\($0)") }
    }

    func testAVersionsDirectoryOthersCanWriteDoesNotStart() throws {
        let f = try MarketFixture.installed(self)
        XCTAssertEqual(chmod("\(f.home.plugins)/\(MarketFixture.id)", 0o777), 0)
        XCTAssertEqual(f.refusal { _ = try f.market.installedBundle(MarketFixture.id) }?.reason, .tampered)
    }
}
