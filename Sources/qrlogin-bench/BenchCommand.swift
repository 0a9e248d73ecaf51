import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import QRLoginCore

/// `qrlogin-bench`: a load generator that drives the real protocol against a server it starts
/// (rate limits off, SQLite in a temporary file) and reports throughput, latency, errors, server
/// CPU and memory, each also as a ratio to `wrk` on `GET /health` measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load-test a QRLogin server with the real protocol (build with -c release).",
        discussion: "Starts `qrlogin serve` (the binary beside this one) unless --server is given. See BENCHMARKS.md."
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case all, create, status, login, steps, waiting, device, introspect, refresh
    }

    @Option(help: "Which scenario to run: all, create, status, login, steps, waiting, device, introspect or refresh.")
    var scenario: Scenario = .all

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

    @Flag(help: "A few seconds with small numbers: checks that the harness works (CI).")
    var smoke = false

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

        let target: BenchTarget
        if let url = options.server {
            target = BenchTarget(base: url, pid: options.serverPID, process: nil)
        } else {
            target = try await BenchTarget.spawn()
        }
        defer { target.stop() }

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
            errors = try await drive(api: api, target: target, options: options)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
        if errors > 0 { throw ExitCode(1) }
    }

    private func drive(api: BenchAPI, target: BenchTarget, options: BenchCommand) async throws -> Int {

        var report = Report(target: target)
        print("server: \(target.base) pid \(target.pid.map(String.init) ?? "unknown"); rate limits off; generator on the same machine")
        if options.wrkSeconds > 0 {
            report.ceiling = try await Wrk.measure(url: target.base + "/health", seconds: options.wrkSeconds, pid: target.pid)
            // The same request carrying what every request of the protocol carries: a proof and
            // a credential (the route ignores them; the server still receives and parses them).
            let signer = DPoPSigner()
            let proof = try signer.proof(method: "GET", url: target.base + "/api/v1/qr/" + Secrets.publicId(), accessToken: Secrets.secret(prefix: Secrets.pollSecretPrefix))
            report.requestWithProof = try await Wrk.measure(
                url: target.base + "/health", seconds: options.wrkSeconds, pid: target.pid,
                headers: ["DPoP: \(proof)", "Authorization: Bearer \(Secrets.secret(prefix: Secrets.pollSecretPrefix))", "Accept: application/json"]
            )
        }

        report.proofCost = try await Floors.proofCost()
        let oauth: Set<Scenario> = [.device, .introspect, .refresh]
        if [.all, .login, .device].contains(options.scenario) {
            report.signingCost = try Floors.signingCost()
        }
        if [.all, .create].contains(options.scenario) || oauth.contains(options.scenario) {
            report.storeCost = try await Floors.storeCost(count: options.smoke ? 200 : 2_000)
        }
        if [.all, .introspect, .refresh].contains(options.scenario) {
            report.oauthStoreCost = try await Floors.oauthStoreCost(count: options.smoke ? 200 : 2_000)
        }
        if options.scenario == .all || options.scenario == .waiting {
            if options.server == nil {
                // A server of its own, so that nothing served before has grown its heap.
                let fresh = try await BenchTarget.spawn()
                defer { fresh.stop() }
                if let pid = fresh.pid, let port = URLComponents(string: fresh.base)?.port {
                    report.connectionCost = try Floors.connectionCost(host: "127.0.0.1", port: UInt16(port), pid: pid, count: options.waiting)
                }
                // And what a waiting PC would cost without Hummingbird: a bare NIO stream.
                let plain = try await BenchTarget.spawn(plainStream: true)
                defer { plain.stop() }
                if let pid = plain.pid, let port = URLComponents(string: plain.base)?.port {
                    report.plainStreamCost = try Floors.connectionCost(host: "127.0.0.1", port: UInt16(port), pid: pid, count: options.waiting, eventStream: true)
                }
            } else {
                print("connection floor: skipped (needs a server the harness starts)")
            }
        }

        let scenarios = Scenarios(api: api, concurrency: options.concurrency)
        // Steps last: it holds 2,000 streams at once, and the heap they leave behind would be
        // filled by the waiting PCs before the server's RSS grew. The OAuth scenarios after the
        // waiting PCs, so that the heap those find is the one it was before they were added.
        let selected = options.scenario == .all
            ? [Scenario.create, .status, .login, .waiting, .device, .introspect, .refresh, .steps]
            : [options.scenario]
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
                let waitingScenario = WaitingScenario(api: api, waiting: options.waiting, confirms: options.confirms, confirmRate: options.confirmRate, phones: phones)
                try await report.measureWaiting(waitingScenario, idleSeconds: options.idleSeconds)
            case .device:
                try await report.measure("device", unit: "login", try await scenarios.deviceLogins(count: options.logins, phones: phones))
            case .introspect:
                try await report.measure("introspect", unit: "req", try await scenarios.introspections(requests: options.requests, phones: phones))
            case .refresh:
                try await report.measure("refresh", unit: "req", try await scenarios.refreshes(requests: options.refreshes, phones: phones))
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

/// The server under test.
final class BenchTarget: Sendable {
    let base: String
    let pid: Int32?
    let process: Process?

    init(base: String, pid: Int32?, process: Process?) {
        self.base = base
        self.pid = pid
        self.process = process
    }

    /// Starts `qrlogin serve` (the binary built beside this one) on a free loopback port with rate limits off
    /// and a temporary SQLite database, and waits for `/health`. Ports are picked below the
    /// kernel's ephemeral range, where the generator's own thousands of connections take theirs,
    /// and a server that exits at once (the port was taken after all) is tried again on another.
    /// With `plainStream`, starts the bare NIO stream server of the memory floor instead
    /// (``PlainStreamServerCommand``).
    /// The server registers the bench's OAuth clients at start (``BenchClients``, from a client
    /// file) and lets a device poll every second, the least it allows, so that a device that
    /// polls once its phone has confirmed is never told to slow down.
    static func spawn(plainStream: Bool = false) async throws -> BenchTarget {
        for _ in 0..<5 {
            let port = Int.random(in: 20_000...32_000)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-bench-\(port)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let clientFile = directory.appendingPathComponent("clients.json")
            try BenchClients.file(resourceServerSecret: BenchClients.resourceServerSecret).write(to: clientFile)
            let process = Process()
            // The plain stream server is this binary's; `qrlogin serve` is the one built beside it.
            let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            process.executableURL = plainStream ? me : me.deletingLastPathComponent().appendingPathComponent("qrlogin")
            process.arguments = plainStream
                ? ["plain-stream-server", "--port", String(port)]
                : ["serve", "--port", String(port), "--database", directory.appendingPathComponent("bench.sqlite").path,
                   "--rate-limits", "off", "--bcrypt-cost", "4", "--log-level", "error",
                   "--client-file", clientFile.path, "--device-interval", "1"]
            try process.run()
            let target = BenchTarget(base: "http://127.0.0.1:\(port)", pid: process.processIdentifier, process: process)
            for _ in 0..<200 where process.isRunning {
                if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: target.base + "/health"), timeout: .seconds(1)), response.status == .ok {
                    return target
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            target.stop()
        }
        throw BenchError.unexpected("server did not start")
    }

    func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}

/// `wrk` on `GET /health`: the ceiling every figure is compared with.
enum Wrk {
    struct Ceiling {
        var requestsPerSecond: Double
        var perServerCPUSecond: Double?
    }

    /// - Parameter headers: extra request headers (`Name: value`), sent with every request.
    static func measure(url: String, seconds: Int, pid: Int32?, headers: [String] = []) async throws -> Ceiling? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["wrk", "-t2", "-c64", "-d\(seconds)s"] + headers.flatMap { ["-H", $0] } + [url]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        let cpuBefore = pid.flatMap(ProcessStats.cpuSeconds)
        do { try process.run() } catch {
            print("wrk: not found; install Debian's wrk for the ceiling (Benchmarks/run-server.sh does)")
            return nil
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let cpuAfter = pid.flatMap(ProcessStats.cpuSeconds)
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
        return Ceiling(requestsPerSecond: rate, perServerCPUSecond: perCPU)
    }
}
