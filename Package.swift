// swift-tools-version:6.0
import PackageDescription

// Plugins and test fixtures are dynamic libraries loaded by `brane-sandbox`, never linked into the host.
func pluginLibrary(_ name: String) -> Product { .library(name: name, type: .dynamic, targets: [name]) }

/// A bundled plugin lives in Plugins/<id>/: its manifest, README, source and Tests/.
/// Swift ones build on BranePluginKit as SwiftPM targets. C ones are built by their Makefile
/// (CBuildPlugin) and Rust ones by cargo (scripts/build-rust-plugins), so only their tests are
/// SwiftPM's.
struct BundledPlugin {
    enum Language { case swift, c, rust }
    var name: String
    var id: String
    var language = Language.swift
    var dependencies: [Target.Dependency] = []

    var targets: [Target] {
        (language == .swift ? [library] : []) + [tests]
    }

    private var library: Target {
        .target(name: name, dependencies: dependencies, path: "Plugins/\(id)", exclude: ["manifest.yaml", "README.md", "Tests"],
                swiftSettings: explicitRuntimeImports)
    }

    private var tests: Target {
        .testTarget(name: "\(name)Tests", dependencies: ["BraneHost", "BraneTestSupport"], path: "Plugins/\(id)/Tests",
                    exclude: testExcludes[id] ?? [])
    }
}

/// Test data beside a plugin's tests that is not Swift source.
let testExcludes: [String: [String]] = [
    "com.brane.neuroscientist": ["make-dataset", "hrv-90-days.jsonl"],
    "com.brane.scanner.containers": ["recorded"],
]

/// A Swift module imports _Concurrency and _StringProcessing implicitly, so a plugin library links
/// (and every instance maps) libswift_Concurrency, libdispatch, libswift_StringProcessing and
/// libswift_RegexParser whether it uses them or not. The kit and the bundled plugins import what
/// they use: libswiftCore and libswiftGlibc.
let explicitRuntimeImports: [SwiftSetting] = [
    .unsafeFlags(["-Xfrontend", "-disable-implicit-concurrency-module-import", "-Xfrontend", "-disable-implicit-string-processing-module-import"]),
]

let bundledPlugins = [
    BundledPlugin(name: "BraneSysinfo", id: "com.brane.sysinfo", language: .c),
    BundledPlugin(name: "BraneUnits", id: "com.brane.units", dependencies: ["BranePluginCodable"]),
    BundledPlugin(name: "BraneMedterms", id: "com.brane.medterms", language: .c),
    BundledPlugin(name: "BraneFetch", id: "com.brane.fetch", dependencies: ["BranePluginCodable", "CCurl"]),
    BundledPlugin(name: "BraneSensorCompute", id: "com.brane.sensor.compute", dependencies: ["BranePluginKit", "BraneProcFS"]),
    BundledPlugin(name: "BraneSensorMemory", id: "com.brane.sensor.memory", dependencies: ["BranePluginKit", "BraneProcFS"]),
    BundledPlugin(name: "BraneSensorStorage", id: "com.brane.sensor.storage", dependencies: ["BranePluginKit", "BraneProcFS"]),
    BundledPlugin(name: "BraneSensorNetwork", id: "com.brane.sensor.network", dependencies: ["BranePluginKit", "BraneProcFS"]),
    BundledPlugin(name: "BraneSensorServices", id: "com.brane.sensor.services", dependencies: ["BranePluginKit", "BraneProcFS"]),
    BundledPlugin(name: "BraneScannerMachine", id: "com.brane.scanner.machine", dependencies: ["BranePluginCodable", "BraneProcFS"]),
    BundledPlugin(name: "BraneScannerProcesses", id: "com.brane.scanner.processes", dependencies: ["BranePluginCodable", "BraneProcFS"]),
    BundledPlugin(name: "BraneScannerPorts", id: "com.brane.scanner.ports", dependencies: ["BranePluginCodable", "BraneProcFS"]),
    BundledPlugin(name: "BraneScannerContainers", id: "com.brane.scanner.containers", dependencies: ["BranePluginCodable", "BraneProcFS"]),
    BundledPlugin(name: "BraneNeuroscientist", id: "com.brane.neuroscientist", dependencies: ["BranePluginCodable", "BraneBiometrics"]),
    BundledPlugin(name: "BraneCoach", id: "com.brane.coach", dependencies: ["BranePluginCodable", "BraneBiometrics"]),
    BundledPlugin(name: "BraneReadability", id: "com.brane.readability", language: .rust),
]

let package = Package(
    name: "Brane",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "brane", targets: ["brane"]),
        .executable(name: "fault-wrapper", targets: ["fault-wrapper"]),
        .library(name: "BranePluginKit", targets: ["BranePluginKit"]),
        .library(name: "BranePluginCodable", targets: ["BranePluginCodable"]),
    ] + bundledPlugins.filter { $0.language == .swift }.map { pluginLibrary($0.name) } + [
        pluginLibrary("HostileFixture"),
        pluginLibrary("HostileConstructorFixture"),
        pluginLibrary("BadMagicFixture"),
        pluginLibrary("MissingEntryFixture"),
        pluginLibrary("FutureABIFixture"),
        pluginLibrary("TallyFixture"),
        pluginLibrary("UnitsAt0_2_0"),
        pluginLibrary("UnitsAt1_0_0"),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
    ],
    targets: [
        // The contract: the C header every plugin is built against, and the one ABI check.
        .target(name: "PluginABI", path: "Sources/PluginABI"),
        // System libraries, wrapped so nothing else spells a link flag.
        .systemLibrary(name: "CSeccomp", path: "Sources/CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // libcurl (libcurl4-openssl-dev), loaded on first use rather than linked: most commands never fetch.
        .target(name: "CCurl", path: "Sources/CCurl"),
        // Raw Linux calls Swift cannot make directly (variadic prctl, syscalls without glibc wrappers)
        // and the host<->runner wire format shared with the C runner.
        .target(name: "CBraneSystem", path: "Sources/CBraneSystem"),
        // The sandbox runner (Sources/brane-sandbox, one process per plugin instance) and the
        // bundled C plugins, built by cc into the host's resource bundle: no Swift runtime in them.
        .plugin(name: "CBuildPlugin", capability: .buildTool(), path: "Sources/CBuildPlugin"),
        // The host library: manifests, profiles, sandbox policy, supervisor, marketplace.
        .target(name: "BraneHost",
                dependencies: ["PluginABI", "BraneJSON", "CBraneSystem", "CSeccomp", "COpenSSL", "CCurl", "Yams",
                               .product(name: "GRDB", package: "GRDB.swift"),
                               .product(name: "SystemPackage", package: "swift-system"),
                               .product(name: "MCP", package: "swift-sdk"),
                               // MCP's Streamable HTTP transport (`mcp serve --http`).
                               .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio")],
                path: "Sources/Host", plugins: ["CBuildPlugin", "ToolchainPlugin"]),
        // Where the building toolchain keeps the Swift runtime Swift plugins load.
        .plugin(name: "ToolchainPlugin", capability: .buildTool(), path: "Sources/ToolchainPlugin"),
        .executableTarget(name: "brane",
                          dependencies: ["BraneHost", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/brane", plugins: ["GitRevisionPlugin"]),
        // The build's git revision, for `brane --version`.
        .plugin(name: "GitRevisionPlugin", capability: .buildTool(), path: "Sources/GitRevisionPlugin"),
        // Benchmarks against baselines measured in the same run (docs/performance.md).
        .executableTarget(name: "brane-bench", dependencies: ["BraneHost", "PluginABI", "CBraneSystem"],
                          path: "Sources/brane-bench"),
        // Swift helper that makes a Swift plugin a few lines.
        // The JSON value type host and plugins share; no Foundation, so plugins stay small.
        .target(name: "BraneJSON", path: "Sources/JSON", swiftSettings: explicitRuntimeImports),
        .target(name: "BranePluginKit", dependencies: ["PluginABI", "BraneJSON"], path: "Sources/PluginKit", swiftSettings: explicitRuntimeImports),
        .target(name: "BranePluginCodable", dependencies: ["BranePluginKit"], path: "Sources/PluginCodable", swiftSettings: explicitRuntimeImports),

        // Shared by the two coaching specialists, linked statically into each.
        .target(name: "BraneBiometrics", path: "Plugins/Shared/Biometrics", swiftSettings: explicitRuntimeImports),
        // /proc reading and the sensor reading shape, shared by the sensors and scanners.
        .target(name: "BraneProcFS", dependencies: ["BranePluginKit"], path: "Plugins/Shared/ProcFS", swiftSettings: explicitRuntimeImports),

        // Hostile fixtures: plugins that attack the sandbox, and plugins with a broken ABI.
        .target(name: "HostileFixture", dependencies: ["PluginABI"], path: "Tests/Fixtures/Hostile", exclude: ["manifest.yaml"], publicHeadersPath: "."),
        .target(name: "HostileConstructorFixture", dependencies: ["PluginABI"], path: "Tests/Fixtures/HostileConstructor", publicHeadersPath: "."),
        .target(name: "BadMagicFixture", dependencies: ["PluginABI"], path: "Tests/Fixtures/BadMagic", publicHeadersPath: "."),
        .target(name: "MissingEntryFixture", path: "Tests/Fixtures/MissingEntry", publicHeadersPath: "."),
        .target(name: "FutureABIFixture", dependencies: ["PluginABI"], path: "Tests/Fixtures/FutureABI", publicHeadersPath: "."),
        // A specialist whose state is a count: what a replay gets wrong shows in its alerts.
        .target(name: "TallyFixture", dependencies: ["PluginABI"], path: "Tests/Fixtures/Tally", exclude: ["manifest.yaml"], publicHeadersPath: "."),
        // Runs brane, or the runner alone, on a "kernel" without Landlock or namespaces (fail-closed tests).
        .executableTarget(name: "fault-wrapper", path: "Tests/Fixtures/FaultWrapper"),
        // com.brane.units built at the versions the marketplace tests upgrade to.
        .target(name: "UnitsAt0_2_0", dependencies: ["BranePluginCodable"], path: "Tests/Fixtures/UnitsAt0_2_0"),
        .target(name: "UnitsAt1_0_0", dependencies: ["BranePluginCodable"], path: "Tests/Fixtures/UnitsAt1_0_0"),

        // Helpers shared by the test targets.
        .target(name: "BraneTestSupport", dependencies: ["BraneHost"], path: "Tests/Support"),
        .testTarget(name: "BraneJSONTests", dependencies: ["BraneJSON"], path: "Tests/BraneJSONTests"),
        .testTarget(name: "BranePluginCodableTests", dependencies: ["BranePluginCodable"], path: "Tests/BranePluginCodableTests"),
        .testTarget(name: "BraneHostTests", dependencies: ["BraneHost", "BraneTestSupport", "CBraneSystem"], path: "Tests/BraneHostTests"),
        .testTarget(name: "MarketplaceTests", dependencies: ["BraneHost", "BraneTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
                    path: "Tests/MarketplaceTests"),
    ] + bundledPlugins.flatMap(\.targets)
)

// The CLI links the Swift runtime and Foundation in: bound at start-up from 54 shared libraries,
// they cost it more than its own work (docs/performance.md, "The CLI's start-up and the index"). The modules
// were compiled against the shared Foundation, whose link entries do not name what the static one
// needs, so the whole group is named here. FoundationNetworking's calls into libcurl go to CCurl,
// which loads libcurl when one is made. Plugins and their runner never load the CLI.
let staticRuntime = ["FoundationNetworking", "_CFURLSessionInterface", "Foundation", "CoreFoundation",
                     "FoundationInternationalization", "FoundationEssentials", "_FoundationICU", "_FoundationCShims",
                     "_FoundationCollections", "swiftDispatch", "dispatch", "BlocksRuntime", "swiftSynchronization",
                     "swift_StringProcessing", "swift_RegexParser", "swiftRegexBuilder", "swift_Concurrency",
                     "swiftGlibc", "swift_Builtin_float", "swiftCore"]
package.targets.first { $0.name == "brane" }!.linkerSettings = [
    .unsafeFlags(["-static-stdlib", "-Xlinker", "--start-group"] + staticRuntime.map { "-l\($0)" } + ["-Xlinker", "--end-group", "-lstdc++", "-Xlinker", "--no-export-dynamic"]),
]
