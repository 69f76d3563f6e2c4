import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// A publisher with a real Ed25519 key and index directory, and a host with its own BRANE_HOME
/// and SQLite registry, all in a temporary directory. The plugin published is the real
/// com.brane.units, its manifest version edited so upgrades have somewhere to go.
final class MarketFixture {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let unitsDirectory = repository.appendingPathComponent("Plugins/com.brane.units").path
    static let unitsManifest = try! String(contentsOfFile: unitsDirectory + "/manifest.yaml", encoding: .utf8)
    static let id = "com.brane.units"

    let root: String
    let indexDirectory: String
    let key: Ed25519Key
    let home: BraneHome
    let market: Marketplace

    init(_ test: XCTestCase) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("brane-market-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        test.addTeardownBlock { [root] in try? FileManager.default.removeItem(atPath: root) }
        indexDirectory = "\(root)/index"
        key = try Ed25519Key.generate()
        home = BraneHome(root: "\(root)/home")
        market = try Marketplace(home: home)
    }

    /// A fixture with the units plugin 0.1.0 published, its index added and the plugin installed.
    static func installed(_ test: XCTestCase) throws -> MarketFixture {
        let f = try MarketFixture(test)
        try f.publish(version: "0.1.0")
        try f.addIndex()
        try f.market.install(id)
        return f
    }

    /// A copy of a bundled plugin (com.brane.units by default) at another version.
    func pluginCopy(_ id: String = MarketFixture.id, version: String) throws -> String {
        let source = Self.repository.appendingPathComponent("Plugins/\(id)").path
        let directory = "\(root)/src-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let manifest = try String(contentsOfFile: "\(source)/manifest.yaml", encoding: .utf8)
            .replacingOccurrences(of: "version: 0.1.0", with: "version: \(version)")
        try manifest.write(toFile: "\(directory)/manifest.yaml", atomically: true, encoding: .utf8)
        // The descriptor must agree with the manifest: other versions come from their own builds.
        if id == MarketFixture.id && version != "0.1.0" {
            let built = BuildProducts.directory
                .appendingPathComponent("libUnitsAt\(version.replacingOccurrences(of: ".", with: "_")).so")
            try FileManager.default.copyItem(atPath: built.path, toPath: "\(directory)/libBraneUnits.so")
        }
        return directory
    }

    @discardableResult
    func publish(_ id: String = MarketFixture.id, version: String, validDays: Int = 30) throws -> Publisher.Report {
        try Publisher(indexDirectory: indexDirectory, key: key).publish([try pluginCopy(id, version: version)], name: "test", validDays: validDays)
    }

    func addIndex(key pinned: Ed25519Key? = nil) throws {
        try market.addIndex(name: "test", location: indexDirectory, publicKeyPEM: (pinned ?? key).publicKeyPEM)
    }

    var indexText: String { get throws { try String(contentsOfFile: "\(indexDirectory)/index.yaml", encoding: .utf8) } }

    /// Publishes units 0.1.0 into an index that calls itself `name` at `version`, adds it, and
    /// returns the index for a test to edit and sign again.
    func addIndex(declaring name: String, version: Int) throws -> MarketplaceIndex {
        try publish(version: "0.1.0")
        var index = try MarketplaceIndex.parse(try indexText, file: "index.yaml")
        (index.name, index.version) = (name, version)
        try sign(index)
        try addIndex()
        return index
    }

    /// Adds a hand-made archive as a release of `id` and re-signs the index: how a malicious
    /// (or broken) publisher's package reaches a host with a valid signature.
    func publishCrafted(id: String = MarketFixture.id, version: String, abi: String = "1.0", tier: Int = 0,
                        tools: [String] = ["convert_units"], network: [String] = [], read: [String] = [], write: [String] = [],
                        entries: [TarEntry]) throws {
        var index = try MarketplaceIndex.parse(try indexText, file: "index.yaml")
        let archive = try Tar.write(entries)
        let path = "archives/crafted-\(id)-\(version).tar"
        try Data(archive).write(to: URL(fileURLWithPath: "\(indexDirectory)/\(path)"))
        var release = MarketplaceIndex.Release(version: SemanticVersion(version)!, kind: .synapse, abi: ABIVersion(abi)!,
                                               tier: PrivacyTier(rawValue: tier)!, description: "crafted", tools: tools,
                                               archive: path, sha256: SHA256.hash(archive), size: UInt64(archive.count), yanked: false)
        (release.network, release.read, release.write) = (network, read, write)
        if let i = index.plugins.firstIndex(where: { $0.id == id }) {
            index.plugins[i].releases.append(release)
        } else {
            index.plugins.append(.init(id: id, releases: [release]))
        }
        index.version += 1
        try sign(index)
    }

    func sign(_ index: MarketplaceIndex, with signer: Ed25519Key? = nil) throws {
        try sign(text: try index.yaml(), with: signer)
    }

    /// Signs index text as written — also text Brane's own writer would never produce.
    func sign(text: String, with signer: Ed25519Key? = nil) throws {
        let bytes = Array(text.utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(indexDirectory)/index.yaml"))
        try (Data(try (signer ?? key).sign(bytes)).base64EncodedString() + "\n")
            .write(toFile: "\(indexDirectory)/index.yaml.sig", atomically: true, encoding: .utf8)
    }

    /// The archive entries of a good units release, with `manifest` edited.
    func unitsEntries(version: String, editManifest: (String) -> String = { $0 }) throws -> [TarEntry] {
        let library = try PluginBundle.open(Self.unitsDirectory).libraryPath
        let manifest = editManifest(Self.unitsManifest.replacingOccurrences(of: "version: 0.1.0", with: "version: \(version)"))
        return [TarEntry(path: "manifest.yaml", kind: .file, mode: 0o644, contents: Array(manifest.utf8)),
                TarEntry(path: "libBraneUnits.so", kind: .file, mode: 0o755, contents: Array(try Data(contentsOf: URL(fileURLWithPath: library))))]
    }

    /// Calls the installed plugin in its sandbox: proof that an install is not just present but working.
    func convertWithInstalled() throws -> Double? {
        guard let directory = try market.installedDirectory(Self.id) else { return nil }
        let plugin = SupervisedPlugin(plan: try SandboxPlan(bundle: try PluginBundle.open(directory)),
                                      runner: try ResourceLocator.current.runner())
        defer { plugin.stop() }
        let request = #"{"name":"convert_units","arguments":{"value":5,"from":"mg","to":"g"}}"#
        guard case .result(let bytes) = try plugin.call(method: "tools/call", input: Array(request.utf8)) else { return nil }
        return try JSONValue(parsing: bytes)["value"]?.numberValue
    }

    var installedVersion: String? { get throws { try market.registry.receipt(Self.id)?.version } }

    /// Nothing left behind in staging, and no version directory but the registered one.
    func assertNoDebris(file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: home.staging), [], "staging debris", file: file, line: line)
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "\(home.plugins)/\(Self.id)")) ?? []
        let active = try market.installedDirectory(Self.id).map { URL(fileURLWithPath: $0).lastPathComponent }
        XCTAssertEqual(versions, active.map { [$0] } ?? [], "version directories", file: file, line: line)
    }

    func refusal(_ body: () throws -> Void) -> MarketplaceError? {
        do { try body() } catch let error as MarketplaceError { return error } catch { XCTFail("unexpected \(error)") }
        return nil
    }
}
