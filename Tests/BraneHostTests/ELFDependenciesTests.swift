@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// The host reads a plugin library's DT_NEEDED to preload the Swift runtime for Swift plugins
/// only (SandboxPlan.runnerEnvironment); the library is hostile, so the reader must fail closed.
final class ELFDependenciesTests: XCTestCase {
    private let built = BuildProducts.directory

    func testNeededNamesAreReadFromTheDynamicSection() throws {
        let c = built.appendingPathComponent("\(ResourceLocator.builtByCC)/libBraneSysinfo.so").path
        XCTAssertTrue(ELFDependencies.needs(c, "libc.so.6"))
        XCTAssertFalse(ELFDependencies.needs(c, "libswiftCore.so"))
        XCTAssertFalse(ELFDependencies.needs(c, "libc.so"), "a prefix of a name is not the name")
        XCTAssertTrue(ELFDependencies.needs(built.appendingPathComponent("libBraneUnits.so").path, "libswiftCore.so"))
    }

    /// Every bundled Swift plugin imports only what it uses (Package.swift, `explicitRuntimeImports`)
    /// and codes JSON without Foundation (BranePluginCodable over JSONValue), so its instances map
    /// libswiftCore and libswiftGlibc, not Foundation, Concurrency, dispatch and StringProcessing.
    func testEveryBundledSwiftPluginNeedsOnlyTheCoreRuntime() throws {
        let swiftLibraries = try FileManager.default.contentsOfDirectory(atPath: BundledPlugins.directory).compactMap { id -> String? in
            let manifest = (try? String(contentsOfFile: BundledPlugins.path("\(id)/manifest.yaml"), encoding: .utf8)) ?? ""
            let library = manifest.split(separator: "\n").first { $0.hasPrefix("library: ") }?.dropFirst("library: ".count)
            return library.map(String.init).flatMap { ELFDependencies.needs(built.appendingPathComponent($0).path, "libswiftCore.so") ? $0 : nil }
        }
        XCTAssertEqual(swiftLibraries.count, 13, "the bundled Swift plugins: \(swiftLibraries.sorted())")
        for library in swiftLibraries {
            // (A debug build also links libswiftSwiftOnoneSupport.)
            let needed = ELFDependencies.needed(built.appendingPathComponent(library).path).filter { $0.hasPrefix("lib") && !$0.hasPrefix("libc.so") && !$0.hasPrefix("libm.so") && $0 != "libswiftSwiftOnoneSupport.so" }
            XCTAssertEqual(needed, ["libswiftCore.so", "libswiftGlibc.so"], library)
        }
    }

    func testOnlyASwiftPluginsRunnerPreloadsTheSwiftRuntime() throws {
        let swift = try SandboxPlan(bundle: try PluginBundle.open(BundledPlugins.path("com.brane.units")))
        // Each runtime library the plugin names, from the host's runtime directory, and nothing else.
        let runtime = try XCTUnwrap(SandboxPlan.swiftRuntimeDirectory)
        let preload = try XCTUnwrap(swift.runnerEnvironment.first { $0.hasPrefix("LD_PRELOAD=") }).dropFirst("LD_PRELOAD=".count).split(separator: " ").map(String.init)
        let needed = ELFDependencies.needed(built.appendingPathComponent("libBraneUnits.so").path)
        XCTAssertTrue(needed.contains("libswiftCore.so") && needed.contains("libc.so.6"), "\(needed)")
        XCTAssertEqual(preload, needed.filter { !["libm.so.6", "libc.so.6"].contains($0) }.map { "\(runtime)/\($0)" },
                       "the runtime's libraries in the plugin's order, the system's left to the loader: \(swift.runnerEnvironment)")
        let c = try SandboxPlan(bundle: try PluginBundle.open(BundledPlugins.path("com.brane.sysinfo")))
        XCTAssertEqual(c.runnerEnvironment, ["SWIFT_BACKTRACE=enable=no"])

        // A Swift plugin that ships its own runtime beside its library keeps it: nothing is preloaded.
        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.copyItem(atPath: "\(BundledPlugins.path("com.brane.units"))/manifest.yaml", toPath: directory.appendingPathComponent("manifest.yaml").path)
        try FileManager.default.copyItem(at: built.appendingPathComponent("libBraneUnits.so"), to: directory.appendingPathComponent("libBraneUnits.so"))
        XCTAssertTrue(try SandboxPlan(bundle: try PluginBundle.open(directory.path)).runnerEnvironment.contains { $0.hasPrefix("LD_PRELOAD=") })
        try Data().write(to: directory.appendingPathComponent("libswiftCore.so"))
        XCTAssertEqual(try SandboxPlan(bundle: try PluginBundle.open(directory.path)).runnerEnvironment, ["SWIFT_BACKTRACE=enable=no"])
    }

    /// Truncations and corruptions of a real library: never a crash, a hang or a read past a bound.
    func testAHostileLibraryYieldsNothingRatherThanAnythingWrong() throws {
        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = Array(try Data(contentsOf: built.appendingPathComponent("libBraneUnits.so")))
        let file = directory.appendingPathComponent("lib.so")
        func needs(_ bytes: [UInt8]) throws -> Bool {
            try Data(bytes).write(to: file)
            return ELFDependencies.needs(file.path, "libswiftCore.so")
        }
        XCTAssertFalse(try needs([]))
        XCTAssertFalse(try needs(Array("#!/bin/sh\n".utf8)))
        XCTAssertFalse(try needs(Array(original.prefix(63))))
        for cut in [64, 200, 4096] { _ = try needs(Array(original.prefix(cut))) }
        var state: UInt64 = 42
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<8 {
                state = state &* 6_364_136_223_846_793_005 &+ 1
                bytes[Int(state >> 33) % min(bytes.count, 8192)] = UInt8(truncatingIfNeeded: state >> 17)
            }
            _ = try needs(bytes)
        }
        // Offsets at and past 2^63 (FileHandle.seek trapped on them), and a PT_DYNAMIC of 65,534
        // DT_NEEDED entries pointing into 1 MiB without a NUL (every name built whole: 64 GiB).
        func patched(_ edit: (inout [UInt8]) -> Void) -> [UInt8] { var bytes = original; edit(&bytes); return bytes }
        func put(_ value: UInt64, _ bytes: inout [UInt8], at: Int) { for i in 0..<8 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) } }
        for offset: UInt64 in [1 << 63, 0xFFFF_FFFF_FFFF_FFF0] {
            XCTAssertFalse(try needs(patched { put(offset, &$0, at: 32) }))
        }
        var flood = [UInt8](repeating: 0, count: 64 + 56 * 2)
        flood.replaceSubrange(0..<6, with: [0x7F, 0x45, 0x4C, 0x46, 2, 1])
        put(64, &flood, at: 32); flood[54] = 56; flood[56] = 2
        put(1, &flood, at: 64); put(0, &flood, at: 64 + 8); put(0, &flood, at: 64 + 16); put(1 << 30, &flood, at: 64 + 32)  // PT_LOAD
        put(2, &flood, at: 120); put(1 << 20, &flood, at: 120 + 8); put(1 << 20, &flood, at: 120 + 32)                      // PT_DYNAMIC
        var dynamic = [UInt8](repeating: 0, count: 1 << 20)
        for at in stride(from: 0, to: dynamic.count - 32, by: 16) { put(1, &dynamic, at: at); put(0, &dynamic, at: at + 8) }
        put(5, &dynamic, at: dynamic.count - 32); put(2 << 20, &dynamic, at: dynamic.count - 24)
        put(10, &dynamic, at: dynamic.count - 16); put(1 << 20, &dynamic, at: dynamic.count - 8)
        let started = ContinuousClock.now
        XCTAssertFalse(try needs(flood + [UInt8](repeating: 0, count: (1 << 20) - flood.count) + dynamic + [UInt8](repeating: 0x41, count: 1 << 20)))
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
        // A FIFO, or a link to one, is neither opened for reading nor waited on.
        XCTAssertEqual(mkfifo(directory.appendingPathComponent("fifo.so").path, 0o644), 0)
        XCTAssertFalse(ELFDependencies.needs(directory.appendingPathComponent("fifo.so").path, "libswiftCore.so"))
        XCTAssertFalse(ELFDependencies.needs(directory.appendingPathComponent("missing.so").path, "libswiftCore.so"))
    }

    /// The CLI links the Swift runtime in, so it cannot ask the loader where the toolchain's is:
    /// the build records it (ToolchainPlugin), and it must be the one this process runs on.
    func testTheStaticCLIRunsASwiftPluginOnTheToolchainsRuntime() throws {
        XCTAssertEqual(toolchainSwiftRuntimeDirectory, SandboxPlan.swiftRuntimeDirectory)
        let needed = ELFDependencies.needed(BuildProducts.brane.path)
        XCTAssertFalse(needed.isEmpty)
        XCTAssertFalse(needed.contains { $0.hasPrefix("libswift") || $0.hasPrefix("libFoundation") }, "\(needed)")
        XCTAssertFalse(needed.contains { $0.hasPrefix("libcurl") }, "libcurl is loaded on first use (Sources/CCurl): \(needed)")
        let home = BraneHome(root: FileManager.default.temporaryDirectory.appendingPathComponent("brane-static-\(UUID().uuidString)").path)
        defer { try? FileManager.default.removeItem(atPath: home.root) }
        for zygote in ["1", "0"] {
            let run = try CLI.run(["plugin", "run", BundledPlugins.path("com.brane.units"), "tools/call", "--input",
                                   #"{"name":"convert_units","arguments":{"value":5,"from":"mg","to":"g"}}"#],
                                  home: home, environment: ["BRANE_ZYGOTE": zygote])
            XCTAssertEqual(run.status, 0, "BRANE_ZYGOTE=\(zygote): \(run.stderr)")
            XCTAssertTrue(run.stdout.contains("5 mg = 0.005 g"), run.stdout)
        }
    }

    /// Red team: with the toolchain's runtime gone, a Swift plugin died at dlopen, reported as the
    /// plugin's death, and `doctor` said nothing. It is refused as the host's problem (exit 4),
    /// naming the directory, and `doctor` shows it; C plugins still run.
    func testWithoutTheToolchainsRuntimeASwiftPluginIsRefusedAsTheHostsProblem() throws {
        try XCTSkipIf(geteuid() != 0, "hiding the toolchain's runtime takes a mount namespace")
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("brane-no-runtime-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let home = BraneHome(root: empty + "/home")
        func hidden(_ arguments: [String]) throws -> CLI.Run {
            try CLI.capture("/usr/bin/unshare", ["-m", "--propagation", "private", "sh", "-c",
                                                 #"mount --bind "$0" "$1" && shift && exec "$@""#, empty, toolchainSwiftRuntimeDirectory,
                                                 BuildProducts.brane.path] + arguments, environment: ["BRANE_HOME": home.root])
        }
        let swift = try hidden(["plugin", "run", BundledPlugins.path("com.brane.units"), "tools/call", "--input", "{}"])
        XCTAssertEqual(swift.status, 4, swift.stderr)
        XCTAssertTrue(swift.stderr.contains("com.brane.units is a Swift plugin and needs the Swift runtime, which is not in \(toolchainSwiftRuntimeDirectory)"), swift.stderr)
        let c = try hidden(["plugin", "run", BundledPlugins.path("com.brane.sysinfo"), "sensor/sample"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let doctor = try hidden(["doctor"])
        XCTAssertTrue(doctor.stdout.contains("swift runtime: not found in \(toolchainSwiftRuntimeDirectory)"), doctor.stdout)
        XCTAssertTrue(try CLI.run(["doctor"], home: home).stdout.contains("swift runtime: \(toolchainSwiftRuntimeDirectory)"))
    }

    /// Host files are read into a buffer sized by the file and grown as it fills, never past the
    /// limit: a file at the limit is read whole, one byte more is refused, and /proc (size 0) is read.
    func testBoundedReadsTakeTheWholeFileUpToTheLimitAndNoMore() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("brane-bounded-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        for size in [0, 1, 4095, 4096, 4097, 10_000] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            XCTAssertEqual(readRegularFile(path, limit: 10_000), bytes, "size \(size)")
            XCTAssertEqual(readRegularFile(path, limit: size), bytes, "size \(size) at its limit")
            if size > 0 { XCTAssertNil(readRegularFile(path, limit: size - 1), "size \(size) over its limit") }
        }
        let status = try XCTUnwrap(readRegularFile("/proc/self/status", limit: 1 << 20))
        XCTAssertTrue(String(decoding: status, as: UTF8.self).contains("\nVmRSS:"), "read past /proc's size of 0")
        XCTAssertNil(readRegularFile("/proc/self/status", limit: 16), "a /proc file over the limit")
    }
}
