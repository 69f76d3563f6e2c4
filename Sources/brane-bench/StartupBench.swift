import BraneHost
import Foundation
import Glibc

/// How long the CLI takes to be useful, against the same run's posix_spawn + wait of /bin/true:
/// `brane --version` (the process alone), `brane plugin list` with 100 plugins installed, and
/// `brane mcp serve` from exec to its answer to tools/list.
func startupBenchmarks() throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("brane-bench-startup-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let brane = "\(ResourceLocator.current.executableDirectory)/brane"
    let home = try installedHundred(in: scratch)
    let environment = ["BRANE_HOME=\(home.root)"]

    print("\n## Start-up of the CLI (exec → useful)\n")
    print("| what | median (IQR) | vs. spawn of /bin/true | target |")
    print("|---|---|---|---|")
    let trivial = Stats((0..<50).map { _ in spawnAndWait(["/bin/true"], environment: []) })
    print("| posix_spawn + wait of /bin/true (baseline) | \(trivial.describe(1e6, "ms", digits: 2)) | 1.00× | — |")
    Report.record("startup.spawnTrue", trivial, scale: 1e6, unit: "ms")
    let rows: [(String, String, [String], String)] = [
        ("`brane --version`, exec to exit", "startup.version", [brane, "--version"], "—"),
        ("`brane plugin list`, exec to exit, 100 plugins installed", "startup.pluginList100", [brane, "plugin", "list"], "≤ 15 ms"),
    ]
    for (name, key, arguments, target) in rows {
        let figure = Stats((0..<30).map { _ in spawnAndWait(arguments, environment: environment) })
        print("| \(name) | \(figure.describe(1e6, "ms", digits: 1)) | \(String(format: "%.1f", figure.median / trivial.median))× | \(target) |")
        Report.record(key, figure, scale: 1e6, unit: "ms", baseline: ("startup.spawnTrue", trivial), target: target == "—" ? nil : target)
    }

    // A tier-0 neuron with one tool; the client writes initialize, initialized and tools/list at once.
    let neuron = "\(scratch)/neuron.yaml"
    try benchNeuronYAML(id: "bench", "tools:\n  - plugin: com.brane.units\n").write(toFile: neuron, atomically: true, encoding: .utf8)
    let session = Array("""
        {"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}
        {"jsonrpc":"2.0","method":"notifications/initialized"}
        {"jsonrpc":"2.0","id":2,"method":"tools/list"}

        """.utf8)
    let serve = [brane, "mcp", "serve", "--neuron", neuron, "--plugins", repository.appendingPathComponent("Plugins").path]
    let answered = Stats(try (0..<30).map { _ in try untilAnswered(serve, environment: environment, input: session, answerID: 2) })
    print("| `brane mcp serve`, exec to its tools/list answer | \(answered.describe(1e6, "ms", digits: 1)) | \(String(format: "%.1f", answered.median / trivial.median))× | ≤ 20 ms |")
    Report.record("startup.mcpServeToolsList", answered, scale: 1e6, unit: "ms", baseline: ("startup.spawnTrue", trivial), target: "≤ 20 ms")
}

/// A home with 100 copies of com.brane.units installed from a signed index.
private func installedHundred(in scratch: String) throws -> BraneHome {
    let key = try Ed25519Key.generate()
    let sources = try (0..<100).map { try unitsCopy("org.example.list\($0)", in: scratch) }
    _ = try Publisher(indexDirectory: "\(scratch)/index", key: key).publish(sources)
    let home = BraneHome(root: "\(scratch)/home")
    let market = try Marketplace(home: home)
    try market.addIndex(name: "i", location: "\(scratch)/index", publicKeyPEM: key.publicKeyPEM)
    for i in 0..<100 { try market.install("org.example.list\(i)") }
    return home
}

/// posix_spawn + waitpid, output to /dev/null (Foundation's Process polls for exit): nanoseconds.
func spawnAndWait(_ arguments: [String], environment: [String]) -> Double {
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    defer { posix_spawn_file_actions_destroy(&actions) }
    return nanoseconds {
        var pid: pid_t = 0
        posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        waitpid(pid, nil, 0)
    }
}

/// Nanoseconds from posix_spawn to the line on standard output answering `answerID`; the
/// process then gets end of input and is waited for, outside the figure.
private func untilAnswered(_ arguments: [String], environment: [String], input: [UInt8], answerID: Int) throws -> Double {
    var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0]
    guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw POSIXError(.EMFILE) }
    let argv = arguments.map { strdup($0) } + [nil]
    let envp = environment.map { strdup($0) } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
    posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addclose(&actions, toChild[1])
    posix_spawn_file_actions_addclose(&actions, fromChild[0])
    defer { posix_spawn_file_actions_destroy(&actions) }
    var pid: pid_t = 0
    var output = [UInt8]()
    let marker = Array("\"id\":\(answerID)".utf8)
    let elapsed = nanoseconds {
        posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        close(toChild[0]); close(fromChild[1])
        _ = input.withUnsafeBytes { write(toChild[1], $0.baseAddress, $0.count) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        // Every wait has a deadline: a server that never answers ends the figure, not the run.
        let deadline = ContinuousClock.now + .seconds(10)
        var reader = pollfd(fd: fromChild[0], events: Int16(POLLIN), revents: 0)
        while !contains(output[...], marker), poll(&reader, 1, deadline.pollTimeout) > 0 {
            let count = buffer.withUnsafeMutableBytes { read(fromChild[0], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            output += buffer[0..<count]
        }
    }
    close(toChild[1])
    close(fromChild[0])
    kill(pid, SIGTERM)
    waitpid(pid, nil, 0)
    guard contains(output[...], marker) else { throw POSIXError(.ETIMEDOUT) }
    return elapsed
}

private func contains(_ text: ArraySlice<UInt8>, _ marker: [UInt8]) -> Bool {
    text.indices.contains { i in text[i...].starts(with: marker) }
}
