import Foundation
import QRLoginCore
import QRLoginOAuth

extension SQLiteStore {
    private static let requestColumns = """
        poll_secret_hash, pc_key_thumbprint, pc_public_key_jwk, requester_type, requester_name, requester_ip,
        requester_user_agent, state, account_id, scanner_display_name, scanner_device_id, ticket_hash,
        ticket_expires_at, match, match_choices, deny_reason, token_id, created_at, expires_at, version,
        client_id, scopes, user_code, user_code_choices, poll_interval, last_polled_at, issued, app_client_id, app_scopes
        """

    private static let requestAssignments = requestColumns
        .split(separator: ",")
        .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) + " = ?" }
        .joined(separator: ", ")

    /// Inserts a new login request.
    public func insertLoginRequest(_ request: LoginRequest) async throws {
        try exclusively { connection in
            try connection.execute(Self.insertSQL, Self.binds(request) + [.text(request.id)])
        }
    }

    /// The login request `id`, if any.
    public func loginRequest(id: String) async throws -> LoginRequest? {
        try exclusively { connection in
            try Self.loginRequest(id: id, on: connection)
        }
    }

    /// Atomically applies `transition` to request `id` and writes the result plus the returned
    /// side effects, all in one transaction. If `transition` throws, nothing is written and the
    /// error is rethrown.
    /// - Returns: the request as written.
    /// - Throws: ``QRLoginError/notFound`` if there is no such request.
    public func transitionLoginRequest(id: String, _ transition: @Sendable (inout LoginRequest) throws -> LoginSideEffects) async throws -> LoginRequest {
        try transaction { connection in
            guard var request = try Self.loginRequest(id: id, on: connection) else { throw QRLoginError.notFound }
            let readVersion = request.version
            let effects = try transition(&request)
            let updated = try connection.query(
                Self.updateSQL, Self.binds(request) + [.text(id), readVersion.sqlite]
            ) { _ in true }
            guard !updated.isEmpty else { throw SQLiteStoreError.concurrentModification(requestId: id) }
            if let device = effects.upsertDevice { try Self.upsert(device, on: connection) }
            if let token = effects.insertToken { try Self.insert(token, on: connection) }
            if let revoke = effects.revokeTokenId {
                _ = try Self.revokeToken(id: revoke, at: effects.revokedAt ?? Date(), on: connection)
            }
            if let grant = effects.issueGrant { try Self.insert(grant, on: connection) }
            return request
        }
    }

    /// Stores `expired` on every pending or scanned request past its deadline, in one
    /// statement. Returns how many changed.
    public func expireLoginRequests(at now: Date) async throws -> Int {
        try exclusively { connection in
            try connection.execute(Self.expireSQL, [now.sqlite])
            return connection.changes
        }
    }

    /// Past the request's own expiry: state `expired`, ticket cleared, version + 1 (a scanned
    /// request whose ticket alone ran out keeps its state, so a late confirm still hears
    /// `ticket_expired`).
    static let expireSQL = """
        UPDATE login_requests SET state = 'expired', ticket_hash = NULL, version = version + 1
        WHERE state IN ('pending', 'scanned') AND expires_at <= ?1
        """

    /// Deletes requests whose `expiresAt` is before `cutoff`. Returns how many.
    public func deleteLoginRequests(expiredBefore cutoff: Date) async throws -> Int {
        try exclusively { connection in
            try connection.execute("DELETE FROM login_requests WHERE expires_at < ?", [cutoff.sqlite])
            return connection.changes
        }
    }

    private static func loginRequest(id: String, on connection: SQLiteConnection) throws -> LoginRequest? {
        try connection.queryFirst("SELECT * FROM login_requests WHERE id = ?", [.text(id)], loginRequest(from:))
    }

    /// Built once, so the statement cache sees the very same SQL on every call.
    private static let insertSQL =
        "INSERT INTO login_requests (\(requestColumns), id) VALUES (\(Array(repeating: "?", count: 30).joined(separator: ", ")))"

    private static let updateSQL = "UPDATE login_requests SET \(requestAssignments) WHERE id = ? AND version = ? RETURNING id"

    /// The values of ``requestColumns``, in that order.
    private static func binds(_ request: LoginRequest) -> [SQLiteValue] {
        [
            .text(request.pollSecretHash), .text(request.pcKeyThumbprint), .text(request.pcPublicKeyJWK),
            .text(request.requester.type.rawValue), .text(request.requester.name), .text(request.requester.ip),
            .text(request.requester.userAgent), .text(request.state.rawValue), request.accountId.sqlite,
            request.scannerDisplayName.sqlite, request.scannerDeviceId.sqlite, request.ticketHash.sqlite,
            request.ticketExpiresAt.sqlite, request.match?.sqlite ?? .null,
            .text(request.matchChoices.map(String.init).joined(separator: ",")), request.denyReason.map { .text($0.rawValue) } ?? .null,
            request.tokenId.sqlite, request.createdAt.sqlite, request.expiresAt.sqlite, request.version.sqlite,
        ] + deviceGrantBinds(request.deviceGrant) + [request.app.map { .text($0.clientId) } ?? .null, request.app.map { .text(Scope.format($0.scopes)) } ?? .null]
    }

    /// The device grant's columns; all NULL for a QR login.
    private static func deviceGrantBinds(_ grant: DeviceGrant?) -> [SQLiteValue] {
        guard let grant else { return Array(repeating: .null, count: 7) }
        return [
            .text(grant.clientId), .text(Scope.format(grant.scopes)), .text(grant.userCode),
            .text(grant.userCodeChoices.joined(separator: ",")), grant.interval.sqlite, grant.lastPolledAt.sqlite,
            (grant.issued ? 1 : 0).sqlite,
        ]
    }

    private static func deviceGrant(from row: SQLiteRow) throws -> DeviceGrant? {
        guard let clientId = try row.optionalText("client_id") else { return nil }
        var grant = DeviceGrant(
            clientId: clientId, scopes: try row.text("scopes").split(separator: " ").map(String.init),
            userCode: try row.text("user_code"), interval: try row.int("poll_interval")
        )
        grant.userCodeChoices = try row.text("user_code_choices").split(separator: ",").map(String.init)
        grant.lastPolledAt = try row.optionalDate("last_polled_at")
        grant.issued = try row.int("issued") != 0
        return grant
    }

    /// The device-grant login request whose device code hashes to `hash`.
    public func loginRequest(pollSecretHash hash: String) async throws -> LoginRequest? {
        try exclusively { connection in
            try connection.queryFirst(
                "SELECT * FROM login_requests WHERE poll_secret_hash = ? AND client_id IS NOT NULL", [.text(hash)], Self.loginRequest(from:)
            )
        }
    }

    /// The device-grant request with user code `userCode` that has not expired at `now`.
    public func loginRequest(userCode: String, at now: Date) async throws -> LoginRequest? {
        try exclusively { connection in
            try connection.queryFirst(
                "SELECT * FROM login_requests WHERE user_code = ? AND expires_at > ?", [.text(userCode), now.sqlite], Self.loginRequest(from:)
            )
        }
    }

    private static func loginRequest(from row: SQLiteRow) throws -> LoginRequest {
        let requester = RequesterContext(
            type: try row.enumValue("requester_type"), name: try row.text("requester_name"),
            ip: try row.text("requester_ip"), userAgent: try row.text("requester_user_agent")
        )
        var request = LoginRequest(
            id: try row.text("id"), pollSecretHash: try row.text("poll_secret_hash"),
            pcKeyThumbprint: try row.text("pc_key_thumbprint"), pcPublicKeyJWK: try row.text("pc_public_key_jwk"),
            requester: requester, createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at")
        )
        request.state = try row.enumValue("state")
        request.accountId = try row.optionalText("account_id")
        request.scannerDisplayName = try row.optionalText("scanner_display_name")
        request.scannerDeviceId = try row.optionalText("scanner_device_id")
        request.ticketHash = try row.optionalText("ticket_hash")
        request.ticketExpiresAt = try row.optionalDate("ticket_expires_at")
        request.match = try row.optionalInt("match")
        request.matchChoices = try matchChoices(try row.text("match_choices"))
        request.denyReason = try row.optionalText("deny_reason").map { raw in
            guard let reason = DenyReason(rawValue: raw) else { throw SQLiteStoreError.malformedRow(column: "deny_reason") }
            return reason
        }
        request.tokenId = try row.optionalText("token_id")
        request.version = try row.int("version")
        request.deviceGrant = try deviceGrant(from: row)
        if let appClient = try row.optionalText("app_client_id") {
            request.app = AppSignIn(clientId: appClient, scopes: try row.text("app_scopes").split(separator: " ").map(String.init))
        }
        return request
    }

    /// Match choices are stored as a short comma-separated text such as `12,47,83`.
    private static func matchChoices(_ text: String) throws -> [Int] {
        guard !text.isEmpty else { return [] }
        return try text.split(separator: ",").map { part in
            guard let value = Int(part) else { throw SQLiteStoreError.malformedRow(column: "match_choices") }
            return value
        }
    }
}
