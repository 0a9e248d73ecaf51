import Foundation
import PostgresNIO
import QRLoginCore
import QRLoginOAuth

extension PostgresStore {
    private static let requestColumns = [
        "poll_secret_hash", "pc_key_thumbprint", "pc_public_key_jwk", "requester_type", "requester_name", "requester_ip",
        "requester_user_agent", "state", "account_id", "scanner_display_name", "scanner_device_id", "ticket_hash",
        "ticket_expires_at", "match", "match_choices", "deny_reason", "token_id", "created_at", "expires_at", "version",
        "client_id", "scopes", "user_code", "user_code_choices", "poll_interval", "last_polled_at", "issued", "app_client_id", "app_scopes",
    ]

    /// `INSERT` of every column, the id last.
    private static let insertSQL: String = {
        let columns = requestColumns + ["id"]
        let placeholders = (1...columns.count).map { "$\($0)" }.joined(separator: ", ")
        return "INSERT INTO login_requests (\(columns.joined(separator: ", "))) VALUES (\(placeholders))"
    }()

    /// `UPDATE` of every column, conditional on the id and the version read.
    private static let updateSQL: String = {
        let assignments = requestColumns.enumerated().map { "\($0.element) = $\($0.offset + 1)" }.joined(separator: ", ")
        let n = requestColumns.count
        return "UPDATE login_requests SET \(assignments) WHERE id = $\(n + 1) AND version = $\(n + 2) RETURNING id"
    }()

    /// Inserts a new login request.
    public func insertLoginRequest(_ request: LoginRequest) async throws {
        try await execute(Self.insertSQL, binds(Self.values(request) + [.text(request.id)]))
    }

    /// The login request `id`, if any.
    public func loginRequest(id: String) async throws -> LoginRequest? {
        try await first("SELECT * FROM login_requests WHERE id = $1", binds(.text(id)), Self.loginRequest(from:))
    }

    /// Applies `transition` to request `id` under its row lock and writes the result, its side
    /// effects and the notification to other instances in one transaction.
    public func transitionLoginRequest(id: String, _ transition: @Sendable (inout LoginRequest) throws -> LoginSideEffects) async throws -> LoginRequest {
        let written = try await decideUnderLock(
            read: { connection, logger in
                try await Self.first(
                    "SELECT * FROM login_requests WHERE id = $1 FOR UPDATE", QRLoginPostgres.binds(.text(id)), on: connection, logger: logger,
                    Self.loginRequest(from:)
                )
            },
            decide: { read -> (LoginRequest, LoginSideEffects) in
                var request = read
                let effects = try transition(&request)
                return (request, effects)
            },
            apply: { read, decision, connection, logger -> LoginRequest in
                let (request, effects) = decision
                let updated = try await Self.execute(
                    Self.updateSQL, QRLoginPostgres.binds(Self.values(request) + [.text(id), read.version.pg]), on: connection, logger: logger
                )
                guard updated == 1 else { throw PostgresStoreError.concurrentModification(requestId: id) }
                if let device = effects.upsertDevice { try await Self.upsert(device, on: connection, logger: logger) }
                if let token = effects.insertToken { try await Self.insert(token, on: connection, logger: logger) }
                if let revoke = effects.revokeTokenId {
                    _ = try await Self.revokeToken(id: revoke, at: effects.revokedAt ?? Date(), on: connection, logger: logger)
                }
                if let grant = effects.issueGrant { try await Self.insert(grant, on: connection, logger: logger) }
                // Delivered to every listening instance when, and only if, this commits. Only a
                // change of state wakes anyone: a PC collecting its token or a device's poll
                // being counted is nothing a waiter shows, and every notification costs each
                // instance a delivery and the commit a global lock.
                if request.state != read.state {
                    try await Self.execute("SELECT pg_notify($1, $2)", QRLoginPostgres.binds(.text(Self.channel), .text(id)), on: connection, logger: logger)
                }
                return request
            }
        )
        guard let written else { throw QRLoginError.notFound }
        return written
    }

    /// Stores `expired` on every pending or scanned request past its own expiry at `now`, in one
    /// statement (each row is changed by one instance only). No `NOTIFY`: every waiter already pushes expiry at its own deadline.
    public func expireLoginRequests(at now: Date) async throws -> Int {
        try await writtenFirst(
            """
            WITH expired AS (
                UPDATE login_requests SET state = 'expired', ticket_hash = NULL, version = version + 1
                WHERE state IN ('pending', 'scanned') AND expires_at <= $1
                RETURNING 1
            ) SELECT count(*) AS n FROM expired
            """, binds(now.pg)
        ) { try $0.int("n") } ?? 0
    }

    /// Deletes requests whose `expiresAt` is before `cutoff`. Returns how many.
    public func deleteLoginRequests(expiredBefore cutoff: Date) async throws -> Int {
        try await writtenFirst(
            "WITH gone AS (DELETE FROM login_requests WHERE expires_at < $1 RETURNING 1) SELECT count(*) AS n FROM gone", binds(cutoff.pg)
        ) { try $0.int("n") } ?? 0
    }

    /// The device-grant login request whose device code hashes to `hash`.
    public func loginRequest(pollSecretHash hash: String) async throws -> LoginRequest? {
        try await first(
            "SELECT * FROM login_requests WHERE poll_secret_hash = $1 AND client_id IS NOT NULL", binds(.text(hash)), Self.loginRequest(from:)
        )
    }

    /// The device-grant request with user code `userCode` that has not expired at `now`.
    public func loginRequest(userCode: String, at now: Date) async throws -> LoginRequest? {
        try await first(
            "SELECT * FROM login_requests WHERE user_code = $1 AND expires_at > $2", binds(.text(userCode), now.pg), Self.loginRequest(from:)
        )
    }

    /// Starts a read of request `id` by its PC that supersedes every earlier one, on every
    /// instance: the request row's pickup generation goes up by one.
    /// - Returns: the new generation; nil if there is no such request.
    public func beginPickup(id: String) async throws -> UInt64? {
        try await writtenFirst(
            "UPDATE login_requests SET pickup_generation = pickup_generation + 1 WHERE id = $1 RETURNING pickup_generation", binds(.text(id))
        ) { UInt64(try $0.int("pickup_generation")) }
    }

    /// The values of ``requestColumns``, in that order.
    private static func values(_ request: LoginRequest) -> [PGValue] {
        [
            .text(request.pollSecretHash), .text(request.pcKeyThumbprint), .text(request.pcPublicKeyJWK),
            .text(request.requester.type.rawValue), .text(request.requester.name), .text(request.requester.ip),
            .text(request.requester.userAgent), .text(request.state.rawValue), request.accountId.pg,
            request.scannerDisplayName.pg, request.scannerDeviceId.pg, request.ticketHash.pg,
            request.ticketExpiresAt.pg, request.match.pg,
            .text(request.matchChoices.map(String.init).joined(separator: ",")), .text(request.denyReason?.rawValue),
            request.tokenId.pg, request.createdAt.pg, request.expiresAt.pg, request.version.pg,
        ] + deviceGrantValues(request.deviceGrant) + [.text(request.app?.clientId), .text(request.app.map { Scope.format($0.scopes) })]
    }

    /// The device grant's columns; all NULL for a QR login.
    private static func deviceGrantValues(_ grant: DeviceGrant?) -> [PGValue] {
        guard let grant else { return [.text(nil), .text(nil), .text(nil), .text(nil), .int(nil), .double(nil), .bool(nil)] }
        return [
            .text(grant.clientId), .text(Scope.format(grant.scopes)), .text(grant.userCode),
            .text(grant.userCodeChoices.joined(separator: ",")), grant.interval.pg, grant.lastPolledAt.pg, .bool(grant.issued),
        ]
    }

    private static func deviceGrant(from row: PostgresRandomAccessRow) throws -> DeviceGrant? {
        guard let clientId = try row.optionalText("client_id") else { return nil }
        var grant = DeviceGrant(
            clientId: clientId, scopes: try row.text("scopes").split(separator: " ").map(String.init),
            userCode: try row.text("user_code"), interval: try row.int("poll_interval")
        )
        grant.userCodeChoices = try row.text("user_code_choices").split(separator: ",").map(String.init)
        grant.lastPolledAt = try row.optionalDate("last_polled_at")
        grant.issued = try row.bool("issued")
        return grant
    }

    static func loginRequest(from row: PostgresRandomAccessRow) throws -> LoginRequest {
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
        let choices = try row.text("match_choices")
        request.matchChoices = try choices.isEmpty ? [] : choices.split(separator: ",").map { part in
            guard let value = Int(part) else { throw PostgresStoreError.malformedRow(column: "match_choices") }
            return value
        }
        request.denyReason = try row.optionalText("deny_reason").map { raw in
            guard let reason = DenyReason(rawValue: raw) else { throw PostgresStoreError.malformedRow(column: "deny_reason") }
            return reason
        }
        request.tokenId = try row.optionalText("token_id")
        request.version = try row.int("version")
        request.deviceGrant = try deviceGrant(from: row)
        if let appClient = try row.optionalText("app_client_id") {
            request.app = AppSignIn(clientId: appClient, scopes: try row.text("app_scopes").split(separator: " ").map(String.init))
        }
        request.pickupGeneration = UInt64(try row.int("pickup_generation"))
        return request
    }
}
