import Foundation
import QRLoginCore

/// The PC's side of a QR login: create a request, show its url, wait, collect the token.
extension QRLoginClient {
    private struct CreateBody: Encodable {
        var device: DeviceDescription
    }

    /// Creates a login request bound to this device's key: `POST /api/v1/qr`.
    /// Show ``PendingLogin/url`` as a QR code; keep ``PendingLogin/pollSecret`` to yourself.
    /// - Throws: `.server` with `invalid_request` or `rate_limited`; `.unreachable`.
    public func createLogin(device: DeviceDescription) async throws -> PendingLogin {
        try await call("POST", "/api/v1/qr", auth: .proof, token: nil, body: CreateBody(device: device), as: PendingLogin.self)
    }

    /// The request's state now; with `waitingUpTo` (1 to 60 s) a long-poll that returns as
    /// soon as the state differs from `known`. On `confirmed` the answer carries the token.
    /// - Throws: `.server` with `invalid_poll_secret`, `not_found`, `expired` (pickup window
    ///   passed); `.unreachable`.
    public nonisolated func status(of login: PendingLogin, waitingUpTo seconds: Int? = nil, known: LoginState? = nil) async throws -> LoginStatus {
        var path = "/api/v1/qr/\(login.id)"
        var timeout = Duration.seconds(30)
        if let seconds {
            path += "?wait=\(seconds)"
            if let known { path += "&state=\(known.rawValue)" }
            timeout = .seconds(seconds + 15)
        }
        return try await call("GET", path, auth: .pollSecret(login.pollSecret), token: nil, timeout: timeout, as: LoginStatus.self)
    }

    /// Cancels the request on the server: `DELETE /api/v1/qr/{id}`.
    /// - Throws: `.server` with `request_<state>` when it already ended.
    @discardableResult
    public nonisolated func cancel(_ login: PendingLogin) async throws -> StateChange {
        try await call("DELETE", "/api/v1/qr/\(login.id)", auth: .pollSecret(login.pollSecret), token: nil, as: StateChange.self)
    }

    /// The request's state changes, from the current one to a final one.
    ///
    /// The sequence uses Server-Sent Events and falls back to long-poll (per `transport`). After
    /// a dropped connection it reconnects and asks for the current state, so the latest state
    /// always arrives and the final one is never missed; a state is yielded once. On
    /// `confirmed` it keeps the token as this client's ``accessToken``. It finishes after a
    /// final state. Cancelling the iterating task cancels the request on the server, then
    /// throws `CancellationError`.
    /// - Throws (while iterating): `.server` for refusals (e.g. `invalid_poll_secret`),
    ///   `.unreachable` after repeated failed reconnects.
    public nonisolated func waitForLogin(_ login: PendingLogin, transport mode: WaitTransport = .automatic) -> LoginUpdates {
        LoginUpdates(client: self, login: login, mode: mode)
    }
}

/// How ``QRLoginClient/waitForLogin(_:transport:)`` listens.
public enum WaitTransport: Sendable {
    /// Server-Sent Events; long-poll when the event stream does not work (e.g. a proxy that
    /// buffers it).
    case automatic
    /// Server-Sent Events only: a plain JSON answer to the stream request counts as a broken
    /// stream (retried with backoff, then thrown as ``QRLoginClientError/invalidResponse(_:)``).
    case serverSentEvents
    /// Long-poll only.
    case longPoll
}
