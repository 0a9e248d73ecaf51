import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import QRLoginCore

/// `qrlogin-bench`: a load generator that drives the real protocol against a server it starts
/// (rate limits off, SQLite in a temporary file, or PostgreSQL; or several instances on
/// PostgreSQL behind nginx) and reports throughput, latency, errors, server CPU and memory, each
/// also as a ratio to `wrk` on `GET /health` measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load-test a QRLogin server with the real protocol (build with -c release).",
        discussion: "Starts `qrlogin serve` (the binary beside this one) on SQLite, on PostgreSQL (--postgres, --database) or as several instances behind nginx (--cluster), unless --server is given. See BENCHMARKS.md."
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case all, create, status, login, steps, waiting, device, introspect, refresh
    }

    @Option(help: "Which scenario to run: all, create, status, login, steps, waiting, device, introspect or refresh; repeatable (--scenario create --scenario status).")
    var scenario: [Scenario] = [.all]

    @Option(help: "Requests for the create, status and introspect scenarios.")
    var requests = 20_000

    @Option(help: "Concurrent clients for create, status, login, steps, device, introspect and refresh.")
    var concurrency = 32

    @Option(help: "Complete logins for the login, steps and device scenarios.")
    var logins = 2_000

    @Option(help: "Refreshes for the refresh scenario.")
    var refreshes = 10_000

    @Option(help: "PCs waiting on SSE in the waiting scenario.")
    var waiting = 10_000

    @Option(help: "Confirms in the waiting scenario.")
    var confirms = 500

    @Option(name: .customLong("confirm-rate"), help: "Confirms per second in the waiting scenario.")
    var confirmRate = 100.0

    @Option(name: .customLong("idle-seconds"), help: "Seconds to sample server CPU with every PC waiting and no traffic.")
    var idleSeconds = 10.0

    @Option(name: .customLong("wrk-seconds"), help: "Seconds of wrk on GET /health for the ceiling (0 skips it).")
    var wrkSeconds = 5

    @Option(help: "Use a running server at this URL instead of starting one (then give --server-pid for CPU figures).")
    var server: String?

    @Option(name: .customLong("server-pid"), help: "PID of the --server process, for CPU and memory figures.")
    var serverPID: Int32?

    @Option(name: .customLong("rs-secret"), help: "With --server: the secret of its client bench-rs (the OAuth scenarios also need the public client bench-cli, and --device-interval 1).")
    var resourceServerSecret: String?

    @Option(help: "A PostgreSQL database (postgres://USER@HOST:PORT/DB?sslmode=disable) for the server(s) the harness starts, instead of a temporary SQLite file. It is used as it is: what each run writes stays, and its CPU is not measured.")
    var database: String?

    @Flag(help: "Serve from a private PostgreSQL the harness starts for the run (scripts/postgres.sh, an empty database; its CPU is measured) and stops at the end. Implied by --cluster without --database.")
    var postgres = false

    @Option(help: "Start N instances on PostgreSQL behind nginx (scripts/cluster.sh) and measure them together; PCs wait on one instance while phones confirm on the next.")
    var cluster: Int?

    @Option(help: "Record a perf profile (perf record -g) of the server's instances during each timed scenario, into DIR/SCENARIO.perf.data (the profiler's CPU inflates that run's figures).")
    var profile: String?

    @Option(name: .customLong("server-cores"), help: "Give the server the harness starts N CPUs of its own and N event loops, as an instance on an N-CPU machine or container; the harness and wrk run on the other CPUs. Needs more than N CPUs; SQLite only.")
    var serverCores: Int?

    @Flag(help: "A few seconds with small numbers: checks that the harness works (CI).")
    var smoke = false

    /// Whether `scenario` is among those to run.
    func runs(_ scenario: Scenario) -> Bool {
        self.scenario.contains(.all) || self.scenario.contains(scenario)
    }

    /// Whether the servers the harness starts use PostgreSQL.
    var onPostgres: Bool { database != nil || postgres || cluster != nil }

    func validate() throws {
        if let cluster, cluster < 1 { throw ValidationError("--cluster takes a number of instances, 1 or more") }
        if let database, !(database.hasPrefix("postgres://") || database.hasPrefix("postgresql://")) {
            throw ValidationError("--database takes a postgres:// URL (the default is a temporary SQLite file)")
        }
        if database != nil, postgres { throw ValidationError("--postgres starts a database of its own; leave out --database") }
        if server != nil, onPostgres { throw ValidationError("--server runs against a server of your own; --database, --postgres and --cluster start servers") }
        if profile != nil, server != nil { throw ValidationError("--profile needs a server the harness starts") }
        if let serverCores {
            if serverCores < 1 { throw ValidationError("--server-cores takes a number of CPUs, 1 or more") }
            if server != nil || onPostgres { throw ValidationError("--server-cores places the SQLite server the harness starts; leave out --server, --database, --postgres and --cluster") }
        }
    }

    func run() async throws {
        // The generator's tasks run on the event loops its HTTP client's connections live on,
        // as the server's handlers do, instead of hopping to the cooperative pool and back on
        // every read: about 30% less of the generator's CPU per login, on the cores it shares
        // with the server. Installed before anything else runs; a no-op if it cannot be.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        var options = self
        if smoke {
            options.requests = 400; options.concurrency = 8; options.logins = 40; options.refreshes = 400; options.waiting = 200
            options.confirms = 20; options.confirmRate = 50; options.idleSeconds = 1; options.wrkSeconds = 1
        }
        let limit = ProcessStats.raiseFileLimit(to: options.waiting + 4096)
        print("open-file limit: \(limit)")

        Cleanup.installSignalHandlers()
        defer { Cleanup.runAll() }
        var postgres: PrivatePostgres?
        if options.database == nil, options.postgres || options.cluster != nil {
            let started = try PrivatePostgres.start()
            Cleanup.add { started.stop() }
            print("PostgreSQL: a private server for this run, \(started.url) (postmaster pid \(started.postmasterPID.map(String.init) ?? "unknown"))")
            postgres = started
        } else if let database = options.database {
            print("PostgreSQL: \(database) as it is (what earlier runs wrote stays there; its CPU is not measured)")
        }
        let database = options.database ?? postgres?.url
        var placement: CPUPlacement?
        if let cores = options.serverCores {
            guard let chosen = CPUPlacement(serverCores: cores) else {
                throw ValidationError("--server-cores \(cores) needs more than \(cores) CPUs; this process may use \(CPUPlacement.allowed().count)")
            }
            placement = chosen
        }
        let target: BenchTarget
        if let url = options.server {
            target = BenchTarget(base: url, pid: options.serverPID, process: nil)
        } else if let instances = options.cluster, let database {
            target = try Cluster.start(instances: instances, database: database, postgres: postgres)
        } else {
            target = try await BenchTarget.spawn(database: database, postgres: postgres, environment: placement?.serverEnvironment ?? [:])
        }
        Cleanup.add { target.stop() }
        if let placement, let pid = target.pid {
            // Once the server answers, every thread it starts with is there; later ones inherit.
            try placement.place(server: pid)
            print("placement: \(placement.description)")
        }

        var pool = HTTPClient.Configuration.ConnectionPool(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: options.waiting + 256)
        pool.retryConnectionEstablishment = false
        var config = HTTPClient.Configuration(timeout: .init(connect: .seconds(30), read: .seconds(600)))
        config.connectionPool = pool
        // No spans: with the default (a no-op tracer unless one is bootstrapped) the client still
        // works out every request's span attributes (3.7% of the generator's CPU in a profile of
        // the login scenario).
        config.tracing.tracer = nil
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        let errors: Int
        do {
            var api = BenchAPI(base: target.base, http: http)
            if let secret = options.resourceServerSecret { api.resourceServerSecret = secret }
            errors = try await drive(api: api, target: target, database: database, placement: placement, options: options)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
        if errors > 0 { throw ExitCode(1) }
    }

    private func drive(api: BenchAPI, target: BenchTarget, database: String?, placement: CPUPlacement?, options: BenchCommand) async throws -> Int {

        var report = Report(target: target)
        if let directory = options.profile {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            report.profileDirectory = directory
        }
        if target.isCluster {
            let instances = target.instances.map { "\($0.base) pid \($0.pid.map(String.init) ?? "unknown")" }.joined(separator: ", ")
            print("server: \(target.instances.count) instances on PostgreSQL behind nginx at \(target.base): \(instances); rate limits off; generator on the same machine")
        } else {
            print("server: \(target.base) pid \(target.pid.map(String.init) ?? "unknown") on \(options.onPostgres ? "PostgreSQL" : "SQLite"); rate limits off; generator on the same machine")
        }
        if options.wrkSeconds > 0 {
            // In a cluster, through nginx: its CPU and every instance's are read.
            report.ceiling = try await Wrk.measure(url: target.base + "/health", seconds: options.wrkSeconds, target: target)
            // The same request carrying what every request of the protocol carries: a proof and
            // a credential (the route ignores them; the server still receives and parses them).
            let signer = DPoPSigner()
            let proof = try signer.proof(method: "GET", url: target.base + "/api/v1/qr/" + Secrets.publicId(), accessToken: Secrets.secret(prefix: Secrets.pollSecretPrefix))
            report.requestWithProof = try await Wrk.measure(
                url: target.base + "/health", seconds: options.wrkSeconds, target: target,
                headers: ["DPoP: \(proof)", "Authorization: Bearer \(Secrets.secret(prefix: Secrets.pollSecretPrefix))", "Accept: application/json"]
            )
        }

        report.proofCost = try await Floors.proofCost()
        if options.runs(.login) || options.runs(.device) {
            report.signingCost = try Floors.signingCost()
        }
        // The store floors time the SQLite store in this process: no floor of a server on PostgreSQL.
        if options.onPostgres {
            print("store floors: skipped (they time the SQLite store; these servers use PostgreSQL)")
        } else {
            if options.runs(.create) || options.runs(.device) || options.runs(.introspect) || options.runs(.refresh) {
                report.storeCost = try await Floors.storeCost(count: options.smoke ? 200 : 2_000)
            }
            if options.runs(.introspect) || options.runs(.refresh) {
                report.oauthStoreCost = try await Floors.oauthStoreCost(count: options.smoke ? 200 : 2_000)
            }
        }
        if options.runs(.waiting) {
            if options.server != nil {
                print("connection floor: skipped (needs a server the harness starts)")
            } else if target.isCluster {
                print("connection floor: skipped (a single instance's figure; run without --cluster)")
            } else {
                // A server of its own, so that nothing served before has grown its heap.
                let fresh = try await BenchTarget.spawn(database: database, environment: placement?.serverEnvironment ?? [:])
                Cleanup.add { fresh.stop() }
                defer { fresh.stop() }
                if let placement, let pid = fresh.pid { try placement.place(server: pid) }
                if let pid = fresh.pid, let port = URLComponents(string: fresh.base)?.port {
                    report.connectionCost = try Floors.connectionCost(host: "127.0.0.1", port: UInt16(port), pid: pid, count: options.waiting)
                }
                // And what a waiting PC would cost without Hummingbird: a bare NIO stream.
                let plain = try await BenchTarget.spawn(plainStream: true, environment: placement?.serverEnvironment ?? [:])
                Cleanup.add { plain.stop() }
                defer { plain.stop() }
                if let placement, let pid = plain.pid { try placement.place(server: pid) }
                if let pid = plain.pid, let port = URLComponents(string: plain.base)?.port {
                    report.plainStreamCost = try Floors.connectionCost(host: "127.0.0.1", port: UInt16(port), pid: pid, count: options.waiting, eventStream: true)
                }
            }
        }

        let scenarios = Scenarios(api: api, concurrency: options.concurrency)
        // Steps last: it holds 2,000 streams at once, and the heap they leave behind would be
        // filled by the waiting PCs before the server's RSS grew. The OAuth scenarios after the
        // waiting PCs, so that the heap those find is the one it was before they were added.
        let all = [Scenario.create, .status, .login, .waiting, .device, .introspect, .refresh, .steps]
        let selected = options.scenario.contains(.all) ? all : all.filter { options.scenario.contains($0) }
        var phones: [BenchAPI.Phone] = []
        if selected.contains(where: { $0 != .create && $0 != .status }) {
            for index in 0..<min(options.concurrency, 32) {
                phones.append(try await api.phone(username: "bench\(index)_\(UInt32.random(in: 0...UInt32.max))"))
            }
        }
        for scenario in selected {
            switch scenario {
            case .create:
                try await report.measure("create", unit: "req", try await scenarios.create(requests: options.requests))
            case .status:
                try await report.measure("status", unit: "req", try await scenarios.status(requests: options.requests))
            case .login:
                try await report.measure("login", unit: "login", try await scenarios.login(count: options.logins, phones: phones))
            case .waiting:
                // In a cluster, each PC waits on one instance's own port and its phone scans and
                // confirms on the next instance's, so every notification crosses instances.
                let direct = target.isCluster && target.instances.count > 1 ? target.instances.map { api.sending(to: $0.base) } : []
                let waitingScenario = WaitingScenario(api: api, waiting: options.waiting, confirms: options.confirms, confirmRate: options.confirmRate, phones: phones, instances: direct)
                try await report.measureWaiting(waitingScenario, idleSeconds: options.idleSeconds)
            case .device:
                try await report.measure("device", unit: "login", try await scenarios.deviceLogins(count: options.logins, phones: phones))
            case .introspect:
                try await report.measure("introspect", unit: "req", try await scenarios.introspections(requests: options.requests, phones: phones))
                if options.wrkSeconds > 0 {
                    let tokens = try await scenarios.introspectionTokens(phones: phones)
                    report.introspectUnderWrk = try await Wrk.introspections(api: api, tokens: tokens, seconds: options.wrkSeconds, target: target)
                    // wrk reads statuses only: the tokens it sent must still introspect as active.
                    var inactive = 0
                    for token in tokens where !BenchAPI.isActive(try await api.introspect(token, authorization: api.resourceServerAuthorization).body) {
                        inactive += 1
                    }
                    if inactive > 0 { print("introspect under wrk: \(inactive) of its tokens answer inactive") }
                    report.totalErrors += inactive + (report.introspectUnderWrk?.failed ?? 0)
                }
            case .refresh:
                try await report.measure("refresh", unit: "req", try await scenarios.refreshes(requests: options.refreshes, phones: phones))
                if options.wrkSeconds > 0 {
                    // Enough proofs for 12,000 refreshes a second, about twice what the server reaches.
                    let chains = try await scenarios.refreshChains(proofsEach: options.wrkSeconds * 12_000 / options.concurrency + 100, phones: phones)
                    report.refreshUnderWrk = try await Wrk.refreshes(api: api, chains: chains, seconds: options.wrkSeconds, target: target)
                    report.totalErrors += report.refreshUnderWrk?.failed ?? 0
                }
            case .steps:
                try await report.measureSteps(StepsScenario(api: api, concurrency: options.concurrency, logins: options.logins, phones: phones))
            case .all:
                break
            }
        }
        report.printSummary()
        return report.totalErrors
    }
}

/// `wrk` on `GET /health`: the ceiling every figure is compared with.
enum Wrk {
    struct Ceiling {
        var requestsPerSecond: Double
        var perServerCPUSecond: Double?
        /// Microseconds of CPU per request of what else served them (PostgreSQL, nginx), by name.
        var others: [String: Double] = [:]
        /// Answers whose status was not 2xx or 3xx.
        var failed = 0
    }

    /// - Parameters:
    ///   - target: whose CPU is read (every instance's together, and its other processes').
    ///   - headers: extra request headers (`Name: value`), sent with every request.
    ///   - script: a wrk Lua script that makes the requests (`-s`).
    static func measure(
        url: String, seconds: Int, target: BenchTarget?, headers: [String] = [], script: String? = nil, threads: Int = 2, connections: Int = 64
    ) async throws -> Ceiling? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["wrk", "-t\(threads)", "-c\(connections)", "-d\(seconds)s"] + headers.flatMap { ["-H", $0] } + (script.map { ["-s", $0] } ?? []) + [url]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let cpuBefore = target?.serverCPU()
        let othersBefore = target?.others.map { $0.read() } ?? []
        do { try process.run() } catch {
            print("wrk: not found; install Debian's wrk for the ceiling (Benchmarks/run-server.sh does)")
            return nil
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let cpuAfter = target?.serverCPU()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0,
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Requests/sec:") }),
              let rate = Double(line.split(separator: " ").last ?? "")
        else {
            print("wrk: failed to measure")
            return nil
        }
        var perCPU: Double?
        if let before = cpuBefore, let after = cpuAfter, after > before {
            perCPU = rate * Double(seconds) / (after - before)
        }
        var ceiling = Ceiling(requestsPerSecond: rate, perServerCPUSecond: perCPU)
        if let line = text.split(separator: "\n").first(where: { $0.contains("Non-2xx or 3xx responses:") }) {
            ceiling.failed = Int(line.split(separator: " ").last ?? "") ?? 0
        }
        for (group, before) in zip(target?.others ?? [], othersBefore) {
            if let before, let after = group.read() {
                ceiling.others[group.name] = (after - before) / (rate * Double(seconds)) * 1e6
            }
        }
        return ceiling
    }
}

extension Wrk {
    /// Introspections sent by wrk, a light client, instead of the harness's generator: each of
    /// its requests a `POST /oauth/introspect` with the resource server's Basic credentials and
    /// one of `tokens` in turn. A resource server calls from another machine; wrk on this one
    /// takes less of the cores the server shares with it than the generator does.
    static func introspections(api: BenchAPI, tokens: [String], seconds: Int, target: BenchTarget) async throws -> Ceiling? {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-bench-introspect-\(getpid()).lua")
        defer { try? FileManager.default.removeItem(at: script) }
        let list = tokens.map { "\"\($0)\"" }.joined(separator: ",")
        let lua = """
            local tokens = {\(list)}
            local turn = 0
            wrk.method = "POST"
            wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
            wrk.headers["Authorization"] = "\(api.resourceServerAuthorization)"
            request = function()
              turn = turn % #tokens + 1
              return wrk.format(nil, "\(BenchAPI.introspectionPath)", nil, "token=" .. tokens[turn])
            end
            """
        try Data(lua.utf8).write(to: script)
        return try await measure(url: target.base + BenchAPI.introspectionPath, seconds: seconds, target: target, script: script.path)
    }
}

extension Wrk {
    /// Refreshes sent by wrk, a light client, instead of the harness's generator: one thread and
    /// one connection per chain, each request a `POST /oauth/token` with the chain's latest
    /// refresh token and its next proof (signed beforehand, like the generator's), each answer's
    /// refresh token read by the script for the next request. A refused refresh breaks its chain,
    /// so every later request of that connection fails too and wrk counts them all.
    static func refreshes(api: BenchAPI, chains: [Scenarios.RefreshChain], seconds: Int, target: BenchTarget) async throws -> Ceiling? {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-bench-refresh-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (index, chain) in chains.enumerated() {
            // The first line is the chain's refresh token, each further line a proof.
            let lines = ([chain.first] + chain.proofs).joined(separator: "\n") + "\n"
            try Data(lines.utf8).write(to: directory.appendingPathComponent("chain-\(index).txt"))
        }
        let script = directory.appendingPathComponent("refresh.lua")
        let lua = """
            local threads = 0
            setup = function(thread)
              thread:set("chain", threads)
              threads = threads + 1
            end
            local token, proofs, turn
            init = function(args)
              proofs = {}
              for line in io.lines("\(directory.path)/chain-" .. chain .. ".txt") do
                if token == nil then token = line else proofs[#proofs + 1] = line end
              end
              turn = 0
            end
            wrk.method = "POST"
            wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
            request = function()
              turn = turn + 1
              -- Past the last proof, a request the server refuses: wrk counts it as failed.
              wrk.headers["DPoP"] = proofs[turn] or "exhausted"
              return wrk.format(nil, "\(BenchAPI.tokenPath)", nil, "grant_type=refresh_token&client_id=\(BenchClients.cli)&refresh_token=" .. token)
            end
            response = function(status, headers, body)
              if status == 200 then
                local rotated = string.match(body, '"refresh_token":"([^"]+)"')
                if rotated then token = rotated end
              end
            end
            """
        try Data(lua.utf8).write(to: script)
        return try await measure(
            url: target.base + BenchAPI.tokenPath, seconds: seconds, target: target, script: script.path, threads: chains.count, connections: chains.count
        )
    }
}
