import Logging
import PostgresNIO

/// The schema as ordered steps, like SQLite's: step N brings `qrlogin_schema.version` from N-1
/// to N, in one transaction with the version bump. Steps are append-only: a shipped step is
/// never edited, a change is a new step.
///
/// Times are `double precision` seconds since 2001-01-01 UTC, as `Date` and SQLite's `REAL`
/// columns hold them (exact round trips); `to_timestamp(x + 978307200)` shows one as a time.
/// Instances that start together take a transaction-scoped advisory lock (one per schema), so
/// each step is applied once.
enum PostgresMigrations {
    static let steps: [[String]] = [
        [
            """
            CREATE TABLE accounts (
                id text PRIMARY KEY,
                username text NOT NULL,
                username_key text NOT NULL UNIQUE,
                password_hash text NOT NULL,
                phone text UNIQUE,
                display_name text NOT NULL,
                created_at double precision NOT NULL
            )
            """,
            """
            CREATE TABLE devices (
                account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                id text NOT NULL,
                type text NOT NULL,
                name text NOT NULL,
                public_key_jwk text NOT NULL,
                created_at double precision NOT NULL,
                last_seen_at double precision NOT NULL,
                last_ip text NOT NULL,
                approved_by text,
                PRIMARY KEY (account_id, id)
            )
            """,
            // No foreign key to devices: a removed device's tokens stay, revoked, for the record.
            """
            CREATE TABLE tokens (
                id text PRIMARY KEY,
                hash text NOT NULL UNIQUE,
                account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                device_id text NOT NULL,
                device_type text NOT NULL,
                origin text NOT NULL,
                approved_by text,
                created_at double precision NOT NULL,
                expires_at double precision NOT NULL,
                revoked_at double precision
            )
            """,
            "CREATE INDEX tokens_device ON tokens (account_id, device_id)",
            """
            CREATE TABLE one_time_codes (
                phone text PRIMARY KEY,
                code_hash text NOT NULL,
                expires_at double precision NOT NULL,
                attempts integer NOT NULL
            )
            """,
            // One row per login request: the QR flow's fields, the device grant's (client_id NULL
            // for a QR login), the app a login screen signs in to, and the PC's newest read
            // (pickup_generation), which several instances must agree on.
            """
            CREATE TABLE login_requests (
                id text PRIMARY KEY,
                poll_secret_hash text NOT NULL,
                pc_key_thumbprint text NOT NULL,
                pc_public_key_jwk text NOT NULL,
                requester_type text NOT NULL,
                requester_name text NOT NULL,
                requester_ip text NOT NULL,
                requester_user_agent text NOT NULL,
                state text NOT NULL,
                account_id text,
                scanner_display_name text,
                scanner_device_id text,
                ticket_hash text,
                ticket_expires_at double precision,
                match integer,
                match_choices text NOT NULL,
                deny_reason text,
                token_id text,
                created_at double precision NOT NULL,
                expires_at double precision NOT NULL,
                version bigint NOT NULL,
                client_id text,
                scopes text,
                user_code text,
                user_code_choices text,
                poll_interval integer,
                last_polled_at double precision,
                issued boolean,
                app_client_id text,
                app_scopes text,
                pickup_generation bigint NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX login_requests_expires_at ON login_requests (expires_at)",
            "CREATE UNIQUE INDEX login_requests_device_code ON login_requests (poll_secret_hash) WHERE client_id IS NOT NULL",
            "CREATE INDEX login_requests_user_code ON login_requests (user_code) WHERE user_code IS NOT NULL",
            """
            CREATE TABLE oauth_clients (
                id text PRIMARY KEY,
                name text NOT NULL,
                type text NOT NULL,
                secret_hash text,
                redirect_uris text NOT NULL,
                grant_types text NOT NULL,
                scopes text NOT NULL,
                require_dpop boolean NOT NULL,
                created_at double precision NOT NULL,
                id_token_alg text NOT NULL DEFAULT 'ES256',
                post_logout_redirect_uris text NOT NULL DEFAULT '[]',
                require_par boolean NOT NULL DEFAULT false
            )
            """,
            // No foreign key to oauth_clients: a removed client's families stay, revoked.
            """
            CREATE TABLE token_families (
                id text PRIMARY KEY,
                client_id text NOT NULL,
                account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                scopes text NOT NULL,
                refresh_jkt text,
                origin text NOT NULL,
                created_at double precision NOT NULL,
                expires_at double precision NOT NULL,
                revoked_at double precision
            )
            """,
            "CREATE INDEX token_families_account ON token_families (account_id)",
            "CREATE INDEX token_families_client ON token_families (client_id)",
            "CREATE INDEX token_families_expires_at ON token_families (expires_at)",
            """
            CREATE TABLE oauth_tokens (
                hash text PRIMARY KEY,
                id text NOT NULL,
                kind text NOT NULL,
                family_id text NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
                scopes text NOT NULL,
                jkt text,
                created_at double precision NOT NULL,
                expires_at double precision NOT NULL,
                used_at double precision,
                revoked_at double precision
            )
            """,
            "CREATE INDEX oauth_tokens_family ON oauth_tokens (family_id)",
            "CREATE INDEX oauth_tokens_expires_at ON oauth_tokens (expires_at)",
            """
            CREATE TABLE signing_keys (
                kid text PRIMARY KEY,
                algorithm text NOT NULL,
                private_key_pem text NOT NULL,
                created_at double precision NOT NULL,
                retired_at double precision
            )
            """,
            """
            CREATE TABLE authorization_codes (
                hash text PRIMARY KEY,
                client_id text NOT NULL,
                account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                redirect_uri text NOT NULL,
                scopes text NOT NULL,
                nonce text,
                code_challenge text,
                dpop_jkt text,
                auth_time double precision NOT NULL,
                amr text NOT NULL,
                session_id text,
                created_at double precision NOT NULL,
                expires_at double precision NOT NULL,
                used_at double precision,
                family_id text
            )
            """,
            "CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at)",
            """
            CREATE TABLE browser_sessions (
                id text PRIMARY KEY,
                secret_hash text NOT NULL UNIQUE,
                account_id text NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                device_id text,
                auth_time double precision NOT NULL,
                amr text NOT NULL,
                created_at double precision NOT NULL,
                expires_at double precision NOT NULL,
                revoked_at double precision
            )
            """,
            "CREATE INDEX browser_sessions_device ON browser_sessions (account_id, device_id)",
            "CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at)",
            """
            CREATE TABLE pushed_requests (
                request_uri text PRIMARY KEY,
                client_id text NOT NULL,
                query text NOT NULL,
                expires_at double precision NOT NULL
            )
            """,
            "CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at)",
            // State every instance must share. DPoP proof ids seen (the first 16 bytes of the
            // SHA-256 of thumbprint and jti), kept until the proof could no longer be accepted.
            // A logged table: a crash of PostgreSQL keeps it, so no replay window reopens.
            """
            CREATE TABLE dpop_replays (
                digest bytea PRIMARY KEY,
                expires_at double precision NOT NULL
            )
            """,
            "CREATE INDEX dpop_replays_expires_at ON dpop_replays (expires_at)",
            // Token buckets of the rate limits, by scope and client (IP or account).
            """
            CREATE TABLE rate_limits (
                key text PRIMARY KEY,
                tokens double precision NOT NULL,
                updated_at double precision NOT NULL,
                allowed boolean NOT NULL
            )
            """,
            // Secrets the instances share, made once by whichever starts first (the DPoP nonce key).
            """
            CREATE TABLE server_secrets (
                name text PRIMARY KEY,
                value bytea NOT NULL
            )
            """,
        ],
    ]

    /// The version the database is at; 0 before the first step.
    static func currentVersion(_ client: PostgresClient) async throws -> Int {
        try await client.withConnection { connection in
            try await currentVersion(connection)
        }
    }

    private static func currentVersion(_ connection: PostgresConnection) async throws -> Int {
        let exists = try await PostgresStore.first(
            "SELECT to_regclass('qrlogin_schema') IS NOT NULL AS present", PostgresBindings(), on: connection, logger: Logger(label: "qrlogin.postgres")
        ) { try $0.bool("present") } ?? false
        guard exists else { return 0 }
        return try await PostgresStore.first("SELECT version FROM qrlogin_schema", PostgresBindings(), on: connection, logger: Logger(label: "qrlogin.postgres")) {
            try $0.int("version")
        } ?? 0
    }

    /// Applies every step the database lacks.
    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withConnection { connection in
            while true {
                try await connection.query("BEGIN", logger: logger)
                do {
                    // One lock per schema: instances on one schema take turns, other schemas don't wait.
                    try await connection.query("SELECT pg_advisory_xact_lock(hashtext('qrlogin:' || current_schema()))", logger: logger)
                    try await connection.query("CREATE TABLE IF NOT EXISTS qrlogin_schema (version integer NOT NULL)", logger: logger)
                    let current = try await currentVersion(connection)
                    if current > steps.count { throw PostgresStoreError.schemaTooNew(version: current) }
                    guard current < steps.count else {
                        try await connection.query("COMMIT", logger: logger)
                        return
                    }
                    for statement in steps[current] {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query("DELETE FROM qrlogin_schema", logger: logger)
                    try await connection.query("INSERT INTO qrlogin_schema (version) VALUES (\(current + 1))", logger: logger)
                    try await connection.query("COMMIT", logger: logger)
                    logger.info("Migrated PostgreSQL schema", metadata: ["qrlogin.postgres.version": "\(current + 1)"])
                } catch {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                    throw error
                }
            }
        }
    }
}
