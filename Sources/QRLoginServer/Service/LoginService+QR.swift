import Foundation
import QRLoginCore
import QRLoginOAuth
import ServiceLifecycle

extension LoginService {
    /// Creates a login request for the PC whose key signed `proof`.
    /// - Returns: the request and its poll secret (shown once, stored only hashed).
    public func createLoginRequest(device: DeviceInfo, proof: DPoPProof, client: ClientInfo, app: AppSignIn? = nil) async throws -> (request: LoginRequest, pollSecret: String) {
        let now = clock.now
        let pollSecret = Secrets.secret(prefix: Secrets.pollSecretPrefix)
        var request = LoginRequest(
            id: Secrets.publicId(), pollSecretHash: Secrets.hash(pollSecret), pcKeyThumbprint: proof.thumbprint,
            pcPublicKeyJWK: proof.publicKeyJWK,
            requester: RequesterContext(type: device.type, name: device.name, ip: client.ip, userAgent: client.userAgent),
            createdAt: now, expiresAt: now.addingTimeInterval(settings.requestTTL)
        )
        request.app = app
        try await store.insertLoginRequest(request)
        return (request, pollSecret)
    }

    /// Checks that the caller is the PC that created request `id`: it holds the poll secret and
    /// proves the same key. Someone who knows only the id learns nothing, not even the state.
    /// - Throws: ``QRLoginError/notFound``, ``QRLoginError/missingCredentials``,
    ///   ``QRLoginError/invalidPollSecret``, proof errors.
    public func authorizePC(id: String, pollSecret: String?, proof: String?, method: String, path: String) async throws -> LoginRequest {
        let id = try Validate.identifier(id)
        guard let pollSecret else { throw QRLoginError.missingCredentials }
        guard Validate.secret(pollSecret, prefix: Secrets.pollSecretPrefix) else { throw QRLoginError.invalidPollSecret }
        let verified = try await verifier.verify(proof: proof, method: method, path: path, accessToken: pollSecret)
        guard let request = try await store.loginRequest(id: id) else { throw QRLoginError.notFound }
        guard Secrets.constantTimeEquals(request.pollSecretHash, Secrets.hash(pollSecret)),
              request.pcKeyThumbprint == verified.thumbprint
        else { throw QRLoginError.invalidPollSecret }
        return request
    }

    /// The PC's view of `request` now. On `confirmed` this collects a fresh token, bound to the
    /// PC's key, and revokes the one collected before, so at most one collected token works.
    /// - Throws: ``QRLoginError/expired`` when a confirmed request's pickup window has passed.
    public func status(of request: LoginRequest) async throws -> LoginStatus {
        // Only a read that may collect takes over from earlier waits: a plain read of a pending
        // or scanned request leaves the PC's open stream in charge.
        guard request.effectiveState(at: clock.now) == .confirmed else {
            return LoginStatus(request: request, state: request.effectiveState(at: clock.now), token: nil)
        }
        let pickup = try await pickups.begin(request.id)
        defer { pickups.end(request.id, pickup) }
        return try await status(of: request, pickup: pickup)
    }

    /// The PC's view, collecting only while `pickup` is the PC's newest read of the request.
    /// A wait whose client has gone (a dropped stream the PC has since replaced) must not
    /// collect: its token would never arrive, and collecting it would revoke the one the
    /// reconnected PC holds. The check runs inside the store's atomic step, so a newer read
    /// either comes after this collect (and revokes its token) or makes it fail.
    /// - Throws: ``QRLoginError/superseded`` when a newer read of the PC took over.
    func status(of request: LoginRequest, pickup: UInt64) async throws -> LoginStatus {
        let now = clock.now
        let state = request.effectiveState(at: now)
        guard state == .confirmed else { return LoginStatus(request: request, state: state, token: nil) }
        guard let accountId = request.accountId else { throw QRLoginError.wrongState(.denied) }
        // The account is only shown with the token: read it while the token is collected, one
        // database round trip fewer on the way from the confirm to the PC's event.
        async let readAccount = store.account(id: accountId)
        // A login screen's token only buys the redirect back to its app (once, at /authorize/qr):
        // it lives five minutes, not a device token's month.
        let (secret, record) = newToken(
            accountId: accountId, deviceId: request.pcKeyThumbprint, deviceType: request.requester.type,
            origin: .qr, approvedBy: request.scannerDeviceId, now: now, lifetime: request.app == nil ? nil : OIDCService.freshLogin
        )
        let pickups = self.pickups
        let updated = try await store.transitionLoginRequest(id: request.id) { stored in
            guard pickups.isCurrent(pickup, of: stored) else { throw QRLoginError.superseded }
            let previous = try stored.collect(tokenId: record.id, at: now)
            return LoginSideEffects(insertToken: record, revokeTokenId: previous, revokedAt: now)
        }
        guard let device = try await store.device(id: request.pcKeyThumbprint, accountId: accountId) else {
            // The PC was remotely logged out between confirm and pickup: nothing to hand over.
            _ = try await store.revokeToken(id: record.id, at: now)
            throw QRLoginError.wrongState(.cancelled)
        }
        let account: Account
        do {
            guard let read = try await readAccount else { throw QRLoginError.wrongState(.denied) }
            account = read
        } catch {
            // The token is collected but cannot be handed over: it must not stay alive unseen.
            _ = try? await store.revokeToken(id: record.id, at: now)
            throw error
        }
        return LoginStatus(request: updated, state: .confirmed, token: IssuedToken(accessToken: secret, record: record, account: account, device: device))
    }

    /// Waits until the request's state differs from `known`, the request reaches its deadline,
    /// or `timeout` passes, then returns the PC's view. The wait is woken by the state change
    /// itself (through the notifier), never by polling storage.
    public func waitForChange(of request: LoginRequest, from known: LoginState, timeout: TimeInterval) async throws -> LoginStatus {
        // The wait is measured on the monotonic clock; the request's deadline on the service's clock.
        let giveUp = ContinuousClock.now + .milliseconds(Int64(max(0, timeout) * 1000))
        return try await withWakeups(for: request.id) { subscription, pickup in
            metrics?.waiting(.longPoll, 1)
            defer { metrics?.waiting(.longPoll, -1) }
            // Read again now that the subscription is in place: a change committed between the
            // caller's read and the subscription signalled nobody, and would wait out the timeout.
            guard var current = try await store.loginRequest(id: request.id) else { throw QRLoginError.notFound }
            while true {
                let left = giveUp - ContinuousClock.now
                if current.effectiveState(at: clock.now) != known || left <= .zero || subscription.isClosed {
                    return try await status(of: current, pickup: pickup)
                }
                let untilDeadline = Duration.milliseconds(Int64(current.deadline.timeIntervalSince(clock.now) * 1000) + 2)
                _ = await subscription.wait(timeout: min(left, untilDeadline))
                try Task.checkCancellation()
                guard let fresh = try await store.loginRequest(id: request.id) else { throw QRLoginError.notFound }
                current = fresh
            }
        }
    }

    /// Runs `body` with a subscription to request `id`'s changes and a pickup number that makes
    /// this wait the PC's newest read. On graceful shutdown the subscription is closed, so every
    /// wait ends at once and streams finish cleanly instead of being reset.
    func withWakeups<T: Sendable>(for id: String, _ body: (LoginEventSubscription, UInt64) async throws -> T) async throws -> T {
        let pickup = try await pickups.begin(id)
        defer { pickups.end(id, pickup) }
        return try await notifier.withSubscription(to: id, timer: waitTimer) { subscription in
            try await withGracefulShutdownHandler {
                try await body(subscription, pickup)
            } onGracefulShutdown: {
                subscription.close()
            }
        }
    }

    /// Cancels request `id` on behalf of its PC.
    public func cancel(_ request: LoginRequest) async throws {
        let now = clock.now
        _ = try await store.transitionLoginRequest(id: request.id) { stored in
            try stored.cancel(at: now)
            return .none
        }
        await notifier.publish(requestId: request.id)
    }

    /// The phone scans request `id`: binds it to the phone's account and returns a one-time
    /// ticket plus what the phone must show. For a device grant the phone is offered the user
    /// code among two decoys instead of numbers, and is told which client asks for what.
    /// - Throws: ``QRLoginError/notFound``, ``QRLoginError/alreadyScanned``,
    ///   ``QRLoginError/expired``, ``QRLoginError/wrongState(_:)``.
    public func scan(id: String, by identity: Identity) async throws -> ScanResult {
        let id = try Validate.identifier(id)
        return try await scan(id: id, by: identity) { grant in (UserCode.decoys(for: grant.userCode) + [grant.userCode]).shuffled() }
    }

    /// The phone typed a device grant's user code at `/device`: finds the live request with that
    /// code and scans it, offering only that code, since typing it is the match.
    /// - Throws: ``QRLoginError/invalidInput(_:)`` for text that is no user code,
    ///   ``QRLoginError/notFound`` when no live request has it, and as ``scan(id:by:)``.
    public func scan(userCode typed: String, by identity: Identity) async throws -> ScanResult {
        guard let code = UserCode.normalize(typed) else {
            throw QRLoginError.invalidInput("userCode must be 8 letters from \(String(UserCode.alphabet)), as shown on the device")
        }
        guard let request = try await store.loginRequest(userCode: code, at: clock.now) else { throw QRLoginError.notFound }
        return try await scan(id: request.id, by: identity) { grant in
            // Checked again inside the atomic step: the code is what makes this the match.
            grant.userCode == code ? [code] : []
        }
    }

    private func scan(id: String, by identity: Identity, userCodeChoices: @escaping @Sendable (DeviceGrant) -> [String]) async throws -> ScanResult {
        let now = clock.now
        let ticket = Secrets.secret(prefix: Secrets.scanTicketPrefix)
        let (match, choices) = Secrets.matchChoices()
        let ticketExpiresAt = now.addingTimeInterval(settings.ticketTTL)
        let account = identity.account, deviceId = identity.device.id, ticketHash = Secrets.hash(ticket)
        let request = try await store.transitionLoginRequest(id: id) { stored in
            let codes = stored.deviceGrant.map(userCodeChoices) ?? []
            if let grant = stored.deviceGrant, !codes.contains(grant.userCode) { throw QRLoginError.notFound }
            try stored.scan(
                accountId: account.id, displayName: account.displayName, deviceId: deviceId, ticketHash: ticketHash,
                ticketExpiresAt: ticketExpiresAt, match: match, matchChoices: choices, userCodeChoices: codes, at: now
            )
            return .none
        }
        await notifier.publish(requestId: id)
        let clientId = request.deviceGrant?.clientId ?? request.app?.clientId
        let client = try await clientId.asyncMap { try await store.client(id: $0) } ?? nil
        return ScanResult(ticket: ticket, request: request, client: client)
    }

    /// The scanner confirms with its ticket and the number it picked. The PC's device record is
    /// created now; its token is minted when the PC collects it.
    /// - Throws: ``QRLoginError/wrongMatch`` (after denying the request), ``QRLoginError/notScanner``,
    ///   ``QRLoginError/invalidTicket``, ``QRLoginError/ticketExpired``, ``QRLoginError/wrongState(_:)``.
    public func confirm(id: String, ticket: String, match: Int, by identity: Identity) async throws -> LoginRequest {
        try await confirm(id: id, ticket: ticket, pick: .number(match), by: identity)
    }

    /// The scanner confirms with its ticket and what it picked: the number for a QR login, the
    /// user code for a device grant (whose tokens are minted when the device polls).
    public func confirm(id: String, ticket: String, pick: LoginRequest.Pick, by identity: Identity) async throws -> LoginRequest {
        let id = try Validate.identifier(id)
        let now = clock.now
        let deviceId = identity.device.id, accountId = identity.account.id, ticketHash = Secrets.hash(ticket)
        let pickup = settings.pickupTTL
        let request = try await store.transitionLoginRequest(id: id) { stored in
            try stored.confirm(deviceId: deviceId, accountId: accountId, ticketHash: ticketHash, pick: pick, pickupWindow: pickup, at: now)
            // A device grant's tokens go to an app, not to a linked device of the account.
            guard stored.state == .confirmed, stored.deviceGrant == nil else { return .none }
            let pc = Device(
                id: stored.pcKeyThumbprint, accountId: accountId, type: stored.requester.type, name: stored.requester.name,
                publicKeyJWK: stored.pcPublicKeyJWK, createdAt: now, lastSeenAt: now, lastIP: stored.requester.ip,
                approvedBy: deviceId
            )
            return LoginSideEffects(upsertDevice: pc)
        }
        await notifier.publish(requestId: id)
        if request.state == .denied { throw QRLoginError.wrongMatch }
        return request
    }

    /// The scanner denies the request.
    public func deny(id: String, ticket: String, by identity: Identity) async throws -> LoginRequest {
        let id = try Validate.identifier(id)
        let now = clock.now
        let deviceId = identity.device.id, accountId = identity.account.id, ticketHash = Secrets.hash(ticket)
        let request = try await store.transitionLoginRequest(id: id) { stored in
            try stored.deny(deviceId: deviceId, accountId: accountId, ticketHash: ticketHash, at: now)
            return .none
        }
        await notifier.publish(requestId: id)
        return request
    }
}
