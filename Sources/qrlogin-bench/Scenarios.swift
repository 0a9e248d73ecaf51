import AsyncHTTPClient
import Foundation
import QRLoginCore
import Synchronization

/// The load scenarios. Each runs against a server it does not own. A scenario's function does
/// what may be done ahead (keys, pre-signed proofs, requests to read) and returns the part that
/// is timed, which returns what it saw.
struct Scenarios {
    typealias Run = @Sendable () async throws -> Measurements

    let api: BenchAPI
    let concurrency: Int

    private func elapsedMS(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    /// PCs creating login requests as fast as they can. Proofs are signed before the clock
    /// starts, so the generator's signing is not what is measured.
    func create(requests: Int) async throws -> Run {
        let signers = (0..<concurrency).map { _ in DPoPSigner() }
        let perWorker = requests / concurrency
        let proofs = try signers.map { signer in try (0..<perWorker).map { _ in try api.createProof(signer) } }
        return {
            try await runWorkers { worker in
                var m = Measurements()
                for proof in proofs[worker] {
                    let start = ContinuousClock.now
                    let (reply, _) = try await api.create(signer: signers[worker], proof: proof)
                    m.latencies.append(elapsedMS(since: start))
                    if reply.status == 201 { m.completed += 1 } else { m.errors["\(reply.status)", default: 0] += 1 }
                }
                return m
            }
        }
    }

    /// PCs reading the state of their pending requests (poll secret + proof), proofs pre-signed.
    func status(requests: Int) async throws -> Run {
        var logins: [BenchAPI.PCLogin] = []
        for _ in 0..<concurrency {
            let signer = DPoPSigner()
            guard let login = try await api.create(signer: signer, proof: try api.createProof(signer)).1 else { throw BenchError.unexpected("create") }
            logins.append(login)
        }
        let perWorker = requests / concurrency
        let proofs = try logins.map { login in try (0..<perWorker).map { _ in try api.statusProof(login) } }
        let pcs = logins
        return {
            try await runWorkers { worker in
                var m = Measurements()
                for proof in proofs[worker] {
                    let start = ContinuousClock.now
                    let reply = try await api.status(pcs[worker], proof: proof)
                    m.latencies.append(elapsedMS(since: start))
                    if reply.status == 200 { m.completed += 1 } else { m.errors["\(reply.status)", default: 0] += 1 }
                }
                return m
            }
        }
    }

    /// Complete logins: create, wait by SSE, scan, confirm with the right number, pickup from
    /// the stream, then one `GET /api/v1/me` with the new token. Each login's PC key and its
    /// create's proof are made before the clock starts (a new key costs more than a signature
    /// check: swift-crypto tests every key it generates with a signature of its own); the other
    /// four proofs name ids and tokens only the server hands out, so they are signed live.
    func login(count: Int, phones: [BenchAPI.Phone]) async throws -> Run {
        let perWorker = max(1, count / concurrency)
        let pcs = try (0..<concurrency).map { _ in
            try (0..<perWorker).map { _ in
                let pc = DPoPSigner()
                return (pc: pc, createProof: try api.createProof(pc))
            }
        }
        return {
            try await runWorkers { worker in
                var m = Measurements()
                let phone = phones[worker % phones.count]
                for (pc, createProof) in pcs[worker] {
                    let start = ContinuousClock.now
                    do {
                        try await oneLogin(pc: pc, createProof: createProof, phone: phone)
                        m.completed += 1
                        m.latencies.append(elapsedMS(since: start))
                    } catch {
                        m.errors["\(error)", default: 0] += 1
                    }
                }
                return m
            }
        }
    }

    private func oneLogin(pc: DPoPSigner, createProof: String, phone: BenchAPI.Phone) async throws {
        let login = try await api.createLogin(pc, proof: createProof)
        var events = try await api.openStream(login)
        let (ticket, match) = try await api.scan(login, by: phone, seenIn: &events)
        let token = try await api.confirm(login, ticket: ticket, match: match, by: phone, collectingFrom: &events)
        try await api.checkMe(pc, token: token)
    }

    /// Runs `concurrency` workers and merges what they measured.
    func runWorkers(_ body: @escaping @Sendable (Int) async throws -> Measurements) async throws -> Measurements {
        try await withThrowingTaskGroup(of: Measurements.self) { group in
            for worker in 0..<concurrency { group.addTask { try await body(worker) } }
            var total = Measurements()
            for try await part in group { total.merge(part) }
            return total
        }
    }
}

/// The waiting scenario: many PCs hold an event stream open while phones confirm some of
/// them at a fixed rate; measures confirm response → PC `confirmed` event.
/// With `instances` (a cluster's instances, each reached on its own port), PC number i waits on
/// instance i mod N and its phone scans and confirms on instance (i + 1) mod N, so that every
/// notification goes from one instance through the database to another.
struct WaitingScenario {
    let api: BenchAPI
    let waiting: Int
    let confirms: Int
    let confirmRate: Double
    let phones: [BenchAPI.Phone]
    var instances: [BenchAPI] = []

    /// Where PC number `index` waits (and reads its status).
    func pcAPI(_ index: Int) -> BenchAPI { instances.isEmpty ? api : instances[index % instances.count] }

    /// Where the phone of PC number `index` scans and confirms.
    func phoneAPI(_ index: Int) -> BenchAPI { instances.isEmpty ? api : instances[(index + 1) % instances.count] }

    /// Streams being opened at once.
    static let openWindow = 64

    static func ms(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    struct Result {
        var measurements: Measurements
        var opened: Int
    }

    /// When each PC saw its `confirmed` event.
    private final class Arrivals: Sendable {
        let times = Mutex<[String: ContinuousClock.Instant]>([:])
        let opened = Atomic<Int>(0)
    }

    /// Creates the requests, opens every stream and waits until each saw `pending`.
    /// `onOpen` runs once all streams are open (to measure memory and idle CPU).
    func run(onOpen: @Sendable () async throws -> Void) async throws -> Result {
        var logins: [BenchAPI.PCLogin] = []
        logins.reserveCapacity(waiting)
        let creator = Scenarios(api: api, concurrency: 32)
        let created = Mutex<[BenchAPI.PCLogin]>([])
        _ = try await creator.runWorkers { worker in
            let signer = DPoPSigner()
            var mine: [BenchAPI.PCLogin] = []
            for _ in stride(from: worker, to: waiting, by: 32) {
                if let login = try await api.create(signer: signer, proof: try api.createProof(signer)).1 { mine.append(login) }
            }
            created.withLock { $0 += mine }
            return Measurements()
        }
        logins = created.withLock { $0 }
        let streams = logins
        let arrivals = Arrivals()
        var measurements = Measurements()
        // PCs arrive a few at a time: at most `openWindow` streams are being opened at once, the
        // next one starting when one has its `pending` event (or has failed). Without a window
        // every stream's request reaches the server at once, and what the server keeps per
        // waiting PC then depends on how fast this process happens to send them.
        let (openings, opening) = AsyncStream.makeStream(of: Void.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var started = 0
            var openingsLeft = openings.makeAsyncIterator()
            while started < streams.count {
                if started >= Self.openWindow {
                    guard await openingsLeft.next() != nil else { break }
                }
                let login = streams[started]
                let pcAPI = pcAPI(started)
                started += 1
                group.addTask {
                    var events: EventStream
                    do {
                        events = try await pcAPI.events(login)
                        let first = try await events.next()
                        opening.yield(())
                        guard first?.name == "pending" else { return }
                    } catch {
                        opening.yield(())
                        throw error
                    }
                    arrivals.opened.add(1, ordering: .relaxed)
                    while let event = try await events.next() {
                        if event.name == "confirmed" {
                            arrivals.times.withLock { $0[login.id] = .now }
                        }
                    }
                }
            }
            // Wait for every stream to be open (or give up after a minute).
            let openDeadline = ContinuousClock.now + .seconds(60)
            while arrivals.opened.load(ordering: .relaxed) < logins.count, ContinuousClock.now < openDeadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            try await onOpen()

            // Confirm `confirms` of them at `confirmRate` per second.
            let interval = Duration.milliseconds(Int64(1000 / confirmRate))
            var confirmedAt: [String: ContinuousClock.Instant] = [:]
            var sentAt: [String: ContinuousClock.Instant] = [:]
            let targets = Array(logins.prefix(confirms))
            var next = ContinuousClock.now
            for (index, login) in targets.enumerated() {
                try await Task.sleep(until: next)
                next += interval
                let phone = phones[index % phones.count]
                let (pcAPI, phoneAPI) = (pcAPI(index), phoneAPI(index))
                let scan = try await phoneAPI.scan(login.id, by: phone)
                guard scan.status == 200, let ticket = scan.json["ticket"] as? String else {
                    measurements.errors["scan \(scan.status)", default: 0] += 1
                    continue
                }
                let state = try await pcAPI.status(login, proof: try pcAPI.statusProof(login))
                guard let match = state.json["match"] as? Int else {
                    measurements.errors["status \(state.status)", default: 0] += 1
                    continue
                }
                let sent = ContinuousClock.now
                let confirm = try await phoneAPI.confirm(login.id, ticket: ticket, match: match, by: phone)
                let at = ContinuousClock.now
                sentAt[login.id] = sent
                if confirm.status == 200 { confirmedAt[login.id] = at } else { measurements.errors["confirm \(confirm.status)", default: 0] += 1 }
            }
            // Let the last events arrive, then end every stream.
            try await Task.sleep(for: .seconds(1))
            let arrived = arrivals.times.withLock { $0 }
            for (id, sent) in confirmedAt {
                guard let seen = arrived[id] else {
                    measurements.errors["no event", default: 0] += 1
                    continue
                }
                // The event can reach the PC before the phone has read its own response: that
                // counts as no delay.
                measurements.latencies.append(max(0, Self.ms(seen - sent)))
                if let request = sentAt[id] { measurements.fromRequest.append(Self.ms(seen - request)) }
                measurements.completed += 1
            }
            group.cancelAll()
        }
        return Result(measurements: measurements, opened: arrivals.opened.load(ordering: .relaxed))
    }
}

/// The steps of a login one at a time: every PC takes a step before any takes the next, and
/// the server's CPU is read between steps, so each step's cost per login is its own.
struct StepsScenario {
    let api: BenchAPI
    let concurrency: Int
    let logins: Int
    let phones: [BenchAPI.Phone]

    /// One PC's login as it goes through the steps. Unchecked: its stream's iterator is not
    /// `Sendable`, but each flow is used by one task at a time, handed on between steps.
    struct Flow: @unchecked Sendable {
        var login: BenchAPI.PCLogin
        var events: EventStream?
        var phone: BenchAPI.Phone
        var ticket = ""
        var match = 0
        var token = ""
    }

    static let names = ["create", "open stream (and its pending event)", "scan (and the scanned event)", "confirm (and the confirmed event with the token)", "me"]

    /// Runs the steps; returns each step's server CPU per login in microseconds.
    func run(serverCPU: @Sendable () -> Double?) async throws -> [Double] {
        let perWorker = max(1, logins / concurrency)
        let prepared = try (0..<concurrency).map { _ in
            try (0..<perWorker).map { _ in
                let pc = DPoPSigner()
                return (pc, try self.api.createProof(pc))
            }
        }
        var flows: [[Flow]] = Array(repeating: [], count: concurrency)
        var costs: [Double] = []
        let api = self.api, phones = self.phones
        for step in 0..<Self.names.count {
            let before = serverCPU()
            flows = try await withThrowingTaskGroup(of: (Int, [Flow]).self) { group in
                for worker in 0..<concurrency {
                    let mine = flows[worker]
                    let made = prepared[worker]
                    group.addTask {
                        var out: [Flow] = []
                        if step == 0 {
                            for (pc, proof) in made {
                                let login = try await api.createLogin(pc, proof: proof)
                                out.append(Flow(login: login, events: nil, phone: phones[worker % phones.count]))
                            }
                            return (worker, out)
                        }
                        for var flow in mine {
                            switch step {
                            case 1:
                                flow.events = try await api.openStream(flow.login)
                            case 2:
                                guard var events = flow.events else { throw BenchError.unexpected("no stream") }
                                (flow.ticket, flow.match) = try await api.scan(flow.login, by: flow.phone, seenIn: &events)
                                flow.events = events
                            case 3:
                                guard var events = flow.events else { throw BenchError.unexpected("no stream") }
                                flow.token = try await api.confirm(flow.login, ticket: flow.ticket, match: flow.match, by: flow.phone, collectingFrom: &events)
                                flow.events = events
                            default:
                                try await api.checkMe(flow.login.pc, token: flow.token)
                            }
                            out.append(flow)
                        }
                        return (worker, out)
                    }
                }
                var next: [[Flow]] = Array(repeating: [], count: concurrency)
                for try await (worker, out) in group { next[worker] = out }
                return next
            }
            let after = serverCPU()
            costs.append(((after ?? .nan) - (before ?? .nan)) / Double(perWorker * concurrency) * 1e6)
        }
        return costs
    }
}

/// The OAuth scenarios: device-grant logins, introspection by a resource server, and refreshes.
extension Scenarios {
    /// A device (the bench CLI) with its DPoP key and the two proofs of its login, which name
    /// only a method and URL and so are signed before the clock starts.
    struct Device: Sendable {
        var key: DPoPSigner
        var authorizationProof: String
        var tokenProof: String
    }

    func device() throws -> Device {
        let key = DPoPSigner()
        return Device(key: key, authorizationProof: try api.deviceAuthorizationProof(key), tokenProof: try api.tokenProof(key))
    }

    /// One device-grant login: the device asks for a device code, the phone scans the request
    /// and confirms with the device's user code, the device polls once and gets its tokens (the
    /// server runs with a poll interval of 1 s, and a first poll is never too soon).
    func deviceLogin(_ device: Device, phone: BenchAPI.Phone) async throws -> BenchAPI.OAuthTokens {
        let start = try await api.authorizeDevice(proof: device.authorizationProof)
        try await api.approve(start, by: phone)
        return try await api.redeem(start, proof: device.tokenProof)
    }

    /// Device-grant logins by `concurrency` pairs of a device and a phone. Each device's key and
    /// its two proofs are made before the clock starts; the phone's scan and confirm proofs
    /// name the request and the phone's token, so they are signed live (as in `login`).
    func deviceLogins(count: Int, phones: [BenchAPI.Phone]) async throws -> Run {
        let perWorker = max(1, count / concurrency)
        let devices = try (0..<concurrency).map { _ in try (0..<perWorker).map { _ in try device() } }
        return {
            try await runWorkers { worker in
                var m = Measurements()
                let phone = phones[worker % phones.count]
                for device in devices[worker] {
                    let start = ContinuousClock.now
                    do {
                        _ = try await deviceLogin(device, phone: phone)
                        m.completed += 1
                        m.latencies.append(elapsedMS(since: start))
                    } catch {
                        m.errors["\(error)", default: 0] += 1
                    }
                }
                return m
            }
        }
    }

    /// Access tokens made by device-grant logins before the clock: `perWorker` for each worker.
    private func accessTokens(perWorker: Int, phones: [BenchAPI.Phone]) async throws -> [[String]] {
        let made = Mutex<[Int: [String]]>([:])
        _ = try await runWorkers { worker in
            var mine: [String] = []
            for _ in 0..<perWorker {
                mine.append(try await deviceLogin(try device(), phone: phones[worker % phones.count]).accessToken)
            }
            made.withLock { $0[worker] = mine }
            return Measurements()
        }
        let tokens = made.withLock { $0 }
        return (0..<concurrency).map { tokens[$0] ?? [] }
    }

    /// Live DPoP-bound access tokens made by device-grant logins, one per worker: what wrk
    /// introspects (``Wrk/introspections(api:tokens:seconds:target:)``).
    func introspectionTokens(phones: [BenchAPI.Phone]) async throws -> [String] {
        try await accessTokens(perWorker: 1, phones: phones).flatMap { $0 }
    }

    /// A resource server introspecting access tokens as fast as it can, with its HTTP Basic
    /// credentials. The tokens are a pool of `tokensPerWorker` live DPoP-bound access tokens per
    /// worker, made by device-grant logins before the clock starts; every answer must say
    /// `active`.
    func introspections(requests: Int, tokensPerWorker: Int = 8, phones: [BenchAPI.Phone]) async throws -> Run {
        let pool = try await accessTokens(perWorker: tokensPerWorker, phones: phones)
        let perWorker = requests / concurrency
        let authorization = api.resourceServerAuthorization
        return {
            try await runWorkers { worker in
                var m = Measurements()
                let tokens = pool[worker]
                for index in 0..<perWorker {
                    let start = ContinuousClock.now
                    let reply = try await api.introspect(tokens[index % tokens.count], authorization: authorization)
                    m.latencies.append(elapsedMS(since: start))
                    if reply.status == 200, BenchAPI.isActive(reply.body) {
                        m.completed += 1
                    } else {
                        m.errors[reply.status == 200 ? "inactive" : "\(reply.status)", default: 0] += 1
                    }
                }
                return m
            }
        }
    }

    /// A device's refresh token with the proofs of its key for the refreshes to come.
    struct RefreshChain: Sendable {
        var first: String
        var proofs: [String]
    }

    /// One chain per worker: a device-grant login each, and `proofsEach` proofs signed now (the
    /// generator's refreshes, and wrk's).
    func refreshChains(proofsEach: Int, phones: [BenchAPI.Phone]) async throws -> [RefreshChain] {
        let made = Mutex<[Int: RefreshChain]>([:])
        _ = try await runWorkers { worker in
            let device = try device()
            let tokens = try await deviceLogin(device, phone: phones[worker % phones.count])
            let proofs = try (0..<proofsEach).map { _ in try api.tokenProof(device.key) }
            made.withLock { $0[worker] = RefreshChain(first: tokens.refreshToken, proofs: proofs) }
            return Measurements()
        }
        return try (0..<concurrency).map { worker in
            guard let chain = made.withLock({ $0[worker] }) else { throw BenchError.unexpected("no chain for worker \(worker)") }
            return chain
        }
    }

    /// Devices refreshing in a loop: each worker logs a device in by the device grant (before
    /// the clock) and then exchanges its refresh token, with a proof of the key its family is
    /// bound to, for a new one, `requests / concurrency` times. Each answer's refresh token is
    /// the next one sent. The proofs name only the method and URL, so they are signed
    /// beforehand. A failed refresh ends its worker's chain (its token may have been used).
    func refreshes(requests: Int, phones: [BenchAPI.Phone]) async throws -> Run {
        let chains = try await refreshChains(proofsEach: requests / concurrency, phones: phones)
        return {
            try await runWorkers { worker in
                var m = Measurements()
                var refreshToken = chains[worker].first
                for proof in chains[worker].proofs {
                    let start = ContinuousClock.now
                    let reply = try await api.refresh(refreshToken, proof: proof)
                    m.latencies.append(elapsedMS(since: start))
                    guard reply.status == 200, let next = BenchAPI.tokens(in: reply.body) else {
                        m.errors["\(reply.status) \(reply.text)", default: 0] += 1
                        break
                    }
                    refreshToken = next.refreshToken
                    m.completed += 1
                }
                return m
            }
        }
    }
}
