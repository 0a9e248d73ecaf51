import Foundation
import Hummingbird
import Logging
import NIOCore
import QRLoginCore
import QRLoginOAuth

/// The QR login flow: the PC creates, waits, collects or cancels; the phone scans, confirms or
/// denies.
struct LoginRequestRoutes {
    let service: LoginService
    let clients: ClientResolver
    let limiter: RateLimiter
    let publicBaseURL: String
    /// Checks the authorization request of a login screen, so the phone can name the app.
    let oidc: OIDCService

    func addRoutes(to router: Router<AppRequestContext>) {
        let pc = router.group("api/v1/qr")
        pc.post(use: create)
        pc.get(":id", use: status)
        pc.delete(":id", use: cancel)

        let phone = router.group("api/v1/qr")
            .add(middleware: DeviceAuthMiddleware(service: service, clients: clients))
            .group(context: AuthenticatedContext.self)
        phone.post(":id/scan", use: scan)
        phone.post(":id/confirm", use: confirm)
        phone.post(":id/deny", use: deny)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> EditedResponse<CreatedLoginView> {
        let client = clients.client(of: request, peer: context.remoteAddress)
        try await limiter.check(.create, ip: client.ip)
        let body = try await request.decode(as: CreateLoginBody.self, context: context)
        let device = try body.device.validated()
        let proof = try await service.verifier.verify(proof: request.headers[.dpop], method: "POST", path: request.uri.path, accessToken: nil)
        var app: AppSignIn?
        if let query = body.authorize {
            do {
                let (checked, _) = try await oidc.check(query: query)
                app = AppSignIn(clientId: checked.clientId, scopes: checked.scopes)
            } catch {
                throw QRLoginError.invalidInput("authorize is not a valid authorization request")
            }
        }
        let (login, pollSecret) = try await service.createLoginRequest(device: device, proof: proof, client: client, app: app)
        context.logger.info("login request created", metadata: ["qrlogin.request.id": "\(login.id)"])
        let view = CreatedLoginView(
            id: login.id, url: publicBaseURL + "/q/" + login.id, pollSecret: pollSecret,
            expiresAt: login.expiresAt, interval: service.settings.pollInterval
        )
        return EditedResponse(status: .created, headers: [.cacheControl: "no-store"], response: view)
    }

    /// Authorises the PC for request `:id` (poll secret + key proof).
    private func authorizePC(_ request: Request, context: AppRequestContext) async throws -> LoginRequest {
        let id = try context.parameters.require("id")
        return try await service.authorizePC(
            id: id, pollSecret: try Credentials.token(in: request, scheme: "Bearer"), proof: request.headers[.dpop],
            method: request.method.rawValue, path: request.uri.path
        )
    }

    @Sendable func status(_ request: Request, context: AppRequestContext) async throws -> Response {
        let wantsStream = request.headers[.accept]?.contains("text/event-stream") == true
        // A stream holds its connection's task for minutes: check the proof on a fresh stack
        // (see onFreshStack), so that call's depth is not kept for the stream's lifetime.
        let login = wantsStream
            ? try await onFreshStack { try await self.authorizePC(request, context: context) }
            : try await authorizePC(request, context: context)
        if wantsStream {
            return eventStream(for: login, context: context)
        }
        let status: LoginStatus
        if let waitValue = request.uri.queryParameters["wait"] {
            guard let wait = Int(waitValue), (0...service.settings.maxWait).contains(wait) else {
                throw QRLoginError.invalidInput("wait must be 0 to \(service.settings.maxWait) seconds")
            }
            var known = login.effectiveState(at: service.clock.now)
            if let stateValue = request.uri.queryParameters["state"] {
                guard let state = LoginState(rawValue: String(stateValue)) else {
                    throw QRLoginError.invalidInput("state must be one of \(LoginState.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                known = state
            }
            status = try await service.waitForChange(of: login, from: known, timeout: TimeInterval(wait))
        } else {
            status = try await service.status(of: login)
        }
        return try LoginStatusView(status, interval: service.settings.pollInterval).response(from: request, context: context)
    }

    /// Server-Sent Events: the current state at once, then one event per change, a comment
    /// heartbeat while idle, and the end of the stream after a final state or on shutdown.
    ///
    /// The stream holds its connection's task while it waits, so the loop keeps a shallow call
    /// stack: reads and JSON run in short-lived child tasks (``onFreshStack(_:)``), timeouts on
    /// the service's shared ``WaitTimer``.
    private func eventStream(for login: LoginRequest, context: AppRequestContext) -> Response {
        let service = self.service
        let logger = context.logger
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-store", .init("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            do {
                try await service.withWakeups(for: login.id) { subscription, pickup in
                    service.metrics?.waiting(.sse, 1)
                    defer { service.metrics?.waiting(.sse, -1) }
                    // Read again now that the subscription is in place (see waitForChange).
                    guard var current = try await Self.read(login.id, service: service) else { return }
                    var sent: LoginState?
                    while true {
                        let state = current.effectiveState(at: service.clock.now)
                        if state != sent {
                            let event = try await Self.event(for: current, in: state, pickup: pickup, service: service)
                            try await writer.write(event.bytes)
                            if event.ends { return }
                            sent = state
                        }
                        let untilDeadline = current.deadline.timeIntervalSince(service.clock.now)
                        let wait = min(service.settings.heartbeat, max(0, untilDeadline))
                        let woken = await subscription.wait(timeout: .milliseconds(Int64(wait * 1000) + 2))
                        if subscription.isClosed {
                            try await writer.write(Self.shuttingDown)
                            return
                        }
                        if woken {
                            guard let fresh = try await Self.read(login.id, service: service) else { return }
                            current = fresh
                        } else if current.deadline > service.clock.now {
                            try await writer.write(Self.heartbeat)
                        }
                    }
                }
            } catch {
                logger.debug("event stream ended", metadata: ["qrlogin.error": "\(error)"])
            }
            try await writer.finish(nil)
        })
    }

    static let heartbeat = ByteBuffer(string: ": heartbeat\n\n")
    static let shuttingDown = ByteBuffer(string: ": server shutting down; reconnect to continue\n\n")

    /// Reads request `id` on a fresh stack.
    @inline(never)
    private static func read(_ id: String, service: LoginService) async throws -> LoginRequest? {
        try await onFreshStack { try await service.store.loginRequest(id: id) }
    }

    /// The bytes to send for `state` of `login`, and whether the stream ends after them,
    /// worked out on a fresh stack.
    @inline(never)
    private static func event(for login: LoginRequest, in state: LoginState, pickup: UInt64, service: LoginService) async throws -> (bytes: ByteBuffer, ends: Bool) {
        try await onFreshStack { try await makeEvent(for: login, in: state, pickup: pickup, service: service) }
    }

    /// Shared with ``EventStreamHandler``, which serves streams outside the router.
    static func makeEvent(for login: LoginRequest, in state: LoginState, pickup: UInt64, service: LoginService) async throws -> (bytes: ByteBuffer, ends: Bool) {
        let encoder = JSONEncoder.qrlogin
        let status: LoginStatus
        do {
            status = try await service.status(of: login, pickup: pickup)
        } catch QRLoginError.superseded {
            // A newer read by the PC took over; this connection is stale.
            return (ByteBuffer(string: ": superseded by a newer request from this PC\n\n"), true)
        } catch let error as QRLoginError {
            // e.g. the pickup window closed: tell the client and end.
            var event = ByteBuffer(string: "event: error\ndata: ")
            event.writeBytes(try encoder.encode(Problem(type: "about:blank", title: "Login request ended", status: ProblemMiddleware<AppRequestContext>.status(for: error).code, detail: error.detail, code: error.code)))
            event.writeString("\n\n")
            return (event, true)
        }
        var event = ByteBuffer(string: "event: \(state.rawValue)\ndata: ")
        var json = LoginStatusView(status, interval: service.settings.pollInterval).json
        event.writeBuffer(&json)
        event.writeString("\n\n")
        return (event, state.isFinal)
    }

    @Sendable func cancel(_ request: Request, context: AppRequestContext) async throws -> StateView {
        let login = try await authorizePC(request, context: context)
        try await service.cancel(login)
        return StateView(id: login.id, state: .cancelled)
    }

    @Sendable func scan(_ request: Request, context: AuthenticatedContext) async throws -> ScanView {
        let id = try context.parameters.require("id")
        let ip = clients.client(of: request, peer: context.remoteAddress).ip
        try await limiter.check(.scan, ip: ip)
        let result = try await service.scan(id: id, by: context.identity)
        context.logger.info("login request scanned", metadata: ["qrlogin.request.id": "\(id)"])
        return ScanView(result, phoneIP: ip)
    }

    @Sendable func confirm(_ request: Request, context: AuthenticatedContext) async throws -> StateView {
        let id = try context.parameters.require("id")
        try await limiter.check(.confirm, ip: clients.client(of: request, peer: context.remoteAddress).ip)
        let body = try await request.decode(as: ConfirmBody.self, context: context)
        let login = try await service.confirm(id: id, ticket: body.ticket, pick: try body.pick(), by: context.identity)
        context.logger.info("login request confirmed", metadata: ["qrlogin.request.id": "\(id)"])
        return StateView(id: login.id, state: login.state)
    }

    @Sendable func deny(_ request: Request, context: AuthenticatedContext) async throws -> StateView {
        let id = try context.parameters.require("id")
        try await limiter.check(.confirm, ip: clients.client(of: request, peer: context.remoteAddress).ip)
        let body = try await request.decode(as: DenyBody.self, context: context)
        let login = try await service.deny(id: id, ticket: body.ticket, by: context.identity)
        context.logger.info("login request denied", metadata: ["qrlogin.request.id": "\(id)"])
        return StateView(id: login.id, state: login.state)
    }
}
