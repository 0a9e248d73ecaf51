import Crypto
import Foundation
import QRLoginCore
import QRLoginOAuth
import QRLoginSQLite
#if canImport(Glibc)
import Glibc
#endif

/// What no change to our request handling can go below, measured in the same run on the same
/// machine: the CPU of one P-256 signature check and of a whole DPoP proof check, and the memory
/// our server holds per open connection when no route of ours has run.
enum Floors {
    /// CPU time of the calling thread, in seconds.
    private static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Microseconds of CPU per call of `body`, the best of five rounds of `count` calls.
    private static func microseconds(count: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<5 {
            let start = threadCPUSeconds()
            for _ in 0..<count { try body() }
            best = min(best, (threadCPUSeconds() - start) / Double(count) * 1e6)
        }
        return best
    }

    struct ProofCost {
        /// One ECDSA P-256 signature check (swift-crypto, as the server links it).
        var signatureCheck: Double
        /// One whole proof check by the server's `DPoPVerifier`: parsing, key, signature, claims,
        /// replay cache.
        var proofCheck: Double
    }

    /// Times signature checks and whole proof checks in this process, with the server's code.
    static func proofCost() async throws -> ProofCost {
        let signer = DPoPSigner()
        let message = Array("eyJ0eXAiOiJkcG9wK2p3dCJ9.eyJqdGkiOiJ4In0".utf8)
        let signature = try signer.privateKey.signature(for: message)
        let key = signer.privateKey.publicKey
        var valid = true
        let signatureCheck = microseconds(count: 2_000) { valid = valid && key.isValidSignature(signature, for: message) }
        guard valid else { throw BenchError.unexpected("signature check failed") }

        // Proofs signed beforehand, each with its own jti, as clients send them.
        let base = "http://127.0.0.1:8080"
        let verifier = DPoPVerifier(publicBaseURL: base, maxClockSkew: 300, replayCache: MemoryReplayCache(), clock: SystemClock())
        let count = 2_000
        let proofs = try (0..<(count * 5)).map { _ in try signer.proof(method: "GET", url: base + "/api/v1/qr/x") }
        var best = Double.infinity
        for round in 0..<5 {
            let start = threadCPUSeconds()
            for proof in proofs[(round * count)..<((round + 1) * count)] {
                _ = try await verifier.verify(proof: proof, method: "GET", path: "/api/v1/qr/x", accessToken: nil)
            }
            best = min(best, (threadCPUSeconds() - start) / Double(count) * 1e6)
        }
        return ProofCost(signatureCheck: signatureCheck, proofCheck: best)
    }

    struct SigningCost {
        /// One new P-256 key with its JWK and thumbprint (a `DPoPSigner`).
        var newKey: Double
        /// One DPoP proof signed (claims, JSON, base64url, ECDSA P-256 signature).
        var proof: Double

        /// What the login scenario's generator must do for one login while the clock runs: sign
        /// the four proofs that name what the server hands out (PC event stream, phone scan,
        /// phone confirm, PC me). The PC's key and its create's proof are made beforehand.
        var perLogin: Double { 4 * proof }
    }

    /// Times key generation and proof signing with the generator's own code, in this process.
    static func signingCost() throws -> SigningCost {
        var keep = 0
        let newKey = microseconds(count: 500) { keep &+= DPoPSigner().thumbprint.utf8.count }
        let signer = DPoPSigner()
        let url = "http://127.0.0.1:8080/api/v1/qr/" + Secrets.publicId() + "/confirm"
        let token = Secrets.secret(prefix: Secrets.pollSecretPrefix)
        let proof = try microseconds(count: 1_000) { keep &+= try signer.proof(method: "POST", url: url, accessToken: token).utf8.count }
        guard keep > 0 else { throw BenchError.unexpected("signing produced nothing") }
        return SigningCost(newKey: newKey, proof: proof)
    }

    struct StoreCost {
        /// One login request inserted and committed alone by the server's SQLite store: what a
        /// create writes, with its commit.
        var insert: Double
        /// One login request read by id: what `GET /health` does (and a status read).
        var read: Double
    }

    /// Times inserts and reads of login requests by the server's `SQLiteStore` on a temporary
    /// database file, in this process: CPU of the whole process, so that the store's background
    /// checkpoints count as they do in the server. Each insert is its own transaction, as a
    /// create's is. Best of five rounds of `count`.
    static func storeCost(count: Int = 2_000) async throws -> StoreCost {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-bench-store-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await SQLiteStore.open(path: directory.appendingPathComponent("floor.sqlite").path)
        do {
            // What the create scenario's requests write: its device, no user agent, a new key each.
            let now = Date()
            let requests = (0..<(count * 5)).map { _ in
                let key = DPoPSigner()
                return LoginRequest(
                    id: Secrets.publicId(), pollSecretHash: Secrets.hash(Secrets.secret(prefix: Secrets.pollSecretPrefix)),
                    pcKeyThumbprint: key.thumbprint, pcPublicKeyJWK: key.publicKeyJWK,
                    requester: RequesterContext(type: .cli, name: "bench", ip: "127.0.0.1", userAgent: ""),
                    createdAt: now, expiresAt: now.addingTimeInterval(300)
                )
            }
            var insert = Double.infinity, read = Double.infinity
            for round in 0..<5 {
                let batch = requests[(round * count)..<((round + 1) * count)]
                var start = ProcessStats.ownCPUSeconds()
                for request in batch { try await store.insertLoginRequest(request) }
                insert = min(insert, (ProcessStats.ownCPUSeconds() - start) / Double(count) * 1e6)
                start = ProcessStats.ownCPUSeconds()
                for request in batch {
                    guard try await store.loginRequest(id: request.id) != nil else { throw BenchError.unexpected("inserted request not found") }
                }
                read = min(read, (ProcessStats.ownCPUSeconds() - start) / Double(count) * 1e6)
            }
            try await store.close()
            return StoreCost(insert: insert, read: read)
        } catch {
            try? await store.close()
            throw error
        }
    }

    struct OAuthStoreCost {
        /// One OAuth token read by its hash, with its family and its account's username, in one
        /// query: what an introspection must read.
        var tokenLookup: Double
        /// One client read by id: what every OAuth endpoint does to authenticate its caller.
        var clientRead: Double
        /// One refresh's transaction: the presented refresh token read with its family, the
        /// policy's decision, the token marked used, a new access and a new refresh token
        /// inserted, the family's expiry moved; committed.
        var refresh: Double
    }

    /// Times the OAuth reads and the refresh transaction of the server's `SQLiteStore` on a
    /// temporary database file, in this process (CPU of the whole process, as ``storeCost``):
    /// `families` token families of one account, as the device grant leaves them (a family with
    /// a DPoP-bound access token and a refresh token bound to the same key), then `count`
    /// refreshes round-robin over the families, each its own transaction, with the tokens made
    /// beforehand; then reads of the access tokens so issued and of the client. Best of five
    /// rounds of `count`.
    static func oauthStoreCost(count: Int = 2_000, families: Int = 32) async throws -> OAuthStoreCost {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-bench-oauth-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await SQLiteStore.open(path: directory.appendingPathComponent("floor.sqlite").path)
        do {
            let now = Date()
            let account = Account(id: Secrets.publicId(), username: "bench", passwordHash: "x", phone: nil, displayName: "Bench", createdAt: now)
            try await store.createAccount(account)
            let clientId = BenchClients.cli
            try await store.upsertClient(OAuthClient(id: clientId, name: "Bench CLI", type: .public, secretHash: nil, grantTypes: [.deviceCode, .refreshToken], createdAt: now))
            let scopes = ["openid", "offline_access"]
            let jkt = DPoPSigner().thumbprint
            // Keyed as the server keys them: the token's place in its family, then its hash.
            var places: [String: Int] = [:]
            func token(_ kind: OAuthTokenKind, family: String) -> OAuthToken {
                let place = places[family, default: 0]
                places[family] = place + 1
                let digits = String(place)
                let hash = String(repeating: "0", count: 10 - digits.count) + digits + "." + Secrets.hash(Secrets.secret(prefix: "qrl_oa_"))
                return OAuthToken(
                    id: Secrets.publicId(), kind: kind, hash: hash,
                    familyId: family, scopes: scopes, jkt: kind == .access ? jkt : nil, createdAt: now,
                    expiresAt: now.addingTimeInterval(kind == .access ? 3_600 : 30 * 86_400)
                )
            }
            // Families as a device-grant redemption writes them: inside its login request's transition.
            var current: [String] = []
            var familyIds: [String] = []
            for _ in 0..<families {
                let familyId = Secrets.publicId()
                let refresh = token(.refresh, family: familyId)
                let family = TokenFamily(
                    id: familyId, clientId: clientId, accountId: account.id, scopes: scopes, refreshJKT: jkt, origin: .deviceCode,
                    createdAt: now, expiresAt: refresh.expiresAt
                )
                let request = LoginRequest(
                    id: Secrets.publicId(), pollSecretHash: Secrets.hash(Secrets.secret(prefix: "qrl_dc_")), pcKeyThumbprint: jkt,
                    pcPublicKeyJWK: "", requester: RequesterContext(type: .cli, name: "Bench CLI", ip: "127.0.0.1", userAgent: ""),
                    createdAt: now, expiresAt: now.addingTimeInterval(600)
                )
                try await store.insertLoginRequest(request)
                let grant = IssuedGrant(family: family, tokens: [token(.access, family: familyId), refresh])
                _ = try await store.transitionLoginRequest(id: request.id) { _ in LoginSideEffects(issueGrant: grant) }
                current.append(refresh.hash)
                familyIds.append(familyId)
            }
            // Each refresh presents its family's latest refresh token and is given two new tokens.
            let steps = (0..<(count * 5)).map { index in
                let family = index % families
                let issued = [token(.access, family: familyIds[family]), token(.refresh, family: familyIds[family])]
                defer { current[family] = issued[1].hash }
                return (presented: current[family], family: familyIds[family], issued: issued)
            }
            var refresh = Double.infinity, lookup = Double.infinity, client = Double.infinity
            for round in 0..<5 {
                let batch = steps[(round * count)..<((round + 1) * count)]
                var start = ProcessStats.ownCPUSeconds()
                for step in batch {
                    let issued = step.issued
                    // As the server records each refresh's proof: in the same transaction.
                    let proof = ProofRecord(key: jkt + ":" + Secrets.publicId(), expiresAt: now.addingTimeInterval(60), now: now)
                    let decision = try await store.useRefreshToken(hash: step.presented, family: step.family, at: now, recording: proof) { token, family in
                        try RefreshPolicy.decide(token: token, family: family, clientId: clientId, proofJKT: jkt, requestedScopes: [], now: now) { _, _ in
                            (issued, issued[1].expiresAt)
                        }
                    }
                    guard case .rotate? = decision else { throw BenchError.unexpected("refresh in the store floor: \(String(describing: decision))") }
                }
                refresh = min(refresh, (ProcessStats.ownCPUSeconds() - start) / Double(count) * 1e6)
                start = ProcessStats.ownCPUSeconds()
                for step in batch {
                    guard try await store.oauthToken(hash: step.issued[0].hash, family: step.family) != nil else { throw BenchError.unexpected("issued token not found") }
                }
                lookup = min(lookup, (ProcessStats.ownCPUSeconds() - start) / Double(count) * 1e6)
                start = ProcessStats.ownCPUSeconds()
                for _ in batch {
                    guard try await store.client(id: clientId) != nil else { throw BenchError.unexpected("client not found") }
                }
                client = min(client, (ProcessStats.ownCPUSeconds() - start) / Double(count) * 1e6)
            }
            try await store.close()
            return OAuthStoreCost(tokenLookup: lookup, clientRead: client, refresh: refresh)
        } catch {
            try? await store.close()
            throw error
        }
    }

    struct ConnectionCost {
        var connections: Int
        /// Server RSS per connection that is open but has sent nothing.
        var connectedKB: Double
        /// Server RSS per connection after it was answered one request for which no route of
        /// ours runs (a 404), kept alive.
        var servedKB: Double
    }

    /// Opens `count` keep-alive connections to a server that has served nothing else, reads the
    /// server's RSS, has each send one `GET` of a path no route matches and read the 404, reads
    /// it again, and closes them.
    /// With `eventStream`, each connection instead asks for a login request's status as an event
    /// stream and must get a 200 (the stream's head).
    static func connectionCost(host: String, port: UInt16, pid: Int32, count: Int, eventStream: Bool = false) throws -> ConnectionCost {
        let (path, accept, status) = eventStream
            ? ("/api/v1/login-requests/x/status", "Accept: text/event-stream\r\n", "200")
            : ("/no-such-page", "", "404")
        guard let rssStart = ProcessStats.rssBytes(pid: pid) else { throw BenchError.unexpected("cannot read server RSS") }
        var sockets: [Int32] = []
        sockets.reserveCapacity(count)
        defer { for socket in sockets { close(socket) } }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw BenchError.unexpected("bad host \(host)") }
        for _ in 0..<count {
            let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard socket >= 0 else { throw BenchError.unexpected("socket: errno \(errno)") }
            sockets.append(socket)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else { throw BenchError.unexpected("connect: errno \(errno)") }
        }
        try waitForRSSToSettle(pid: pid)
        let rssConnected = ProcessStats.rssBytes(pid: pid) ?? rssStart

        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\(accept)\r\n".utf8)
        var buffer = [UInt8](repeating: 0, count: 4096)
        for socket in sockets {
            guard write(socket, request, request.count) == request.count else { throw BenchError.unexpected("write: errno \(errno)") }
            // The answer (or the stream's head) is small and its status line comes in the first read.
            let read = Glibc.read(socket, &buffer, buffer.count)
            guard read > 12, String(decoding: buffer[9..<12], as: UTF8.self) == status else {
                throw BenchError.unexpected("GET \(path): no \(status)")
            }
        }
        try waitForRSSToSettle(pid: pid)
        let rssServed = ProcessStats.rssBytes(pid: pid) ?? rssConnected
        return ConnectionCost(
            connections: count,
            connectedKB: Double(rssConnected - rssStart) / Double(count) / 1024,
            servedKB: Double(rssServed - rssStart) / Double(count) / 1024
        )
    }

    /// The server accepts and sets up connections on its own time: wait until its RSS stops
    /// growing (at most 10 s).
    private static func waitForRSSToSettle(pid: Int32) throws {
        var last = ProcessStats.rssBytes(pid: pid) ?? 0
        for _ in 0..<40 {
            usleep(250_000)
            let now = ProcessStats.rssBytes(pid: pid) ?? 0
            if now == last { return }
            last = now
        }
    }
}
