import Foundation
import QRLoginCore
import QRLoginOAuth
import Synchronization
import Testing

/// A store that forwards every call to `base`, except that one armed read of a login request
/// is held: it reads the row, then waits until the test lets it go, and returns what it read
/// then. So a test can change the request while a reader holds an old copy, the window in which
/// a reader must not lose a change that was signalled meanwhile.
final class HeldStore: Store {
    let base: any Store
    private let armed = Mutex<(id: String, entered: CheckedContinuation<Void, Never>?, release: CheckedContinuation<Void, Never>?)?>(nil)

    init(_ base: any Store) {
        self.base = base
    }

    /// Arms the hold for the next read of request `id`, runs `trigger` (which should cause
    /// that read), and returns once the read has its copy and waits for ``release()``.
    func holdNextRead(of id: String, causedBy trigger: @escaping @Sendable () async -> Void) async {
        // A read that never comes fails the test after 10 s instead of hanging the run.
        let watchdog = Task { [self] in
            try await Task.sleep(for: .seconds(10))
            let entered = self.armed.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state?.entered = nil }
                return state?.entered
            }
            if let entered {
                Issue.record("the armed read of \(id) never came")
                entered.resume()
            }
        }
        await withCheckedContinuation { entered in
            armed.withLock { $0 = (id, entered, nil) }
            Task { await trigger() }
        }
        watchdog.cancel()
    }

    /// Lets the held read return its copy.
    func release() {
        let release = armed.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state = nil }
            return state?.release
        }
        release?.resume()
    }

    func loginRequest(id: String) async throws -> LoginRequest? {
        let copy = try await base.loginRequest(id: id)
        let entered = armed.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state?.id == id, let entered = state?.entered else { return nil }
            state?.entered = nil
            return entered
        }
        guard let entered else { return copy }
        await withCheckedContinuation { release in
            armed.withLock { $0?.release = release }
            entered.resume()
        }
        return copy
    }

    func createAccount(_ account: Account) async throws { try await base.createAccount(account) }
    func account(id: String) async throws -> Account? { try await base.account(id: id) }
    func account(username: String) async throws -> Account? { try await base.account(username: username) }
    func account(phone: String) async throws -> Account? { try await base.account(phone: phone) }
    func upsertDevice(_ device: Device) async throws { try await base.upsertDevice(device) }
    func device(id: String, accountId: String) async throws -> Device? { try await base.device(id: id, accountId: accountId) }
    func devices(accountId: String) async throws -> [Device] { try await base.devices(accountId: accountId) }
    func touchDevice(id: String, accountId: String, at: Date, ip: String) async throws { try await base.touchDevice(id: id, accountId: accountId, at: at, ip: ip) }
    func removeDevice(id: String, accountId: String, at: Date) async throws -> Bool { try await base.removeDevice(id: id, accountId: accountId, at: at) }
    func insertToken(_ token: TokenRecord) async throws { try await base.insertToken(token) }
    func token(hash: String) async throws -> TokenRecord? { try await base.token(hash: hash) }
    func identity(tokenHash: String) async throws -> StoredIdentity? { try await base.identity(tokenHash: tokenHash) }
    func deleteTokens(endedBefore cutoff: Date) async throws -> Int { try await base.deleteTokens(endedBefore: cutoff) }
    func revokeToken(id: String, at: Date) async throws -> Bool { try await base.revokeToken(id: id, at: at) }
    func putOneTimeCode(_ code: OneTimeCode) async throws { try await base.putOneTimeCode(code) }
    func checkOneTimeCode(phone: String, codeHash: String, maxAttempts: Int, at: Date) async throws -> OneTimeCodeCheck {
        try await base.checkOneTimeCode(phone: phone, codeHash: codeHash, maxAttempts: maxAttempts, at: at)
    }
    func insertLoginRequest(_ request: LoginRequest) async throws { try await base.insertLoginRequest(request) }
    func transitionLoginRequest(id: String, _ transition: @Sendable (inout LoginRequest) throws -> LoginSideEffects) async throws -> LoginRequest {
        try await base.transitionLoginRequest(id: id, transition)
    }
    func expireLoginRequests(at now: Date) async throws -> Int { try await base.expireLoginRequests(at: now) }
    func deleteLoginRequests(expiredBefore cutoff: Date) async throws -> Int { try await base.deleteLoginRequests(expiredBefore: cutoff) }
    func loginRequest(pollSecretHash hash: String) async throws -> LoginRequest? { try await base.loginRequest(pollSecretHash: hash) }
    func loginRequest(userCode: String, at now: Date) async throws -> LoginRequest? { try await base.loginRequest(userCode: userCode, at: now) }
    func upsertClient(_ client: OAuthClient) async throws { try await base.upsertClient(client) }
    func client(id: String) async throws -> OAuthClient? { try await base.client(id: id) }
    func clients() async throws -> [OAuthClient] { try await base.clients() }
    func removeClient(id: String, at date: Date) async throws -> Bool { try await base.removeClient(id: id, at: date) }
    func oauthToken(hash: String, family: String?) async throws -> OAuthTokenLookup? { try await base.oauthToken(hash: hash, family: family) }
    func useRefreshToken(
        hash: String, family: String?, at now: Date, recording proof: ProofRecord?, _ decide: @Sendable (OAuthToken, TokenFamily) throws -> RefreshDecision
    ) async throws -> RefreshDecision? {
        try await base.useRefreshToken(hash: hash, family: family, at: now, recording: proof, decide)
    }
    func revokeOAuthToken(hash: String, family: String?, clientId: String, at date: Date) async throws -> OAuthRevocation { try await base.revokeOAuthToken(hash: hash, family: family, clientId: clientId, at: date) }
    func tokenFamilies(accountId: String, at now: Date) async throws -> [TokenFamily] { try await base.tokenFamilies(accountId: accountId, at: now) }
    func revokeTokenFamily(id: String, accountId: String, at date: Date) async throws -> Bool { try await base.revokeTokenFamily(id: id, accountId: accountId, at: date) }
    func deleteOAuthTokens(expiredBefore cutoff: Date) async throws -> Int { try await base.deleteOAuthTokens(expiredBefore: cutoff) }
    func insertAuthorizationCode(_ code: AuthorizationCode) async throws { try await base.insertAuthorizationCode(code) }
    func redeemAuthorizationCode(hash: String, at now: Date, _ decide: @Sendable (AuthorizationCode) throws -> CodeRedemption) async throws -> CodeRedemption? {
        try await base.redeemAuthorizationCode(hash: hash, at: now, decide)
    }
    func insertBrowserSession(_ session: BrowserSession) async throws { try await base.insertBrowserSession(session) }
    func browserSession(secretHash: String) async throws -> BrowserSession? { try await base.browserSession(secretHash: secretHash) }
    func revokeBrowserSession(id: String, at date: Date) async throws -> Bool { try await base.revokeBrowserSession(id: id, at: date) }
    func insertPushedRequest(_ request: PushedRequest) async throws { try await base.insertPushedRequest(request) }
    func pushedRequest(uri: String) async throws -> PushedRequest? { try await base.pushedRequest(uri: uri) }
    func signingKeys() async throws -> [SigningKey] { try await base.signingKeys() }
    func addSigningKey(_ key: SigningKey) async throws { try await base.addSigningKey(key) }
    func deleteSigningKeys(retiredBefore cutoff: Date) async throws -> Int { try await base.deleteSigningKeys(retiredBefore: cutoff) }
}
