import BraneHost
import Foundation

/// Marketplace figures: adding and searching a large index, a 5 MiB install end to end (with the
/// share spent hashing and verifying). `brane plugin list` with 100 installs is in StartupBench.
func marketplaceBenchmarks() throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("brane-bench-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let key = try Ed25519Key.generate()

    func plugin(_ id: String, dataBytes: Int = 0) throws -> String { try unitsCopy(id, in: scratch, dataBytes: dataBytes) }

    print("\n## Marketplace\n")
    print("| what | median (IQR) | target |")
    print("|---|---|---|")

    // Search over a generated 10,000-plugin index, signed and cached in the registry.
    let big = "\(scratch)/big"
    try FileManager.default.createDirectory(atPath: big, withIntermediateDirectories: true)
    let words = ["heart", "sleep", "glucose", "legal", "deadline", "invoice", "ledger", "scan", "port", "disk"]
    let plugins = (0..<10_000).map { i in
        MarketplaceIndex.Plugin(id: "org.example.p\(i)", releases: [MarketplaceIndex.Release(
            version: SemanticVersion("1.\(i % 7).0")!, kind: .synapse, abi: .host, tier: .sensitive,
            description: "Plugin \(i) for \(words[i % words.count]) and \(words[(i / 10) % words.count]) work",
            tools: ["tool_\(i)"], archive: "archives/p\(i).tar", sha256: String(repeating: "0", count: 64), size: 1, yanked: false)])
    }
    let index = MarketplaceIndex(name: "big", version: 1, expires: Date().addingTimeInterval(86_400), plugins: plugins)
    let text = Array(try index.yaml().utf8)
    try Data(text).write(to: URL(fileURLWithPath: "\(big)/index.yaml"))
    try (Data(try key.sign(text)).base64EncodedString()).write(toFile: "\(big)/index.yaml.sig", atomically: true, encoding: .utf8)
    // Each add into a home of its own; the first one's is searched below.
    let homes = try (0..<5).map { try Marketplace(home: BraneHome(root: "\(scratch)/search-home-\($0)")) }
    let add = Stats(try homes.map { home in try nanoseconds { _ = try home.addIndex(name: "big", location: big, publicKeyPEM: key.publicKeyPEM) } })
    let searchHome = homes[0]
    print("| index add: fetch, verify, parse and cache a 10,000-plugin index (\(text.count / 1024) KiB), into 5 new homes | \(add.describe(1e6, "ms", digits: 0)) | ≤ 200 ms |")
    Report.record("marketplace.indexAdd10k", add, scale: 1e6, unit: "ms", target: "≤ 200 ms")
    let update = Stats(try (0..<5).map { _ in try nanoseconds { try searchHome.refreshIndex("big") } })
    print("| index update: the same, checked against and replacing its cached catalog | \(update.describe(1e6, "ms", digits: 0)) | ≤ 200 ms |")
    Report.record("marketplace.indexUpdate10k", update, scale: 1e6, unit: "ms", target: "≤ 200 ms")
    let indexText = String(decoding: text, as: UTF8.self)
    let parse = Stats(try (0..<5).map { _ in try nanoseconds { _ = try MarketplaceIndex.parse(indexText, file: "index.yaml") } })
    print("| of which: parsing and validating its text (YAML to releases) | \(parse.describe(1e6, "ms", digits: 0)) | — |")
    Report.record("marketplace.indexParse10k", parse, scale: 1e6, unit: "ms")
    var hits = 0
    let queries = ["glucose", "legal deadline", "p4242", "tool_77", "nothing-matches"]
    let search = Stats(try (0..<20).flatMap { _ in try queries.map { q in try nanoseconds { hits += try searchHome.search(q).count } } })
    print("| search of the 10,000-plugin index (\(queries.count) queries × 20) | \(search.describe(1e6, "ms", digits: 2)) | ≤ 50 ms |")
    Report.record("marketplace.search10k", search, scale: 1e6, unit: "ms", target: "≤ 50 ms")

    // Install of a 5 MiB plugin, end to end, and what hashing and verifying cost of it.
    let index5 = "\(scratch)/index5"
    _ = try Publisher(indexDirectory: index5, key: key).publish([try plugin("org.example.big", dataBytes: 5 << 20)])
    let archive = try Data(contentsOf: URL(fileURLWithPath: "\(index5)/archives/org.example.big-0.1.0.tar"))
    var installs = [Double]()
    for round in 0..<15 {
        let market = try Marketplace(home: BraneHome(root: "\(scratch)/install-home-\(round)"))
        try market.addIndex(name: "i", location: index5, publicKeyPEM: key.publicKeyPEM)
        installs.append(try nanoseconds { _ = try market.install("org.example.big") })
    }
    let install = Stats(installs)
    let bytes = Array(archive)
    let hashing = Stats((0..<15).map { _ in nanoseconds { _ = SHA256.hash(bytes) } })
    let indexBytes = Array(try Data(contentsOf: URL(fileURLWithPath: "\(index5)/index.yaml")))
    let signature = Array(Data(base64Encoded: try String(contentsOfFile: "\(index5)/index.yaml.sig", encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines))!)
    let verify = Stats((0..<200).map { _ in nanoseconds { _ = key.verify(signature, of: indexBytes) } })
    print("| install of a \(String(format: "%.1f", Double(archive.count) / 1_048_576)) MiB plugin end to end (fetch, verify, unpack, validate, rename, receipt) | \(install.describe(1e6, "ms", digits: 1)) | ≤ 150 ms |")
    Report.record("marketplace.install5MiB", install, scale: 1e6, unit: "ms", target: "≤ 150 ms")
    print("| of which: SHA-256 of the archive (it is hashed once on fetch; the receipt re-hashes the unpacked files) | \(hashing.describe(1e6, "ms", digits: 1)) | — |")
    print("| of which: Ed25519 verification of the index signature | \(verify.describe(1e3, "µs", digits: 1)) | — |")

    // Start-time verification of an installed plugin (stamps trusted, as every start does), against its cold start.
    let startHome = try Marketplace(home: BraneHome(root: "\(scratch)/start-home"))
    let indexUnits = "\(scratch)/index-units"
    _ = try Publisher(indexDirectory: indexUnits, key: key).publish([try plugin("com.brane.units")])
    try startHome.addIndex(name: "i", location: indexUnits, publicKeyPEM: key.publicKeyPEM)
    try startHome.install("com.brane.units")
    let check = Stats(try (0..<200).map { _ in try nanoseconds { _ = try startHome.installedDirectory("com.brane.units") } })
    let installedPlan = try plan(try startHome.installedDirectory("com.brane.units")!)
    let cold = Stats(try (0..<50).map { _ in
        try nanoseconds {
            let instance = try PluginInstance(plan: installedPlan, runner: runner)
            _ = try instance.call(method: "ping", input: Array("{}".utf8))
            instance.stop()
        }
    })
    print("| start-time check of an installed Swift plugin against its receipt | \(check.describe(1e3, "µs", digits: 0)) "
        + "| ≤ 10 % of its cold start (\(cold.describe(1e6, "ms", digits: 2))): \(String(format: "%.1f", 100 * check.median / cold.median)) % |")

    _ = hits
}

/// A copy of com.brane.units under another id (its library is found on the search path),
/// optionally with a data file of `dataBytes` random bytes.
func unitsCopy(_ id: String, in scratch: String, dataBytes: Int = 0) throws -> String {
    let directory = "\(scratch)/src/\(id)"
    try FileManager.default.createDirectory(atPath: "\(directory)/data", withIntermediateDirectories: true)
    let manifest = try String(contentsOfFile: "\(swiftPlugin)/manifest.yaml", encoding: .utf8)
        .replacingOccurrences(of: "id: com.brane.units", with: "id: \(id)")
    try manifest.write(toFile: "\(directory)/manifest.yaml", atomically: true, encoding: .utf8)
    if dataBytes > 0 { try Data(try secureRandomBytes(dataBytes)).write(to: URL(fileURLWithPath: "\(directory)/data/blob.bin")) }
    return directory
}
