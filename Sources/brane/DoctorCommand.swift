import ArgumentParser
import BraneHost
import Foundation

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check what this kernel and host can enforce, and what each gap means for safety.",
        discussion: "Exits 0 when every required protection is available, 4 otherwise.")

    @Flag(help: "Print JSON for scripts.") var json = false

    func run() throws {
        let checks = DoctorReport.probe()
        if json {
            print(encodeJSON(checks))
        } else {
            for check in checks.checks {
                print("\(check.ok ? "yes" : " NO")  \(check.name): \(check.detail)")
                print("     \(check.meaning)")
            }
        }
        if !checks.ready { throw ExitCode.hostProblem }
    }
}
