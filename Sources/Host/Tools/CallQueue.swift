import Foundation

/// The calls waiting for one plugin, served in order by one worker thread per instance. Each
/// plugin has its own queue, so a saturated tool never delays another one's calls (they used to
/// share one dispatch pool, and 64 slow calls of one tool held an idle tool's call for 14 s).
/// Bounded: past `limit` waiting calls a new one is refused at once rather than queued.
final class CallQueue: @unchecked Sendable {
    /// One call: what to run on a free instance, and where its outcome goes. `finish` runs
    /// exactly once, on a worker's thread — or, for a call cancelled while it waits, on the
    /// canceller's.
    struct Job {
        var cancellation: CallCancellation
        var run: (SupervisedPlugin, CallCancellation) -> ToolResult
        var finish: (ToolResult) -> Void
    }

    let pluginID: String
    let instances: [SupervisedPlugin]
    let limit: Int
    private let condition = NSCondition()
    private var waiting: [Job] = []
    private var head = 0
    private var started = false
    private var stopping = false

    init(pluginID: String, instances: [SupervisedPlugin], limit: Int = 256) {
        precondition(!instances.isEmpty)
        (self.pluginID, self.instances, self.limit) = (pluginID, instances, limit)
    }

    /// Queues `job`; false when `limit` calls already wait or the queue stopped (then `finish` is not called).
    func submit(_ job: Job) -> Bool {
        condition.lock()
        guard !stopping, waiting.count - head < limit else {
            condition.unlock()
            return false
        }
        if !started {
            started = true
            for plugin in instances {
                let thread = Thread { self.serve(plugin) }   // holds the queue until `stop`
                thread.name = "calls:\(pluginID)"
                thread.start()
            }
        }
        waiting.append(job)
        condition.signal()
        condition.unlock()
        let cancellation = job.cancellation
        cancellation.whenCancelled { [weak self] in self?.withdraw(cancellation) }
        return true
    }

    /// Takes a cancelled call out of the queue if it still waits, and finishes it (as cancelled).
    private func withdraw(_ cancellation: CallCancellation) {
        let job = condition.withLock { () -> Job? in
            guard let index = waiting[head...].firstIndex(where: { $0.cancellation === cancellation }) else { return nil }
            return waiting.remove(at: index)
        }
        job?.finish(Self.cancelled)
    }

    static let cancelled = ToolResult.refused("the call was cancelled")

    private func serve(_ plugin: SupervisedPlugin) {
        while let job = next() {
            // A call cancelled while it waited is not made.
            job.finish(job.cancellation.isCancelled ? CallQueue.cancelled : job.run(plugin, job.cancellation))
        }
    }

    private func next() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        while head == waiting.count && !stopping { condition.wait() }
        guard !stopping else { return nil }
        let job = waiting[head]
        head += 1
        if head > 64 && head * 2 > waiting.count {   // compact now and then: amortised O(1) per call
            waiting.removeFirst(head)
            head = 0
        }
        return job
    }

    /// Ends the workers once their current call returns; calls still waiting are answered with
    /// an error (MCP waits for its calls before it stops, so normally none are).
    func stop() {
        let left = condition.withLock { () -> [Job] in
            stopping = true
            condition.broadcast()
            defer { (waiting, head) = ([], 0) }
            return Array(waiting[head...])
        }
        for job in left { job.finish(.refused("\(pluginID) is stopping; the call was not made")) }
        instances.forEach { $0.stop() }
    }
}
