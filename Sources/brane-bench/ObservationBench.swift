import BraneHost
import Foundation
import Glibc

/// Host tools and resources (issue 16): each host tool's answer, through the dispatcher as a
/// client's call goes, from a store of 100,000 alerts and 100,000 readings against the same
/// call over a store of 100 (the size of the store must not show); and the time from an alert
/// committed to the subscriber's `notifications/resources/updated`, against a ping's round
/// trip over the same `brane mcp serve` session.
func observationBenchmarks() throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("brane-bench-observations-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let neuronFile = "\(scratch)/bench.yaml"
    try benchNeuronYAML(id: "bench", """
        specialists:
          - plugin: com.brane.neuroscientist
        sensors:
          - plugin: com.brane.sensor.memory
        scanners:
          - plugin: com.brane.scanner.machine
        host:
          tools: [latest_reading, sensor_history, assets, asset_changes, alerts, health_summary]
          resources: true

        """).write(toFile: neuronFile, atomically: true, encoding: .utf8)
    let plugins = repository.appendingPathComponent("Plugins").path
    let neuron = try NeuronLoader.load(path: neuronFile, plugins: PluginLocator(searchDirectories: [plugins])).neuron

    print("\n## Host tools and resources\n")
    print("| host tool call (dispatcher, as a client's) | 100 stored | 100,000 stored | ratio | target |")
    print("|---|---|---|---|---|")
    let small = try filledStore("\(scratch)/small", rows: 100), large = try filledStore("\(scratch)/large", rows: 100_000)
    let questions: [(String, String, JSONValue)] = [
        ("alerts", "alerts", [:]), ("alerts, limit 500", "alerts", ["limit": 500]), ("latest_reading", "latest_reading", [:]),
        ("sensor_history, 30 days → 100 points", "sensor_history", ["sensor": "com.brane.sensor.memory", "since": "30d"]),
        ("health_summary", "health_summary", [:]),
    ]
    for (label, tool, arguments) in questions {
        var medians: [Stats] = []
        for store in [small, large] {
            let dispatcher = try ToolDispatcher(neuron: neuron, runner: runner, observations: store)
            defer { dispatcher.stop() }
            for _ in 0..<20 { _ = dispatcher.call(tool, arguments: arguments) }
            medians.append(Stats(try (0..<300).map { _ in
                var answer: ToolResult?
                let elapsed = nanoseconds { answer = dispatcher.call(tool, arguments: arguments) }
                guard answer?.isError == false else { throw BenchFailure("\(tool) failed: \(answer?.text ?? "")") }
                return elapsed
            }))
        }
        print("| \(label) | \(medians[0].describe(1e6, "ms", digits: 3)) | \(medians[1].describe(1e6, "ms", digits: 3)) | "
              + "\(String(format: "%.2f", medians[1].median / medians[0].median))× | ≤ 5 ms |")
        let key = "hostTools.\(label.split(separator: ",")[0])" + (label.contains("limit 500") ? ".limit500" : "")
        Report.record(key + ".100", medians[0], scale: 1e6, unit: "ms")
        Report.record(key + ".100k", medians[1], scale: 1e6, unit: "ms", baseline: (key + ".100", medians[0]), target: "≤ 5 ms")
    }

    // Notifications, through a real `brane mcp serve` reading the store another process writes.
    let home = "\(scratch)/home"
    try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    let store = try ObservationStore(home: BraneHome(root: home))
    let session = try LineSession(["\(ResourceLocator.current.executableDirectory)/brane", "mcp", "serve", "--neuron", neuronFile, "--plugins", plugins],
                                  environment: ["BRANE_HOME=\(home)"])
    defer { session.close() }
    session.send(#"{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#)
    session.send(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
    _ = try session.await(#""id":"init""#)
    let pings = Stats(try (0..<200).map { index in
        try nanoseconds {
            session.send(#"{"jsonrpc":"2.0","id":\#(index),"method":"ping"}"#)
            _ = try session.await(#""id":\#(index),"#)
        }
    })
    session.send(#"{"jsonrpc":"2.0","id":"sub","method":"resources/subscribe","params":{"uri":"brane://bench/alerts"}}"#)
    _ = try session.await(#""id":"sub""#)
    let notified = Stats(try (0..<200).map { index in
        usleep(useconds_t.random(in: 0...20_000))   // not in step with the 20 ms poll
        return try nanoseconds {
            try store.record(StoredAlert(neuron: "bench", specialist: "com.brane.neuroscientist", alert: ["rule": "bench", "n": .number(Double(index))]))
            _ = try session.await("notifications/resources/updated")
        }
    })
    print("\n| `brane mcp serve`, one session | median (IQR) | p99 | target |")
    print("|---|---|---|---|")
    print("| ping round trip (baseline) | \(pings.describe(1e6, "ms", digits: 3)) | \(String(format: "%.3f", pings.quantile(0.99) / 1e6)) ms | — |")
    print("| alert committed → notifications/resources/updated read | \(notified.describe(1e6, "ms", digits: 1)) | \(String(format: "%.1f", notified.quantile(0.99) / 1e6)) ms | p99 ≤ 50 ms |")
    Report.record("resources.pingRoundTrip", pings, scale: 1e6, unit: "ms")
    Report.record("resources.notificationLatency", notified, scale: 1e6, unit: "ms", baseline: ("resources.pingRoundTrip", pings), target: "p99 ≤ 50 ms")
    Report.record("resources.notificationLatency.p99", value: notified.quantile(0.99) / 1e6, unit: "ms", target: "≤ 50 ms")
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A store with `rows` alerts of the bench neuron (one transaction), as many readings of its
/// sensor a minute apart up to now, and one scan.
private func filledStore(_ directory: String, rows: Int) throws -> ObservationStore {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let store = try ObservationStore(path: "\(directory)/observations.sqlite")
    let alerts = (0..<rows).map { index in
        (StoredAlert(neuron: "bench", specialist: "com.brane.neuroscientist",
                     alert: ["rule": "hrv-drop", "date": "2026-03-03", "message": "HRV fell 18% below its 7-day baseline", "n": .number(Double(index))]),
         key: "bench-\(index)")
    }
    try store.commitInbox(neuron: "bench", file: "bench", inode: 1, generation: "g", offset: 0, line: 0, batch: .init(alerts: alerts))
    let now = Date()
    try store.record(readings: (0..<rows).map { index in
        StoredReading(sensor: "com.brane.sensor.memory", takenAt: now.addingTimeInterval(-Double(rows - index) * 60),
                      reading: SensorReading(json: ["metrics": ["memory.usedPercent": .number(Double(index % 100))]]), changed: ["memory.usedPercent"])
    })
    _ = try store.recordScan(scanner: "com.brane.scanner.machine", assets: [("machine", "bench", "bench-host", ["os": "Debian"])], notes: [])
    return store
}

/// A child process spoken to in lines over pipes; every wait has a deadline.
private final class LineSession {
    private var pid: pid_t = 0
    private let input: Int32, output: Int32
    private var pending: [UInt8] = []

    init(_ arguments: [String], environment: [String]) throws {
        var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw POSIXError(.EMFILE) }
        let argv = arguments.map { strdup($0) } + [nil], envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, toChild[1])
        posix_spawn_file_actions_addclose(&actions, fromChild[0])
        guard posix_spawn(&pid, arguments[0], &actions, nil, argv, envp) == 0 else { throw POSIXError(.ENOEXEC) }
        Glibc.close(toChild[0]); Glibc.close(fromChild[1])
        (input, output) = (toChild[1], fromChild[0])
    }

    func send(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
    }

    /// The next line containing `marker` (lines before it are dropped), within 10 s.
    func await(_ marker: String) throws -> String {
        let deadline = ContinuousClock.now + .seconds(10)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            while let newline = pending.firstIndex(of: 0x0A) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                if line.contains(marker) { return line }
            }
            var reader = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            guard poll(&reader, 1, deadline.pollTimeout) > 0 else { throw BenchFailure("no line with \(marker) within 10 s") }
            let count = buffer.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            guard count > 0 else { throw BenchFailure("the server closed its output waiting for \(marker)") }
            pending += buffer[0..<count]
        }
    }

    func close() {
        Glibc.close(input)
        Glibc.close(output)
        kill(pid, SIGTERM)
        waitpid(pid, nil, 0)
    }
}
