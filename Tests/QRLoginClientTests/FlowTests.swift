import Crypto
import Foundation
import QRLoginClient
import QRLoginCore
import Synchronization
import Testing

/// The PC side's view of a login that the phone answers with `answer` on `scanned`.
private func runFlow(
    pc: QRLoginClient, phone: QRLoginClient, transport mode: WaitTransport = .automatic,
    answer: @escaping @Sendable (ScanResult, LoginStatus) async throws -> Void
) async throws -> [LoginStatus] {
    let login = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "build box"))
    var seen: [LoginStatus] = []
    var scan: ScanResult?
    for try await status in pc.waitForLogin(login, transport: mode) {
        seen.append(status)
        switch status.state {
        case .pending: scan = try await phone.scan(url: login.url)
        case .scanned: try await answer(try #require(scan), status)
        default: break
        }
    }
    return seen
}

@Suite("SDK against a live server")
struct FlowTests {
    @Test("two identities complete the flow; the PC sees pending, scanned with the match, confirmed with the token", arguments: [WaitTransport.automatic, .longPoll])
    func fullFlow(mode: WaitTransport) async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("alice", displayName: "Alice")
            let pc = try server.client()
            #expect(await pc.accessToken == nil)
            let seen = try await runFlow(pc: pc, phone: phone, transport: mode) { scan, status in
                let match = try #require(status.match)
                #expect(scan.matchChoices.contains(match))
                #expect(scan.requester.name == "build box")
                #expect(scan.requester.type == .cli)
                #expect(scan.requester.userAgent == "QRLoginClientTests")
                try await phone.confirm(scan, match: match)
            }
            #expect(seen.map(\.state) == [.pending, .scanned, .confirmed])
            #expect(seen[1].scanner?.displayName == "Alice")
            #expect(seen[1].match != nil)
            let token = try #require(seen[2].token)
            #expect(token.deviceId == pc.deviceId)
            #expect(token.accessToken.hasPrefix("qrl_at_"))
            #expect(await pc.accessToken == token.accessToken)

            let me = try await pc.me()
            #expect(me.account.username == "alice")
            #expect(me.device.id == pc.deviceId)
            #expect(me.token.origin == .qr)
            #expect(me.token.approvedBy == phone.deviceId)
            let devices = try await phone.devices()
            #expect(Set(devices.map(\.id)) == [phone.deviceId, pc.deviceId])
        }
    }

    @Test("deny ends the sequence with denied")
    func deny() async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("bob")
            let pc = try server.client()
            let seen = try await runFlow(pc: pc, phone: phone) { scan, _ in try await phone.deny(scan) }
            #expect(seen.map(\.state) == [.pending, .scanned, .denied])
            #expect(seen.last?.reason == .user)
            #expect(await pc.accessToken == nil)
        }
    }

    @Test("a wrong number denies, and the phone gets wrong_match")
    func wrongMatch() async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("carol")
            let pc = try server.client()
            let seen = try await runFlow(pc: pc, phone: phone) { scan, status in
                let wrong = try #require(scan.matchChoices.first { $0 != status.match })
                let error = await #expect(throws: QRLoginClientError.self) { try await phone.confirm(scan, match: wrong) }
                #expect(error?.code == "wrong_match")
            }
            #expect(seen.map(\.state) == [.pending, .scanned, .denied])
            #expect(seen.last?.reason == .wrongMatch)
        }
    }

    @Test("expiry ends the sequence with expired", arguments: [WaitTransport.serverSentEvents, .longPoll])
    func expiry(mode: WaitTransport) async throws {
        try await InProcessServer.with(requestTTL: 1) { server in
            let pc = try server.client()
            let login = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "slow"))
            var states: [LoginState] = []
            for try await status in pc.waitForLogin(login, transport: mode) { states.append(status.state) }
            #expect(states == [.pending, .expired])
        }
    }

    @Test("cancel ends the sequence with cancelled")
    func cancel() async throws {
        try await InProcessServer.with { server in
            let pc = try server.client()
            let login = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "x"))
            var states: [LoginState] = []
            for try await status in pc.waitForLogin(login) {
                states.append(status.state)
                if status.state == .pending { try await pc.cancel(login) }
            }
            #expect(states == [.pending, .cancelled])
        }
    }

    @Test("cancelling the waiting task cancels the request on the server")
    func taskCancellation() async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("dave")
            let pc = try server.client()
            let login = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "x"))
            let (started, signal) = AsyncStream<Void>.makeStream()
            let waiting = Task {
                for try await status in pc.waitForLogin(login) where status.state == .pending { signal.yield() }
            }
            for await _ in started { break }
            waiting.cancel()
            let result = await waiting.result
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(try await pc.status(of: login).state == .cancelled)
            let error = await #expect(throws: QRLoginClientError.self) { try await phone.scan(url: login.url) }
            #expect(error?.code == "request_cancelled")
        }
    }

    @Test("a dropped event stream is reconnected and the change made meanwhile arrives", arguments: DroppingTransport.Cut.allCases)
    func droppedStream(cut: DroppingTransport.Cut) async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("erin")
            let transport = DroppingTransport(cut: cut)
            let pc = try server.client(transport: transport)
            // The phone scans while the PC's stream is down (after its first event, before
            // the PC reads again), so `scanned` only reaches the PC through the reconnect.
            let seen = try await runFlow(pc: pc, phone: phone, transport: .serverSentEvents) { scan, status in
                try await phone.confirm(scan, match: try #require(status.match))
            }
            #expect(seen.map(\.state) == [.pending, .scanned, .confirmed])
            #expect(seen.last?.token != nil)
            #expect(transport.streams >= 2)
            _ = try await pc.me()
        }
    }

    @Test("a server that answers the event stream with plain JSON: long-poll takes over and no change is lost")
    func plainJSONFallback() async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("kate", displayName: "Kate")
            let transport = PlainJSONTransport()
            let pc = try server.client(transport: transport)
            let login = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "behind a proxy"))
            // The phone scans after the server answered `pending` and before the PC reads it,
            // so `scanned` only reaches the PC through the long-poll that takes over.
            let scan = Mutex<ScanResult?>(nil)
            transport.afterFirstAnswer {
                let result = try await phone.scan(url: login.url)
                scan.withLock { $0 = result }
            }
            var seen: [LoginStatus] = []
            for try await status in pc.waitForLogin(login) {
                seen.append(status)
                if status.state == .scanned {
                    try await phone.confirm(try #require(scan.withLock { $0 }), match: try #require(status.match))
                }
            }
            #expect(seen.map(\.state) == [.pending, .scanned, .confirmed])
            #expect(seen[1].scanner?.displayName == "Kate")
            #expect(seen.last?.token?.deviceId == pc.deviceId)
            #expect(transport.streams == 1, "after a plain JSON answer it does not ask for a stream again")
            #expect(transport.longPolls >= 2)
            #expect(try await pc.me().account.username == "kate")
        }
    }

    @Test("in SSE-only mode, plain JSON answers are retried with backoff, then fail clearly")
    func plainJSONWithoutFallback() async throws {
        try await InProcessServer.with { server in
            let transport = PlainJSONTransport()
            let pc = try server.client(transport: transport)
            let login = try await pc.createLogin(device: DeviceDescription(type: .cli, name: "x"))
            let started = ContinuousClock.now
            let error = await #expect(throws: QRLoginClientError.self) {
                for try await _ in pc.waitForLogin(login, transport: .serverSentEvents) {}
            }
            #expect(error?.description.contains("not an event stream") == true, "\(String(describing: error))")
            // 6 attempts with 0.25 + 0.5 + 1 + 2 + 4 s between them, not a busy loop.
            #expect(transport.streams == 6)
            #expect(ContinuousClock.now - started >= .seconds(7))
            #expect(transport.longPolls == 0)
        }
    }

    @Test("a stolen token is refused with another key")
    func stolenToken() async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("frank")
            let pc = try server.client()
            let seen = try await runFlow(pc: pc, phone: phone) { scan, status in try await phone.confirm(scan, match: try #require(status.match)) }
            let token = try #require(seen.last?.token?.accessToken)
            _ = try await pc.me()

            let thief = try server.client(token: token)
            let error = await #expect(throws: QRLoginClientError.self) { try await thief.me() }
            #expect(error?.code == "invalid_token")
            if case .server(let problem) = error { #expect(problem.status == 401) }
        }
    }

    @Test("revoking the PC from the phone ends the PC's session")
    func revoke() async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("gina")
            let pc = try server.client()
            _ = try await runFlow(pc: pc, phone: phone) { scan, status in try await phone.confirm(scan, match: try #require(status.match)) }
            try await phone.revoke(deviceId: pc.deviceId)
            let error = await #expect(throws: QRLoginClientError.self) { try await pc.me() }
            #expect(error?.code == "invalid_token")
            try await phone.logout()
            #expect(await phone.accessToken == nil)
            await #expect(throws: QRLoginClientError.notSignedIn) { try await phone.me() }
        }
    }

    @Test("server refusals carry the problem code and a readable message")
    func problems() async throws {
        try await InProcessServer.with { server in
            let phone = try await server.signedInPhone("hank")
            let error = await #expect(throws: QRLoginClientError.self) {
                try await phone.register(username: "hank", password: "another password")
            }
            #expect(error?.code == "username_taken")
            #expect(error?.description.contains("username_taken") == true)
            let missing = await #expect(throws: QRLoginClientError.self) { try await phone.scan(url: "\(server.url)/q/AAAAAAAAAAAAAAAAAAAAAA") }
            #expect(missing?.code == "not_found")
        }
    }

    @Test("an unreachable server is reported as such")
    func unreachable() async throws {
        let error = await #expect(throws: QRLoginClientError.self) {
            try await AsyncHTTPClientTransport.withOwnClient { transport in
                let client = try QRLoginClient(server: "http://127.0.0.1:9", key: .init(), transport: transport)
                return try await client.createLogin(device: DeviceDescription(type: .cli, name: "x"))
            }
        }
        guard case .unreachable = error else {
            Issue.record("expected unreachable, got \(String(describing: error))")
            return
        }
    }
}
