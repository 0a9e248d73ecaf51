import Foundation
import NIOCore
import QRLoginCore
import QRLoginOAuth
import Synchronization

/// A store that times every call into ``ServerMetrics`` (`qrlogin_store_call_duration_seconds`
/// by operation) and counts the login requests it creates and ends: a request's final state
/// is counted by the transition that commits it, so each ending counts once, on whichever
/// instance made it. Everything else goes to `base` unchanged.
final class MeasuredStore: Store {
    let base: any Store
    private let metrics: ServerMetrics
    private let clock: any NowClock

    init(_ base: any Store, metrics: ServerMetrics, clock: any NowClock) {
        self.base = base
        self.metrics = metrics
        self.clock = clock
    }

    private func measure<T>(_ operation: String, _ call: () async throws -> T) async throws -> T {
        let started = NIODeadline.now().uptimeNanoseconds
        defer { metrics.storeCall(operation, nanoseconds: NIODeadline.now().uptimeNanoseconds &- started) }
        return try await call()
    }

    func insertLoginRequest(_ request: LoginRequest) async throws {
        try await measure("insertLoginRequest") { try await base.insertLoginRequest(request) }
        metrics.created(kind: request.deviceGrant != nil ? "device_grant" : request.app != nil ? "app" : "qr")
    }

    func transitionLoginRequest(id: String, _ transition: @Sendable (inout LoginRequest) throws -> LoginSideEffects) async throws -> LoginRequest {
        // The state the committed transition started from (the closure may run more than once).
        let before = Mutex<LoginState?>(nil)
        let after = try await measure("transitionLoginRequest") {
            try await base.transitionLoginRequest(id: id) { request in
                let state = request.state
                before.withLock { $0 = state }
                return try transition(&request)
            }
        }
        if let from = before.withLock({ $0 }), from != after.state, after.state.isFinal {
            if after.state == .confirmed {
                metrics.confirmed(after: clock.now.timeIntervalSince(after.createdAt))
            } else {
                metrics.ended(after.state)
            }
        }
        return after
    }

    func loginRequest(id: String) async throws -> LoginRequest? { try await measure("loginRequest(id)") { try await base.loginRequest(id: id) } }
    func createAccount(_ account: Account) async throws { try await measure("createAccount") { try await base.createAccount(account) } }
    func account(id: String) async throws -> Account? { try await measure("account(id)") { try await base.account(id: id) } }
    func account(username: String) async throws -> Account? { try await measure("account(username)") { try await base.account(username: username) } }
    func account(phone: String) async throws -> Account? { try await measure("account(phone)") { try await base.account(phone: phone) } }
    func upsertDevice(_ device: Device) async throws { try await measure("upsertDevice") { try await base.upsertDevice(device) } }
    func device(id: String, accountId: String) async throws -> Device? { try await measure("device") { try await base.device(id: id, accountId: accountId) } }
    func devices(accountId: String) async throws -> [Device] { try await measure("devices") { try await base.devices(accountId: accountId) } }
    func touchDevice(id: String, accountId: String, at: Date, ip: String) async throws { try await measure("touchDevice") { try await base.touchDevice(id: id, accountId: accountId, at: at, ip: ip) } }
    func removeDevice(id: String, accountId: String, at: Date) async throws -> Bool { try await measure("removeDevice") { try await base.removeDevice(id: id, accountId: accountId, at: at) } }
    func insertToken(_ token: TokenRecord) async throws { try await measure("insertToken") { try await base.insertToken(token) } }
    func token(hash: String) async throws -> TokenRecord? { try await measure("token") { try await base.token(hash: hash) } }
    func identity(tokenHash: String) async throws -> StoredIdentity? { try await measure("identity") { try await base.identity(tokenHash: tokenHash) } }
    func deleteTokens(endedBefore cutoff: Date) async throws -> Int { try await measure("deleteTokens") { try await base.deleteTokens(endedBefore: cutoff) } }
    func revokeToken(id: String, at: Date) async throws -> Bool { try await measure("revokeToken") { try await base.revokeToken(id: id, at: at) } }
    func putOneTimeCode(_ code: OneTimeCode) async throws { try await measure("putOneTimeCode") { try await base.putOneTimeCode(code) } }
    func checkOneTimeCode(phone: String, codeHash: String, maxAttempts: Int, at: Date) async throws -> OneTimeCodeCheck {
        try await measure("checkOneTimeCode") { try await base.checkOneTimeCode(phone: phone, codeHash: codeHash, maxAttempts: maxAttempts, at: at) }
    }
    func expireLoginRequests(at now: Date) async throws -> Int {
        let count = try await measure("expireLoginRequests") { try await base.expireLoginRequests(at: now) }
        for _ in 0..<count { metrics.ended(.expired) }
        return count
    }

    func deleteLoginRequests(expiredBefore cutoff: Date) async throws -> Int { try await measure("deleteLoginRequests") { try await base.deleteLoginRequests(expiredBefore: cutoff) } }
    func loginRequest(pollSecretHash hash: String) async throws -> LoginRequest? { try await measure("loginRequest(pollSecretHash)") { try await base.loginRequest(pollSecretHash: hash) } }
    func loginRequest(userCode: String, at now: Date) async throws -> LoginRequest? { try await measure("loginRequest(userCode)") { try await base.loginRequest(userCode: userCode, at: now) } }
    func upsertClient(_ client: OAuthClient) async throws { try await measure("upsertClient") { try await base.upsertClient(client) } }
    func client(id: String) async throws -> OAuthClient? { try await measure("client") { try await base.client(id: id) } }
    func clients() async throws -> [OAuthClient] { try await measure("clients") { try await base.clients() } }
    func removeClient(id: String, at date: Date) async throws -> Bool { try await measure("removeClient") { try await base.removeClient(id: id, at: date) } }
    func oauthToken(hash: String, family: String?) async throws -> OAuthTokenLookup? { try await measure("oauthToken") { try await base.oauthToken(hash: hash, family: family) } }
    func useRefreshToken(
        hash: String, family: String?, at now: Date, recording proof: ProofRecord?, _ decide: @Sendable (OAuthToken, TokenFamily) throws -> RefreshDecision
    ) async throws -> RefreshDecision? {
        try await measure("useRefreshToken") { try await base.useRefreshToken(hash: hash, family: family, at: now, recording: proof, decide) }
    }
    func revokeOAuthToken(hash: String, family: String?, clientId: String, at date: Date) async throws -> OAuthRevocation { try await measure("revokeOAuthToken") { try await base.revokeOAuthToken(hash: hash, family: family, clientId: clientId, at: date) } }
    func tokenFamilies(accountId: String, at now: Date) async throws -> [TokenFamily] { try await measure("tokenFamilies") { try await base.tokenFamilies(accountId: accountId, at: now) } }
    func revokeTokenFamily(id: String, accountId: String, at date: Date) async throws -> Bool { try await measure("revokeTokenFamily") { try await base.revokeTokenFamily(id: id, accountId: accountId, at: date) } }
    func deleteOAuthTokens(expiredBefore cutoff: Date) async throws -> Int { try await measure("deleteOAuthTokens") { try await base.deleteOAuthTokens(expiredBefore: cutoff) } }
    func insertAuthorizationCode(_ code: AuthorizationCode) async throws { try await measure("insertAuthorizationCode") { try await base.insertAuthorizationCode(code) } }
    func redeemAuthorizationCode(hash: String, at now: Date, _ decide: @Sendable (AuthorizationCode) throws -> CodeRedemption) async throws -> CodeRedemption? {
        try await measure("redeemAuthorizationCode") { try await base.redeemAuthorizationCode(hash: hash, at: now, decide) }
    }
    func insertBrowserSession(_ session: BrowserSession) async throws { try await measure("insertBrowserSession") { try await base.insertBrowserSession(session) } }
    func browserSession(secretHash: String) async throws -> BrowserSession? { try await measure("browserSession") { try await base.browserSession(secretHash: secretHash) } }
    func revokeBrowserSession(id: String, at date: Date) async throws -> Bool { try await measure("revokeBrowserSession") { try await base.revokeBrowserSession(id: id, at: date) } }
    func insertPushedRequest(_ request: PushedRequest) async throws { try await measure("insertPushedRequest") { try await base.insertPushedRequest(request) } }
    func pushedRequest(uri: String) async throws -> PushedRequest? { try await measure("pushedRequest") { try await base.pushedRequest(uri: uri) } }
    func signingKeys() async throws -> [SigningKey] { try await measure("signingKeys") { try await base.signingKeys() } }
    func addSigningKey(_ key: SigningKey) async throws { try await measure("addSigningKey") { try await base.addSigningKey(key) } }
    func deleteSigningKeys(retiredBefore cutoff: Date) async throws -> Int { try await measure("deleteSigningKeys") { try await base.deleteSigningKeys(retiredBefore: cutoff) } }
}
