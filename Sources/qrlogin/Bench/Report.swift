import Foundation

/// Collects every scenario's figures and prints them, each also as a ratio to the wrk ceiling.
struct Report {
    let target: BenchTarget
    var ceiling: Wrk.Ceiling?
    var lines: [String] = []
    var totalErrors = 0

    private func cpu() -> Double? { target.pid.flatMap(ProcessStats.cpuSeconds) }
    private func rss() -> Int? { target.pid.flatMap(ProcessStats.rssBytes) }

    private static func mb(_ bytes: Int?) -> String {
        bytes.map { String(format: "%.1f MB", Double($0) / 1_048_576) } ?? "n/a"
    }

    private static func f(_ value: Double, _ digits: Int = 0) -> String {
        value.isFinite ? String(format: "%.\(digits)f", value) : "n/a"
    }

    private func ratio(_ value: Double, to reference: Double?) -> String {
        guard let reference, reference > 0, value.isFinite else { return "n/a" }
        return String(format: "%.3fx", value / reference)
    }

    /// Runs one throughput scenario and records its line.
    mutating func measure(_ name: String, unit: String, _ body: () async throws -> Measurements) async throws {
        let rssBefore = rss(), cpuBefore = cpu(), ownBefore = ProcessStats.ownCPUSeconds()
        let start = ContinuousClock.now
        let m = try await body()
        let wall = ContinuousClock.now - start
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        let serverCPU = (cpu() ?? .nan) - (cpuBefore ?? .nan)
        let ownCPU = ProcessStats.ownCPUSeconds() - ownBefore
        let rate = Double(m.completed) / seconds
        let perCPU = Double(m.completed) / serverCPU
        totalErrors += m.errorCount
        let line = "\(name): \(Self.f(rate)) \(unit)/s (\(ratio(rate, to: ceiling?.requestsPerSecond)) of wrk /health), "
            + "\(Self.f(perCPU)) per server CPU-second (\(ratio(perCPU, to: ceiling?.perServerCPUSecond)) of wrk /health), "
            + "p50 \(Self.f(m.percentile(50), 2)) ms, p99 \(Self.f(m.percentile(99), 2)) ms, max \(Self.f(m.percentile(100), 2)) ms, "
            + "errors \(m.errorSummary), \(m.completed) done in \(Self.f(seconds, 1)) s, server CPU \(Self.f(serverCPU, 2)) s, "
            + "generator CPU \(Self.f(ownCPU, 2)) s, server RSS \(Self.mb(rssBefore)) -> \(Self.mb(rss()))"
        print(line)
        lines.append(line)
    }

    /// Runs the waiting scenario: memory per waiting PC, idle CPU, and push latency.
    mutating func measureWaiting(_ scenario: WaitingScenario, idleSeconds: Double) async throws {
        let rssBefore = rss()
        let target = self.target
        let idle = IdleSample()
        let result = try await scenario.run {
            let rssOpen = target.pid.flatMap(ProcessStats.rssBytes)
            let before = target.pid.flatMap(ProcessStats.cpuSeconds)
            try await Task.sleep(for: .milliseconds(Int64(idleSeconds * 1000)))
            let after = target.pid.flatMap(ProcessStats.cpuSeconds)
            idle.set(rss: rssOpen, cpuPercent: before.flatMap { b in after.map { a in (a - b) / idleSeconds * 100 } })
        }
        let m = result.measurements
        totalErrors += m.errorCount + (result.opened < scenario.waiting ? 1 : 0)
        let (rssOpen, idleCPU) = idle.get()
        var perPC = "n/a"
        if let before = rssBefore, let open = rssOpen, result.opened > 0 {
            perPC = String(format: "%.2f KB", Double(open - before) / Double(result.opened) / 1024)
        }
        let line = "waiting: \(result.opened)/\(scenario.waiting) PCs on SSE; confirm -> PC notified p50 \(Self.f(m.percentile(50), 2)) ms, "
            + "p99 \(Self.f(m.percentile(99), 2)) ms, max \(Self.f(m.percentile(100), 2)) ms over \(m.completed) confirms "
            + "(from sending the confirm: p50 \(Self.f(m.percentile(50, of: m.fromRequest), 2)) ms, p99 \(Self.f(m.percentile(99, of: m.fromRequest), 2)) ms); errors \(m.errorSummary); "
            + "server RSS \(Self.mb(rssBefore)) -> \(Self.mb(rssOpen)) (\(perPC) per waiting PC); "
            + "idle server CPU with all waiting \(idleCPU.map { String(format: "%.2f%%", $0) } ?? "n/a") of one core"
        print(line)
        lines.append(line)
    }

    func printSummary() {
        print("\n== summary (release build; figures per server CPU-second hold on a shared machine) ==")
        if let ceiling {
            print("ceiling: wrk GET /health \(Self.f(ceiling.requestsPerSecond)) req/s, \(ceiling.perServerCPUSecond.map { Self.f($0) } ?? "n/a") per server CPU-second")
        }
        for line in lines { print(line) }
        print("errors in all scenarios: \(totalErrors)")
    }
}

/// Figures taken while every PC waits, handed out of the scenario's callback.
final class IdleSample: @unchecked Sendable {
    private let lock = NSLock()
    private var rss: Int?
    private var cpuPercent: Double?

    func set(rss: Int?, cpuPercent: Double?) {
        lock.withLock { self.rss = rss; self.cpuPercent = cpuPercent }
    }

    func get() -> (Int?, Double?) {
        lock.withLock { (rss, cpuPercent) }
    }
}
