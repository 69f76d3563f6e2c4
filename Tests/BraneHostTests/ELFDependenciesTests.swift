@testable import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// The host reads a plugin library's DT_NEEDED to preload the Swift runtime for Swift plugins
/// only (SandboxPlan.runnerEnvironment); the library is hostile, so the reader must fail closed.
final class ELFDependenciesTests: XCTestCase {
    private let built = BuildProducts.directory

    func testNeededNamesAreReadFromTheDynamicSection() throws {
        let c = try XCTUnwrap(ELFDependencies.needed(built.appendingPathComponent("\(ResourceLocator.builtByCC)/libBraneSysinfo.so").path))
        XCTAssertEqual(c, ["libc.so.6"])
        let swift = try XCTUnwrap(ELFDependencies.needed(built.appendingPathComponent("libBraneUnits.so").path))
        XCTAssertTrue(swift.contains("libswiftCore.so"), "\(swift)")
    }

    func testOnlyASwiftPluginsRunnerPreloadsTheSwiftRuntime() throws {
        let swift = try SandboxPlan(bundle: try PluginBundle.open(BundledPlugins.path("com.brane.units")))
        XCTAssertTrue(swift.runnerEnvironment.contains { $0.hasPrefix("LD_PRELOAD=/") && $0.hasSuffix("/libswiftCore.so") }, "\(swift.runnerEnvironment)")
        let c = try SandboxPlan(bundle: try PluginBundle.open(BundledPlugins.path("com.brane.sysinfo")))
        XCTAssertEqual(c.runnerEnvironment, ["SWIFT_BACKTRACE=enable=no"])
    }

    /// Truncations and corruptions of a real library: never a crash, a hang or a read past a bound.
    func testAHostileLibraryYieldsNothingRatherThanAnythingWrong() throws {
        let directory = BundledPlugins.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = Array(try Data(contentsOf: built.appendingPathComponent("libBraneUnits.so")))
        let file = directory.appendingPathComponent("lib.so")
        func needed(_ bytes: [UInt8]) throws -> [String]? {
            try Data(bytes).write(to: file)
            return ELFDependencies.needed(file.path)
        }
        XCTAssertNil(try needed([]))
        XCTAssertNil(try needed(Array("#!/bin/sh\n".utf8)))
        XCTAssertNil(try needed(Array(original.prefix(63))))
        for cut in [64, 200, 4096] { _ = try needed(Array(original.prefix(cut))) }
        var state: UInt64 = 42
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<8 {
                state = state &* 6_364_136_223_846_793_005 &+ 1
                bytes[Int(state >> 33) % min(bytes.count, 8192)] = UInt8(truncatingIfNeeded: state >> 17)
            }
            _ = try needed(bytes)
        }
        XCTAssertNil(ELFDependencies.needed(directory.appendingPathComponent("missing.so").path))
    }
}
