import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Collects every scenario's figures and prints them, each also as a ratio to the wrk ceiling.
struct Report {
    let target: BenchTarget
    var ceiling: Wrk.Ceiling?
    /// wrk on `GET /health` with a proof's and a credential's headers: the cheapest request that
    /// carries what a request of the protocol carries.
    var requestWithProof: Wrk.Ceiling?
    /// wrk sending introspections (the `introspect` scenario, after the generator's run).
    var introspectUnderWrk: Wrk.Ceiling?
    var refreshUnderWrk: Wrk.Ceiling?
    var lines: [String] = []
    var totalErrors = 0
    /// Floors measured in the same run (see ``Floors``).
    var proofCost: Floors.ProofCost?
    var storeCost: Floors.StoreCost?
    var oauthStoreCost: Floors.OAuthStoreCost?
    var signingCost: Floors.SigningCost?
    var connectionCost: Floors.ConnectionCost?
    /// The same for a bare NIO server that streams (``PlainStreamServerCommand``).
    var plainStreamCost: Floors.ConnectionCost?
    /// Per scenario: completed per server CPU-second, and the generator's CPU seconds per completed.
    var perServerCPU: [String: Double] = [:]
    var generatorCPU: [String: Double] = [:]
    /// Per scenario: microseconds of CPU per completed of what else served it (PostgreSQL,
    /// nginx), by name, in the order of ``BenchTarget/others``.
    var otherCPU: [String: [(name: String, microseconds: Double)]] = [:]
    /// Where to write a perf profile of each timed scenario (`--profile`).
    var profileDirectory: String?

    private func cpu() -> Double? { target.serverCPU() }
    private func rss() -> Int? { target.serverRSS() }

    /// "per server CPU-second", or in a cluster per CPU-second of its instances together.
    private var perServer: String {
        target.isCluster ? "per CPU-second of all \(target.instances.count) instances" : "per server CPU-second"
    }

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

    /// Runs the timed part of one throughput scenario (what its preparation returned) and
    /// records its line.
    mutating func measure(_ name: String, unit: String, _ body: Scenarios.Run) async throws {
        let profiler = try await Profiler.start(directory: profileDirectory, name: name, pids: target.instances.compactMap(\.pid))
        let rssBefore = rss(), cpuBefore = cpu(), ownBefore = ProcessStats.ownCPUSeconds()
        let othersBefore = target.others.map { $0.read() }
        let start = ContinuousClock.now
        let m: Measurements
        do {
            m = try await body()
        } catch {
            profiler?.stop()
            throw error
        }
        let wall = ContinuousClock.now - start
        let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        let serverCPU = (cpu() ?? .nan) - (cpuBefore ?? .nan)
        let others = zip(target.others, othersBefore).map { group, before in
            (name: group.name, microseconds: ((group.read() ?? .nan) - (before ?? .nan)) / Double(m.completed) * 1e6)
        }
        profiler?.stop()
        let ownCPU = ProcessStats.ownCPUSeconds() - ownBefore
        let rate = Double(m.completed) / seconds
        let perCPU = Double(m.completed) / serverCPU
        totalErrors += m.errorCount
        perServerCPU[name] = perCPU
        generatorCPU[name] = ownCPU / Double(m.completed)
        otherCPU[name] = others
        var line = "\(name): \(Self.f(rate)) \(unit)/s (\(ratio(rate, to: ceiling?.requestsPerSecond)) of wrk /health), "
            + "\(Self.f(perCPU)) \(perServer) (\(ratio(perCPU, to: ceiling?.perServerCPUSecond)) of wrk /health), "
            + "p50 \(Self.f(m.percentile(50), 2)) ms, p99 \(Self.f(m.percentile(99), 2)) ms, max \(Self.f(m.percentile(100), 2)) ms, "
            + "errors \(m.errorSummary), \(m.completed) done in \(Self.f(seconds, 1)) s, server CPU \(Self.f(serverCPU, 2)) s, "
            + "generator CPU \(Self.f(ownCPU, 2)) s, server RSS \(Self.mb(rssBefore)) -> \(Self.mb(rss()))"
        if !others.isEmpty {
            line += "; per \(unit): " + ([("server" + (target.isCluster ? "s" : ""), 1e6 / perCPU)] + others.map { ($0.name, $0.microseconds) })
                .map { "\($0.0) \(Self.f($0.1, 1)) µs" }.joined(separator: ", ") + " of CPU"
        }
        print(line)
        lines.append(line)
    }

    /// Runs the steps of a login one at a time and records each step's server CPU per login,
    /// also as a multiple of the floor of one request with one proof.
    mutating func measureSteps(_ scenario: StepsScenario) async throws {
        let target = self.target
        let costs = try await scenario.run { target.serverCPU() }
        let floor = oneRequestFloor()
        var parts: [String] = []
        for (name, cost) in zip(StepsScenario.names, costs) {
            var part = "\(name) \(Self.f(cost)) µs"
            if let floor { part += " (\(Self.f(cost / floor, 1))x)" }
            parts.append(part)
        }
        let total = costs.reduce(0, +)
        var line = "steps: server CPU per login, one step at a time for \(scenario.logins / scenario.concurrency * scenario.concurrency) logins: " + parts.joined(separator: ", ")
        line += "; together \(Self.f(total)) µs"
        if let floor { line += " (multiples of one request with one signature check, \(Self.f(floor, 1)) µs)" }
        print(line)
        lines.append(line)
    }

    /// Runs the waiting scenario: memory per waiting PC, idle CPU, and push latency.
    mutating func measureWaiting(_ scenario: WaitingScenario, idleSeconds: Double) async throws {
        let rssBefore = rss()
        let target = self.target
        let idle = IdleSample()
        let result = try await scenario.run {
            let rssOpen = target.serverRSS()
            let before = target.serverCPU()
            let othersBefore = target.others.map { $0.read() }
            try await Task.sleep(for: .milliseconds(Int64(idleSeconds * 1000)))
            let after = target.serverCPU()
            let others = zip(target.others, othersBefore).map { group, before in
                (group.name, ((group.read() ?? .nan) - (before ?? .nan)) / idleSeconds * 100)
            }
            idle.set(rss: rssOpen, cpuPercent: before.flatMap { b in after.map { a in (a - b) / idleSeconds * 100 } }, others: others)
        }
        let m = result.measurements
        totalErrors += m.errorCount + (result.opened < scenario.waiting ? 1 : 0)
        let (rssOpen, idleCPU, idleOthers) = idle.get()
        var perPC = "n/a"
        if let before = rssBefore, let open = rssOpen, result.opened > 0 {
            perPC = String(format: "%.2f KB", Double(open - before) / Double(result.opened) / 1024)
        }
        let across = scenario.instances.count > 1
            ? " (each PC on one instance's own port, its phone's scan and confirm on the next instance's: every notification crosses instances through PostgreSQL)"
            : ""
        var line = "waiting: \(result.opened)/\(scenario.waiting) PCs on SSE\(across); confirm -> PC notified p50 \(Self.f(m.percentile(50), 2)) ms, "
            + "p99 \(Self.f(m.percentile(99), 2)) ms, max \(Self.f(m.percentile(100), 2)) ms over \(m.completed) confirms "
            + "(from sending the confirm: p50 \(Self.f(m.percentile(50, of: m.fromRequest), 2)) ms, p99 \(Self.f(m.percentile(99, of: m.fromRequest), 2)) ms); errors \(m.errorSummary); "
            + "server RSS \(Self.mb(rssBefore)) -> \(Self.mb(rssOpen)) (\(perPC) per waiting PC); "
            + "idle \(target.isCluster ? "CPU of all instances together" : "server CPU") with all waiting \(idleCPU.map { String(format: "%.2f%%", $0) } ?? "n/a") of one core"
        for (name, percent) in idleOthers { line += ", \(name) \(Self.f(percent, 2))%" }
        print(line)
        lines.append(line)
    }

    func printSummary() {
        print("\n== summary (release build; figures per server CPU-second hold on a shared machine) ==")
        if target.isCluster {
            print("cluster: \(target.instances.count) instances on PostgreSQL behind nginx; \"server CPU\" is every instance's together (their /proc/PID/stat summed)")
        }
        if let ceiling {
            var line = "ceiling: wrk GET /health\(target.isCluster ? " through nginx" : "") \(Self.f(ceiling.requestsPerSecond)) req/s, \(ceiling.perServerCPUSecond.map { Self.f($0) } ?? "n/a") \(perServer)"
            if !target.others.isEmpty {
                line += "; per request " + ([("server" + (target.isCluster ? "s" : ""), ceiling.perServerCPUSecond.map { 1e6 / $0 } ?? .nan)] + target.others.map { ($0.name, ceiling.others[$0.name] ?? .nan) })
                    .map { "\($0.0) \(Self.f($0.1, 1)) µs" }.joined(separator: ", ") + " of CPU"
            }
            print(line)
        }
        for line in lines { print(line) }
        for line in floorLines() { print(line) }
        for line in otherLines() { print(line) }
        print("errors in all scenarios: \(totalErrors)")
    }

    /// What the processes besides the server cost per request or login (PostgreSQL, nginx), and
    /// everything together; what could not be measured.
    func otherLines() -> [String] {
        var lines: [String] = []
        for name in ["create", "status", "login", "device", "introspect", "refresh"] {
            guard let others = otherCPU[name], !others.isEmpty, let perCPU = perServerCPU[name] else { continue }
            let server = 1e6 / perCPU
            let total = server + others.reduce(0) { $0 + ($1.microseconds.isFinite ? $1.microseconds : 0) }
            let parts = [("\(target.isCluster ? "instances" : "server")", server)] + others.map { ($0.name, $0.microseconds) }
            lines.append("CPU per \(name == "login" || name == "device" ? "login" : "request"), \(name): " + parts.map { "\($0.0) \(Self.f($0.1, 1)) µs" }.joined(separator: ", ")
                + "; together \(Self.f(total, 1)) µs, \(Self.f(1e6 / total)) per CPU-second of everything that serves (generator not counted)")
        }
        for what in target.notMeasured { lines.append("not measured: \(what)") }
        return lines
    }

    /// Server CPU, in microseconds, of the cheapest request with one proof: one `GET /health`
    /// with a proof's headers (or without, if that was not measured) plus one signature check.
    func oneRequestFloor() -> Double? {
        guard let proofCost, let perCPU = requestWithProof?.perServerCPUSecond ?? ceiling?.perServerCPUSecond else { return nil }
        return 1e6 / perCPU + proofCost.signatureCheck
    }

    /// The floors, and every throughput figure as a ratio to its floor: the most a scenario
    /// could reach on this machine if each of its requests cost the server no more than one
    /// `GET /health` (its server CPU under wrk: HTTP, routing, middleware, one store read) sent
    /// with a proof's and a credential's headers, plus one P-256 signature check, the part of a
    /// proof check no code of ours can remove. Without that wrk run, plain `GET /health`.
    func floorLines() -> [String] {
        var lines: [String] = []
        if let proofCost {
            lines.append("floor: one P-256 signature check \(Self.f(proofCost.signatureCheck, 1)) µs of CPU; one whole DPoP proof check by the server's code \(Self.f(proofCost.proofCheck, 1)) µs (both timed in this process)")
        }
        if let plain = ceiling?.perServerCPUSecond, let withProof = requestWithProof?.perServerCPUSecond {
            lines.append("floor: one GET /health \(Self.f(1e6 / plain, 1)) µs of server CPU (wrk); with a proof's and a credential's headers (\(Self.f(1e6 / withProof - 1e6 / plain, 1)) µs more) \(Self.f(1e6 / withProof, 1)) µs")
        }
        if let perCPU = requestWithProof?.perServerCPUSecond ?? ceiling?.perServerCPUSecond, let oneRequest = oneRequestFloor() {
            let request = 1e6 / perCPU
            let what = requestWithProof?.perServerCPUSecond == nil ? "one GET /health" : "one GET /health with a proof's headers"
            lines.append("floor: \(what) \(Self.f(request, 1)) µs of server CPU (wrk); with one signature check \(Self.f(oneRequest, 1)) µs, so at most \(Self.f(1e6 / oneRequest)) such requests per server CPU-second")
            if let storeCost {
                lines.append("floor: one login request inserted and committed alone by the server's SQLite store \(Self.f(storeCost.insert, 1)) µs of CPU, one read by id \(Self.f(storeCost.read, 1)) µs (both timed in this process, on a temporary file)")
            }
            if let measured = perServerCPU["create"] {
                if let storeCost {
                    // A create writes where GET /health reads.
                    let create = oneRequest - storeCost.read + storeCost.insert
                    lines.append("floor: create at most \(Self.f(1e6 / create)) per server CPU-second (1 request, 1 signature check, 1 insert committed in place of the read; \(Self.f(create, 1)) µs); measured \(Self.f(measured)) = \(ratio(measured, to: 1e6 / create)) of it")
                } else {
                    lines.append("floor: create at most \(Self.f(1e6 / oneRequest)) per server CPU-second (1 request, 1 signature check); measured \(Self.f(measured)) = \(ratio(measured, to: 1e6 / oneRequest)) of it")
                }
            }
            if let measured = perServerCPU["status"] {
                lines.append("floor: status at most \(Self.f(1e6 / oneRequest)) per server CPU-second (1 request, 1 signature check, 1 read); measured \(Self.f(measured)) = \(ratio(measured, to: 1e6 / oneRequest)) of it")
            }
            if let measured = perServerCPU["login"] {
                // PC create, PC event stream, phone scan, phone confirm, PC me: five requests,
                // five proofs.
                let serverPerLogin = 5 * oneRequest
                var line = "floor: login at most \(Self.f(1e6 / serverPerLogin)) per server CPU-second (5 requests, 5 signature checks); measured \(Self.f(measured)) = \(ratio(measured, to: 1e6 / serverPerLogin)) of it"
                if let generator = generatorCPU["login"], generator.isFinite {
                    let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
                    line += "; with the generator on the same \(Self.f(cores)) cores (\(Self.f(generator * 1e6)) µs of its CPU per login) at most \(Self.f(cores / (serverPerLogin / 1e6 + generator))) login/s"
                    line += "; the server alone, at its measured \(Self.f(1e6 / measured)) µs per login, would do \(Self.f(cores * measured)) login/s on \(Self.f(cores)) cores of its own"
                    if let signingCost {
                        line += "; a generator that did nothing but sign its four live proofs (\(Self.f(signingCost.perLogin, 1)) µs; one proof \(Self.f(signingCost.proof, 1)), one new key \(Self.f(signingCost.newKey, 1)), made before the clock starts; timed in this process) would leave at most \(Self.f(cores / (1 / measured + signingCost.perLogin / 1e6))) login/s with the server as measured"
                    }
                }
                lines.append(line)
            }
            if let measured = perServerCPU["device"] {
                // Device authorization, phone scan, phone confirm, device token: four requests,
                // four proofs; the device authorization inserts a login request, as a create.
                var serverPerLogin = 4 * oneRequest
                var what = "4 requests, 4 signature checks"
                if let storeCost {
                    serverPerLogin += storeCost.insert - storeCost.read
                    what += ", the device authorization's insert in place of its read"
                }
                var line = "floor: device-grant login at most \(Self.f(1e6 / serverPerLogin)) per server CPU-second (\(what); \(Self.f(serverPerLogin, 1)) µs); measured \(Self.f(1e6 / measured)) µs of server CPU per login, \(Self.f(measured)) per server CPU-second = \(ratio(measured, to: 1e6 / serverPerLogin)) of it"
                if let generator = generatorCPU["device"], generator.isFinite {
                    let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
                    line += "; the generator used \(Self.f(generator * 1e6)) µs of its CPU per login"
                    if let signingCost {
                        line += " (its two live proofs, the phone's scan and confirm, \(Self.f(2 * signingCost.proof, 1)) µs); a generator that did only those would leave at most \(Self.f(cores / (1 / measured + 2 * signingCost.proof / 1e6))) login/s on these \(Self.f(cores)) cores with the server as measured"
                    }
                }
                lines.append(line)
            }
            if let measured = perServerCPU["refresh"] {
                if let storeCost, let oauthStoreCost {
                    // A refresh writes where GET /health reads: its transaction in place of the read.
                    let refresh = oneRequest - storeCost.read + oauthStoreCost.refresh
                    lines.append("floor: refresh at most \(Self.f(1e6 / refresh)) per server CPU-second (1 request, 1 signature check, the store's refresh transaction in place of the read; \(Self.f(refresh, 1)) µs); measured \(Self.f(1e6 / measured)) µs of server CPU per refresh, \(Self.f(measured)) per server CPU-second = \(ratio(measured, to: 1e6 / refresh)) of it")
                    if let wrk = refreshUnderWrk, let underWrk = wrk.perServerCPUSecond {
                        lines.append("refresh under wrk (a light client instead of the generator): \(Self.f(wrk.requestsPerSecond)) req/s, \(Self.f(1e6 / underWrk, 1)) µs of server CPU per refresh, \(Self.f(underWrk)) per server CPU-second = \(ratio(underWrk, to: 1e6 / refresh)) of the floor; \(wrk.failed) answers not 2xx")
                    }
                } else {
                    lines.append("floor: refresh at most \(Self.f(1e6 / oneRequest)) per server CPU-second (1 request, 1 signature check); measured \(Self.f(measured)) = \(ratio(measured, to: 1e6 / oneRequest)) of it")
                }
            }
        }
        if let oauthStoreCost {
            lines.append("floor: the server's SQLite store, OAuth: one token read by hash with its family and account \(Self.f(oauthStoreCost.tokenLookup, 1)) µs of CPU, one client read by id \(Self.f(oauthStoreCost.clientRead, 1)) µs, one refresh's transaction (proof recorded, read, mark used, two tokens inserted, commit) \(Self.f(oauthStoreCost.refresh, 1)) µs (timed in this process, on a temporary file)")
        }
        if let measured = perServerCPU["introspect"], let plain = ceiling?.perServerCPUSecond {
            // No proof at the introspection endpoint: the floor is GET /health itself (HTTP,
            // routing, middleware, one store read), with the token's read in place of its read.
            var request = 1e6 / plain
            var what = "1 request as cheap as GET /health"
            if let storeCost, let oauthStoreCost {
                request += oauthStoreCost.tokenLookup - storeCost.read
                what += ", the token's read in place of its read"
            }
            lines.append("floor: introspection at most \(Self.f(1e6 / request)) per server CPU-second (\(what); \(Self.f(request, 1)) µs); measured \(Self.f(1e6 / measured)) µs of server CPU per introspection, \(Self.f(measured)) per server CPU-second = \(ratio(measured, to: 1e6 / request)) of it")
            if let wrk = introspectUnderWrk, let underWrk = wrk.perServerCPUSecond {
                lines.append("introspect under wrk (a light client instead of the generator): \(Self.f(wrk.requestsPerSecond)) req/s, \(Self.f(1e6 / underWrk, 1)) µs of server CPU per introspection, \(Self.f(underWrk)) per server CPU-second = \(ratio(underWrk, to: 1e6 / request)) of the floor; \(wrk.failed) answers not 2xx")
            }
        }
        if let connectionCost {
            lines.append("floor: our server holds \(Self.f(connectionCost.connectedKB, 2)) KB of server RSS per open connection that has sent nothing, \(Self.f(connectionCost.servedKB, 2)) KB once it has been answered one request that no route of ours handled (a 404, after which Hummingbird's request loop owns the connection; \(connectionCost.connections) keep-alive connections to a fresh server)")
        }
        if let plainStreamCost {
            lines.append("floor: without Hummingbird, a bare NIO HTTP/1 server holds \(Self.f(plainStreamCost.connectedKB, 2)) KB per open connection that has sent nothing, \(Self.f(plainStreamCost.servedKB, 2)) KB per connection streaming events (its request decoder removed; \(plainStreamCost.connections) connections)")
        }
        return lines
    }
}

/// Figures taken while every PC waits, handed out of the scenario's callback.
final class IdleSample: @unchecked Sendable {
    private let lock = NSLock()
    private var rss: Int?
    private var cpuPercent: Double?
    private var others: [(String, Double)] = []

    func set(rss: Int?, cpuPercent: Double?, others: [(String, Double)] = []) {
        lock.withLock { self.rss = rss; self.cpuPercent = cpuPercent; self.others = others }
    }

    func get() -> (Int?, Double?, [(String, Double)]) {
        lock.withLock { (rss, cpuPercent, others) }
    }
}

/// `perf record -g` of the server's instances while one scenario is timed (`--profile`).
final class Profiler: Sendable {
    let pid: pid_t
    let file: String

    private init(pid: pid_t, file: String) {
        self.pid = pid
        self.file = file
    }

    /// Starts recording `pids` into DIR/NAME.perf.data; nil without a directory or pids.
    static func start(directory: String?, name: String, pids: [Int32]) async throws -> Profiler? {
        guard let directory, !pids.isEmpty else { return nil }
        let file = directory + "/\(name).perf.data"
        // cpu-clock: a software event, which works in virtual machines without hardware counters.
        let arguments = ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g", "-o", file, "-p", pids.map(String.init).joined(separator: ",")]
        let pid: pid_t
        do { pid = try Deployment.spawn(arguments, quiet: true) } catch {
            print("profile: perf not found (Debian: apt-get install linux-perf)")
            return nil
        }
        // Let it attach before the clock starts.
        try await Task.sleep(for: .milliseconds(500))
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == 0 else {
            print("profile: perf record exited at once; try `perf stat -e cpu-clock true`")
            return nil
        }
        return Profiler(pid: pid, file: file)
    }

    func stop() {
        kill(pid, SIGINT)
        Deployment.wait(pid)
        print("profile: \(file) (perf report -i \(file) --no-children | swift demangle)")
    }
}
