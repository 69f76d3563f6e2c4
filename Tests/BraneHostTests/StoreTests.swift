import BraneHost
import BraneTestSupport
import Foundation
import XCTest

/// Issue 14, point 5: every SQLite store opens the one way — concurrent first opens succeed, a
/// read-only home still answers, and errors name the file.
final class StoreTests: XCTestCase {
    private func brane(_ arguments: [String], home: String) -> Process {
        let process = Process()
        process.executableURL = BuildProducts.brane
        process.arguments = arguments
        process.environment = ["BRANE_HOME": home, "PATH": "/usr/bin:/bin"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        return process
    }

    func testConcurrentFirstOpensOfEveryStoreSucceed() throws {
        for round in 0..<3 {
            let home = Harness.temporaryDirectory(self).appendingPathComponent("home-\(round)").path
            let runs = (0..<12).flatMap { _ in
                [brane(["neuron", "alerts", "n", "--json"], home: home), brane(["sensor", "history", "com.brane.sensor.memory", "--json"], home: home),
                 brane(["plugin", "list", "--json"], home: home)]
            }
            let errors = runs.map { process in
                let pipe = Pipe()
                process.standardError = pipe
                return pipe
            }
            for process in runs { try process.run() }
            let said = errors.map { String(decoding: $0.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
            for process in runs { process.waitUntilExit() }
            let failed = zip(runs, said).filter { $0.0.terminationStatus != 0 }.map { "\($0.0.arguments ?? []) → \($0.0.terminationStatus): \($0.1)" }
            XCTAssertEqual(failed, [], "round \(round)")
        }
    }

    func testReadOnlyCommandsWorkOnAReadOnlyHome() throws {
        try XCTSkipIf(geteuid() != 0, "a read-only bind mount needs root (CI runs as root)")
        let home = Harness.temporaryDirectory(self).appendingPathComponent("home").path
        for process in [brane(["neuron", "alerts", "n"], home: home), brane(["sensor", "history", "com.brane.sensor.memory"], home: home)] {
            try process.run()
            process.waitUntilExit()
        }
        let binary = BuildProducts.brane.path
        let script = "mount --bind -o ro \(home) \(home) || exit 99\n"
            + "\(binary) neuron alerts n --json || echo FAILED\n\(binary) sensor history com.brane.sensor.memory --json || echo FAILED\n"
        let run = try CLI.capture("/usr/bin/unshare", ["--mount", "sh", "-c", script], environment: ["BRANE_HOME": home])
        try XCTSkipIf(run.status == 99, "no mount namespace here: \(run.stderr)")
        XCTAssertFalse(run.stdout.contains("FAILED"), run.stdout + run.stderr)
    }

    func testAStoreErrorNamesTheFile() throws {
        let path = Harness.temporaryDirectory(self).appendingPathComponent("observations.sqlite").path
        try Data("not a database, not at all; ".utf8 + Data(count: 4096)).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ObservationStore(path: path)) { XCTAssertTrue("\($0)".contains(path), "\($0)") }
    }
}
