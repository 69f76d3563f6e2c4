@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// `brane plugin new`: every kind's C folder builds against the ABI header alone and passes its
/// sandboxed test.sh, which fails when the plugin answers wrong; what must be refused is.
/// (scripts/sdk-walkthrough builds the Swift folders against an installed kit, and runs the
/// documented walk-through.)
final class PluginScaffoldTests: XCTestCase {
    private var brane: String { BuildProducts.brane.path }

    private func scratch() throws -> URL {
        let base = BundledPlugins.temporaryDirectory()
        // As root, instances run as uids of their own: "others" to these files.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: base.path)
        addTeardownBlock { try? FileManager.default.removeItem(at: base) }
        return base
    }

    /// Writes the C folder for `kind` and builds its library with cc and the repository's header.
    private func builtC(_ kind: PluginScaffold.Kind, in base: URL, edit: (String) -> String = { $0 }) throws -> URL {
        let scaffold = try PluginScaffold(id: "com.example.\(kind.rawValue)-check", language: .c, kind: kind)
        let folder = base.appendingPathComponent(scaffold.id)
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        try PluginScaffold.write(try scaffold.files(kit: nil).map { var file = $0; file.contents = edit(file.contents); return file }, to: folder.path)
        let header = BundledPlugins.repository.appendingPathComponent("Sources/PluginABI/include").path
        let cc = try CLI.capture("/usr/bin/cc", ["-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-I", header,
                                                 "-o", folder.appendingPathComponent(scaffold.libraryName).path,
                                                 folder.appendingPathComponent("\(scaffold.name).c").path])
        XCTAssertEqual(cc.status, 0, cc.stderr)
        return folder
    }

    private func sandboxedTest(_ folder: URL, in base: URL) throws -> CLI.Run {
        try CLI.capture(folder.appendingPathComponent("test.sh").path, [],
                        environment: ["BRANE": brane, "BRANE_HOME": base.appendingPathComponent("home").path])
    }

    func testEveryKindInCBuildsWithoutWarningsAndPassesItsSandboxedTest() throws {
        let base = try scratch()
        for kind in PluginScaffold.Kind.allCases {
            let run = try sandboxedTest(try builtC(kind, in: base), in: base)
            XCTAssertEqual(run.status, 0, "\(kind): \(run.stdout) \(run.stderr)")
            XCTAssertTrue(run.stdout.contains("passed in its sandbox"), run.stdout)
        }
    }

    /// The sandboxed test is a test: a plugin that counts wrong, or alerts on nothing, fails it.
    func testTheSandboxedTestFailsAPluginThatAnswersWrong() throws {
        let base = try scratch()
        let miscounting = try builtC(.synapse, in: base) { $0.replacingOccurrences(of: "words++;", with: "words += 2;") }
        XCTAssertNotEqual(try sandboxedTest(miscounting, in: base).status, 0)
        let silent = try builtC(.specialist, in: base.appendingPathComponent("b")) { $0.replacingOccurrences(of: "if (value <= 100)", with: "if (value <= 1000)") }
        let run = try sandboxedTest(silent, in: base)
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("expected over-100"), run.stderr)
    }

    func testWhatCannotBeWrittenIsRefusedAndNothingIsLost() throws {
        let base = try scratch()
        for id in ["Com.Example.x", "com..x", "../x", "-x.y", "x", "com.example.x/y"] {
            XCTAssertThrowsError(try PluginScaffold(id: id, language: .c, kind: .synapse), id)
        }
        XCTAssertEqual(try PluginScaffold(id: "com.example.word-count", language: .c, kind: .synapse).name, "WordCount")
        XCTAssertEqual(try PluginScaffold(id: "com.example.2fa", language: .c, kind: .synapse).name, "Plugin2fa")

        let swift = try PluginScaffold(id: "com.example.kitcheck", language: .swift, kind: .synapse)
        XCTAssertThrowsError(try swift.files(kit: nil))
        for kit in ["/opt/kit\"), .package(path: \"/etc", "/opt/kit\\x", "/opt/kit\nx"] {
            XCTAssertThrowsError(try swift.files(kit: kit), kit) { XCTAssertTrue("\($0)".contains("Package.swift string")) }
        }
        XCTAssertTrue(try swift.files(kit: "/usr/share/brane/swift/BranePluginKit").contains { $0.path == "Package.swift" })

        // An existing folder with anything in it is left exactly as it was.
        let files = try PluginScaffold(id: "com.example.keep", language: .c, kind: .synapse).files(kit: nil)
        let occupied = base.appendingPathComponent("occupied")
        try FileManager.default.createDirectory(at: occupied, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: occupied.appendingPathComponent("notes.txt"))
        XCTAssertThrowsError(try PluginScaffold.write(files, to: occupied.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: occupied.path), ["notes.txt"])
        let link = base.appendingPathComponent("link")
        let empty = base.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: empty.path)
        XCTAssertThrowsError(try PluginScaffold.write(files, to: link.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: empty.path), [])
        // Nothing is made on the way: a parent that does not exist is named, not created.
        XCTAssertThrowsError(try PluginScaffold.write(files, to: base.appendingPathComponent("no/such/place").path)) {
            XCTAssertTrue("\($0)".contains("does not exist; create it first"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: base.appendingPathComponent("no").path))
        // The staging directory's name cannot be guessed, so nothing planted beside the target is
        // written through: a link named like the old staging folder stays as it was.
        let victim = base.appendingPathComponent("victim.txt")
        try Data("mine".utf8).write(to: victim)
        try FileManager.default.createDirectory(at: base.appendingPathComponent(".fresh.new-\(getpid())"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: base.appendingPathComponent(".fresh.new-\(getpid())/manifest.yaml").path,
                                                   withDestinationPath: victim.path)
        try PluginScaffold.write(files, to: base.appendingPathComponent("fresh").path)
        XCTAssertEqual(try String(contentsOf: victim, encoding: .utf8), "mine")
        // Another user's empty directory, or one others may write in, is not filled: they could
        // swap the staging directory mid-write or the Makefile `make` runs. Nor is a folder made
        // in a directory others may write in unless it is sticky.
        let shared = base.appendingPathComponent("shared")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: shared.path)
        XCTAssertThrowsError(try PluginScaffold.write(files, to: shared.path)) { XCTAssertTrue("\($0)".contains("others may write in it"), "\($0)") }
        XCTAssertThrowsError(try PluginScaffold.write(files, to: shared.appendingPathComponent("new").path)) { XCTAssertTrue("\($0)".contains("not sticky"), "\($0)") }
        try FileManager.default.setAttributes([.posixPermissions: 0o1777], ofItemAtPath: shared.path)
        try PluginScaffold.write(files, to: shared.appendingPathComponent("new").path)
        if geteuid() == 0 {
            let theirs = shared.appendingPathComponent("theirs")
            try FileManager.default.createDirectory(at: theirs, withIntermediateDirectories: true)
            XCTAssertEqual(chown(theirs.path, 4242, 4242), 0)
            XCTAssertThrowsError(try PluginScaffold.write(files, to: theirs.path)) { XCTAssertTrue("\($0)".contains("belongs to another user"), "\($0)") }
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: theirs.path), [])
        }
        XCTAssertEqual(try PluginScaffold(id: "com.example.self", language: .swift, kind: .synapse).name, "SelfPlugin")
        XCTAssertEqual(try PluginScaffold(id: "com.example.string", language: .swift, kind: .synapse).name, "StringPlugin")
        // An empty directory is filled in place; no staging folder is left beside it.
        try PluginScaffold.write(files, to: empty.path)
        XCTAssertTrue(FileManager.default.fileExists(atPath: empty.appendingPathComponent("manifest.yaml").path))
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: base.path).contains { $0.hasPrefix(".brane-new-") })
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: empty.path).contains { $0.hasPrefix(".brane-new-") })
    }

    /// As root, a plugin kept where others cannot reach is named before any spawn, with the fix,
    /// instead of surfacing as dlopen's bare "Permission denied".
    func testAPluginInADirectoryClosedToInstancesIsNamedBeforeTheSpawn() throws {
        try XCTSkipUnless(geteuid() == 0, "only a root host switches each instance to a uid of its own")
        let base = try scratch()
        let folder = try builtC(.synapse, in: base.appendingPathComponent("private"))
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: base.appendingPathComponent("private").path)
        let run = try CLI.capture(brane, ["tool", "call", folder.path, "count_words", "--args", #"{"text":"a b"}"#],
                                  environment: ["BRANE_HOME": base.appendingPathComponent("home").path])
        XCTAssertNotEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("\(base.path)/private (mode 0700) is closed to it"), run.stderr)
        XCTAssertTrue(run.stderr.contains("chmod o+rx"), run.stderr)
        // Reached through a link from an open directory, it is still named (the path is resolved).
        let link = base.appendingPathComponent("open-link")
        try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: folder.path)
        let linked = try CLI.capture(brane, ["tool", "call", link.path, "count_words", "--args", #"{"text":"a b"}"#],
                                     environment: ["BRANE_HOME": base.appendingPathComponent("home").path])
        XCTAssertTrue(linked.stderr.contains("\(base.path)/private (mode 0700) is closed to it"), linked.stderr)
        // Closed to others but open to the plugin's own group, it runs: the kernel would let it.
        let gid = SandboxPlan.pluginGID("com.example.synapse-check", settings: SandboxSettings())  // the CLI's home has no host settings
        XCTAssertEqual(chown(base.appendingPathComponent("private").path, 0, gid), 0)
        try FileManager.default.setAttributes([.posixPermissions: 0o750], ofItemAtPath: base.appendingPathComponent("private").path)
        let grouped = try CLI.capture(brane, ["tool", "call", folder.path, "count_words", "--args", #"{"text":"a b"}"#],
                                      environment: ["BRANE_HOME": base.appendingPathComponent("home").path])
        XCTAssertEqual(grouped.status, 0, grouped.stderr)
    }
}
