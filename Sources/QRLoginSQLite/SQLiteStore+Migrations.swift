import Logging

/// The schema as ordered steps. Step N (1-based) brings `PRAGMA user_version` from N-1 to N.
/// Steps are append-only: a shipped step is never edited, a change is a new step.
enum SQLiteMigrations {
    static let steps: [[String]] = [
        [
            // `username_key` is the username lowercased in Swift (Unicode-aware), which is how
            // MemoryStore compares; `COLLATE NOCASE` alone folds ASCII only.
            """
            CREATE TABLE accounts (
                id TEXT PRIMARY KEY,
                username TEXT NOT NULL,
                username_key TEXT NOT NULL COLLATE NOCASE,
                password_hash TEXT NOT NULL,
                phone TEXT,
                display_name TEXT NOT NULL,
                created_at REAL NOT NULL
            ) STRICT
            """,
            "CREATE UNIQUE INDEX accounts_username_key ON accounts (username_key)",
            "CREATE UNIQUE INDEX accounts_phone ON accounts (phone)",
            """
            CREATE TABLE devices (
                account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                id TEXT NOT NULL,
                type TEXT NOT NULL,
                name TEXT NOT NULL,
                public_key_jwk TEXT NOT NULL,
                created_at REAL NOT NULL,
                last_seen_at REAL NOT NULL,
                last_ip TEXT NOT NULL,
                approved_by TEXT,
                PRIMARY KEY (account_id, id)
            ) STRICT
            """,
            // No foreign key to devices: a removed device's tokens stay, revoked, for the record.
            """
            CREATE TABLE tokens (
                id TEXT PRIMARY KEY,
                hash TEXT NOT NULL UNIQUE,
                account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                device_id TEXT NOT NULL,
                device_type TEXT NOT NULL,
                origin TEXT NOT NULL,
                approved_by TEXT,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                revoked_at REAL
            ) STRICT
            """,
            "CREATE INDEX tokens_device ON tokens (account_id, device_id)",
            """
            CREATE TABLE one_time_codes (
                phone TEXT PRIMARY KEY,
                code_hash TEXT NOT NULL,
                expires_at REAL NOT NULL,
                attempts INTEGER NOT NULL
            ) STRICT
            """,
            """
            CREATE TABLE login_requests (
                id TEXT PRIMARY KEY,
                poll_secret_hash TEXT NOT NULL,
                pc_key_thumbprint TEXT NOT NULL,
                pc_public_key_jwk TEXT NOT NULL,
                requester_type TEXT NOT NULL,
                requester_name TEXT NOT NULL,
                requester_ip TEXT NOT NULL,
                requester_user_agent TEXT NOT NULL,
                state TEXT NOT NULL,
                account_id TEXT,
                scanner_display_name TEXT,
                scanner_device_id TEXT,
                ticket_hash TEXT,
                ticket_expires_at REAL,
                match INTEGER,
                match_choices TEXT NOT NULL,
                deny_reason TEXT,
                token_id TEXT,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                version INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX login_requests_expires_at ON login_requests (expires_at)",
        ],
        [
            // OAuth 2.0: the device grant's part of a login request (client_id NULL for a QR
            // login), clients, token families and their access and refresh tokens.
            "ALTER TABLE login_requests ADD COLUMN client_id TEXT",
            "ALTER TABLE login_requests ADD COLUMN scopes TEXT",
            "ALTER TABLE login_requests ADD COLUMN user_code TEXT",
            "ALTER TABLE login_requests ADD COLUMN user_code_choices TEXT",
            "ALTER TABLE login_requests ADD COLUMN poll_interval INTEGER",
            "ALTER TABLE login_requests ADD COLUMN last_polled_at REAL",
            "ALTER TABLE login_requests ADD COLUMN issued INTEGER",
            // Only device grants are looked up by their secret (the device code); a partial index
            // spares every QR login's insert the write (BENCHMARKS.md).
            "CREATE UNIQUE INDEX login_requests_device_code ON login_requests (poll_secret_hash) WHERE client_id IS NOT NULL",
            "CREATE INDEX login_requests_user_code ON login_requests (user_code) WHERE user_code IS NOT NULL",
            """
            CREATE TABLE oauth_clients (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                type TEXT NOT NULL,
                secret_hash TEXT,
                redirect_uris TEXT NOT NULL,
                grant_types TEXT NOT NULL,
                scopes TEXT NOT NULL,
                require_dpop INTEGER NOT NULL,
                created_at REAL NOT NULL
            ) STRICT
            """,
            // No foreign key to oauth_clients: a removed client's families stay, revoked.
            """
            CREATE TABLE token_families (
                id TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                scopes TEXT NOT NULL,
                refresh_jkt TEXT,
                origin TEXT NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                revoked_at REAL
            ) STRICT
            """,
            "CREATE INDEX token_families_account ON token_families (account_id)",
            "CREATE INDEX token_families_client ON token_families (client_id)",
            "CREATE INDEX token_families_expires_at ON token_families (expires_at)",
            """
            CREATE TABLE oauth_tokens (
                hash TEXT PRIMARY KEY,
                id TEXT NOT NULL,
                kind TEXT NOT NULL,
                family_id TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
                scopes TEXT NOT NULL,
                jkt TEXT,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                used_at REAL,
                revoked_at REAL
            ) STRICT
            """,
            "CREATE INDEX oauth_tokens_family ON oauth_tokens (family_id)",
            "CREATE INDEX oauth_tokens_expires_at ON oauth_tokens (expires_at)",
        ],
        [
            // OpenID Connect: the ID token algorithm per client, and the keys that sign ID tokens.
            "ALTER TABLE oauth_clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'ES256'",
            """
            CREATE TABLE signing_keys (
                kid TEXT PRIMARY KEY,
                algorithm TEXT NOT NULL,
                private_key_pem TEXT NOT NULL,
                created_at REAL NOT NULL,
                retired_at REAL
            ) STRICT
            """,
        ],
        [
            // OpenID Connect: authorization codes and the browsers' single sign-on sessions.
            """
            CREATE TABLE authorization_codes (
                hash TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                redirect_uri TEXT NOT NULL,
                scopes TEXT NOT NULL,
                nonce TEXT,
                code_challenge TEXT,
                dpop_jkt TEXT,
                auth_time REAL NOT NULL,
                amr TEXT NOT NULL,
                session_id TEXT,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                used_at REAL,
                family_id TEXT
            ) STRICT
            """,
            "CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at)",
            """
            CREATE TABLE browser_sessions (
                id TEXT PRIMARY KEY,
                secret_hash TEXT NOT NULL UNIQUE,
                account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
                device_id TEXT,
                auth_time REAL NOT NULL,
                amr TEXT NOT NULL,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                revoked_at REAL
            ) STRICT
            """,
            "CREATE INDEX browser_sessions_device ON browser_sessions (account_id, device_id)",
            "CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at)",
            "ALTER TABLE oauth_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE oauth_clients ADD COLUMN require_par INTEGER NOT NULL DEFAULT 0",
            // RFC 9126: authorization requests pushed by clients, found again by request_uri.
            """
            CREATE TABLE pushed_requests (
                request_uri TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                query TEXT NOT NULL,
                expires_at REAL NOT NULL
            ) STRICT
            """,
            "CREATE INDEX pushed_requests_expires_at ON pushed_requests (expires_at)",
            // A QR login that is an OpenID Connect login screen names its app.
            "ALTER TABLE login_requests ADD COLUMN app_client_id TEXT",
            "ALTER TABLE login_requests ADD COLUMN app_scopes TEXT",
        ],
        [
            // DPoP proof ids seen (a digest), kept across restarts and crashes: a proof accepted
            // before one is refused after it (SQLiteReplayCache).
            "CREATE TABLE dpop_replays (digest TEXT PRIMARY KEY, expires_at REAL NOT NULL) STRICT, WITHOUT ROWID",
        ],
        [
            // A family's tokens together: tokens now name their family and their place in it
            // (OAuthTokenKey), and sit in one b-tree ordered by family, then by that place, so a
            // refresh writes its two tokens and marks the old one on the same page, instead of
            // on pages of a table, its hash index and two more indexes spread at random. There
            // is no expiry index: it would cost every refresh pages of its own, and the cleanup
            // goes family by family instead. The tokens issued before stay in oauth_tokens_v1,
            // found by hash alone, until they expire.
            "ALTER TABLE oauth_tokens RENAME TO oauth_tokens_v1",
            "DROP INDEX oauth_tokens_family",
            "DROP INDEX oauth_tokens_expires_at",
            "CREATE INDEX oauth_tokens_v1_family_expiry ON oauth_tokens_v1 (family_id, expires_at)",
            """
            CREATE TABLE oauth_tokens (
                family_id TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
                hash TEXT NOT NULL,
                id TEXT NOT NULL,
                kind TEXT NOT NULL,
                scopes TEXT NOT NULL,
                jkt TEXT,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                used_at REAL,
                revoked_at REAL,
                PRIMARY KEY (family_id, hash)
            ) STRICT, WITHOUT ROWID
            """,
        ],
    ]

    /// Applies every step the database lacks, each in its own transaction together with the
    /// version bump, so a crash leaves the database at a whole step. Reading the version inside
    /// the write transaction makes two processes opening the same file apply each step once.
    static func migrate(_ connection: SQLiteConnection, logger: Logger) throws {
        while true {
            try connection.execute("BEGIN IMMEDIATE", cached: false)
            do {
                let current = try connection.queryFirst("PRAGMA user_version") { try $0.int("user_version") } ?? 0
                if current > steps.count { throw SQLiteStoreError.schemaTooNew(version: current) }
                guard current < steps.count else {
                    try connection.execute("COMMIT", cached: false)
                    return
                }
                for statement in steps[current] {
                    try connection.execute(statement, cached: false)
                }
                // PRAGMA takes no bound parameters; the value is a constant of this build.
                try connection.execute("PRAGMA user_version = \(current + 1)", cached: false)
                try connection.execute("COMMIT", cached: false)
                logger.info("Migrated SQLite schema", metadata: ["qrlogin.sqlite.version": "\(current + 1)"])
            } catch {
                try? connection.execute("ROLLBACK", cached: false)
                throw error
            }
        }
    }
}
