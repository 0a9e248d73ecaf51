import Foundation
import QRLoginCore

/// The state changes of one login request: see ``QRLoginClient/waitForLogin(_:transport:)``.
public struct LoginUpdates: AsyncSequence, Sendable {
    /// A state change.
    public typealias Element = LoginStatus

    let client: QRLoginClient
    let login: PendingLogin
    let mode: WaitTransport

    /// Starts listening.
    public func makeAsyncIterator() -> Iterator {
        Iterator(waiter: LoginWaiter(client: client, login: login, mode: mode))
    }

    /// Yields each new state; cancels the request on the server when the task is cancelled.
    public struct Iterator: AsyncIteratorProtocol {
        let waiter: LoginWaiter

        /// The next state, or nil after a final one.
        public mutating func next() async throws -> LoginStatus? {
            do {
                return try await waiter.next()
            } catch {
                guard Task.isCancelled else { throw error }
                await waiter.cancelOnServer()
                throw CancellationError()
            }
        }
    }
}

/// The listening loop behind ``LoginUpdates``: one consumer, so no locking.
final class LoginWaiter {
    /// Consecutive failures tolerated before giving up; the backoff doubles from 0.25 s to 5 s.
    static let maxFailures = 6
    /// Seconds one long-poll waits on the server.
    static let longPollWait = 25

    let client: QRLoginClient
    let login: PendingLogin
    var mode: WaitTransport
    private var last: LoginState?
    private var finished = false
    private var failures = 0
    private var reconnected = false
    private var sseFailuresBeforeData = 0
    private var stream: ResponseBody.AsyncIterator?
    private var parser = ServerSentEventParser()
    private var queued: [LoginStatus] = []

    init(client: QRLoginClient, login: PendingLogin, mode: WaitTransport) {
        self.client = client
        self.login = login
        self.mode = mode
    }

    func next() async throws -> LoginStatus? {
        while !finished {
            try Task.checkCancellation()
            var status: LoginStatus
            do {
                status = try await receive()
                failures = 0
            } catch let error as QRLoginClientError {
                if case .server(let problem) = error, problem.code == "expired", problem.status == 410 {
                    // The pickup window closed (or the request is gone): the request is over.
                    status = LoginStatus(id: login.id, state: .expired, expiresAt: login.expiresAt, interval: login.interval)
                } else if Self.isTransient(error) {
                    try await recover(from: error)
                    continue
                } else {
                    finished = true
                    stream = nil
                    throw error
                }
            }
            guard status.state != last else { continue }
            last = status.state
            if status.state.isFinal {
                finished = true
                stream = nil
            }
            if status.state == .confirmed, var token = status.token {
                if reconnected { token = try await verified(token) }
                status.token = token
                await client.setAccessToken(token.accessToken)
            }
            return status
        }
        return nil
    }

    /// Cancels the request on the server, even though the calling task is cancelled.
    func cancelOnServer() async {
        stream = nil
        guard !finished else { return }
        finished = true
        let client = client, login = login
        await Task { _ = try? await client.cancel(login) }.value
    }

    /// After a reconnect, the server may still hold the dropped stream: when the confirm wakes
    /// it, it collects a token too, and each collection revokes the one before. If the token
    /// we got is already refused, collect once more (the dropped stream has ended by then).
    private func verified(_ token: LoginToken) async throws -> LoginToken {
        do {
            _ = try await client.call("GET", "/api/v1/me", auth: .session, token: token.accessToken, as: Me.self)
            return token
        } catch let error as QRLoginClientError where error.code == "invalid_token" {
            guard let fresh = try await client.status(of: login).token else { throw error }
            return fresh
        }
    }

    private static func isTransient(_ error: QRLoginClientError) -> Bool {
        switch error {
        case .unreachable, .invalidResponse: true
        // A replayed proof on the stream's GET was re-sent by a proxy; the next try signs anew.
        case .server(let problem): problem.status >= 500 || problem.status == 429 || problem.code == "dpop_proof_replayed"
        case .notSignedIn, .invalidLoginURL, .invalidServerURL: false
        }
    }

    private func recover(from error: QRLoginClientError) async throws {
        stream = nil
        parser = ServerSentEventParser()
        reconnected = true
        failures += 1
        if failures >= Self.maxFailures { finished = true; throw error }
        let delay = min(5.0, 0.25 * Double(1 << (failures - 1)))
        try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
    }

    /// The next status from the event stream or a long-poll.
    private func receive() async throws -> LoginStatus {
        if !queued.isEmpty { return queued.removeFirst() }
        switch mode {
        case .longPoll:
            if let last {
                return try await client.status(of: login, waitingUpTo: Self.longPollWait, known: last)
            }
            return try await client.status(of: login)
        case .automatic, .serverSentEvents:
            return try await receiveEvent()
        }
    }

    private func receiveEvent() async throws -> LoginStatus {
        if stream == nil {
            if let status = try await openStream() { return status }
        }
        while true {
            let chunk: [UInt8]?
            do {
                chunk = try await stream?.next()
            } catch {
                if Task.isCancelled { throw CancellationError() }
                throw QRLoginClientError.invalidResponse("the event stream broke: \(QRLoginClient.describe(error))")
            }
            guard let chunk else {
                // A clean end before a final state: the server restarted or a proxy cut us off.
                throw QRLoginClientError.unreachable(server: client.server, reason: "the event stream ended early")
            }
            for event in parser.feed(chunk) {
                let data = Data(event.data.utf8)
                if event.name == "error" {
                    throw QRLoginClientError.server(QRLoginClient.problem(status: 410, data))
                }
                do {
                    queued.append(try JSONDecoder.qrlogin.decode(LoginStatus.self, from: data))
                } catch {
                    throw QRLoginClientError.invalidResponse("bad event \(event.name): \(error)")
                }
            }
            if !queued.isEmpty {
                sseFailuresBeforeData = 0
                return queued.removeFirst()
            }
        }
    }

    /// Opens the event stream. In `.automatic` mode, returns the status when the server
    /// answered with plain JSON instead, and long-poll takes over; in `.serverSentEvents` mode
    /// that answer is an error.
    private func openStream() async throws -> LoginStatus? {
        let request = try client.makeRequest("GET", "/api/v1/qr/\(login.id)", auth: .pollSecret(login.pollSecret), token: nil, accept: "text/event-stream")
        let response: TransportResponse
        do {
            response = try await client.send(request)
        } catch let error as QRLoginClientError {
            if case .unreachable = error, mode == .automatic {
                sseFailuresBeforeData += 1
                if sseFailuresBeforeData >= 2 { mode = .longPoll }
            }
            throw error
        }
        guard (200..<300).contains(response.status) else {
            let data = try await QRLoginClient.readBody(response)
            throw QRLoginClientError.server(QRLoginClient.problem(status: response.status, data))
        }
        if response.header("Content-Type")?.lowercased().hasPrefix("text/event-stream") == true {
            stream = response.body.makeAsyncIterator()
            parser = ServerSentEventParser()
            return nil
        }
        let data = try await QRLoginClient.readBody(response)
        guard mode == .automatic else {
            // Asking again at once would get the same answer: fail like a broken stream, so
            // the reconnect backoff paces the retries and the limit ends them.
            throw QRLoginClientError.invalidResponse("the server answered with plain JSON, not an event stream (wait with .automatic to fall back to long-poll)")
        }
        let status: LoginStatus
        do {
            status = try JSONDecoder.qrlogin.decode(LoginStatus.self, from: data)
        } catch {
            throw QRLoginClientError.invalidResponse("expected an event stream or a login status")
        }
        mode = .longPoll
        return status
    }
}
