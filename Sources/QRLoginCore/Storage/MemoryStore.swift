import Foundation

/// A ``Store`` in process memory, for tests and throwaway servers. Actor isolation makes
/// every method atomic.
public actor MemoryStore: Store {
    private var accounts: [String: Account] = [:]
    private var devices: [String: Device] = [:]   // key: accountId + " " + deviceId
    private var tokens: [String: TokenRecord] = [:]  // key: token id
    private var tokenIdByHash: [String: String] = [:]
    private var codes: [String: OneTimeCode] = [:]
    private var requests: [String: LoginRequest] = [:]

    /// Creates an empty store.
    public init() {}

    private static func deviceKey(_ accountId: String, _ deviceId: String) -> String { accountId + " " + deviceId }

    public func createAccount(_ account: Account) async throws {
        let name = account.username.lowercased()
        if accounts.values.contains(where: { $0.username.lowercased() == name }) { throw QRLoginError.usernameTaken }
        if let phone = account.phone, accounts.values.contains(where: { $0.phone == phone }) { throw QRLoginError.phoneTaken }
        accounts[account.id] = account
    }

    public func account(id: String) async throws -> Account? { accounts[id] }

    public func account(username: String) async throws -> Account? {
        let name = username.lowercased()
        return accounts.values.first { $0.username.lowercased() == name }
    }

    public func account(phone: String) async throws -> Account? {
        accounts.values.first { $0.phone == phone }
    }

    public func upsertDevice(_ device: Device) async throws {
        upsert(device)
    }

    private func upsert(_ device: Device) {
        let key = Self.deviceKey(device.accountId, device.id)
        if var existing = devices[key] {
            existing.type = device.type
            existing.name = device.name
            existing.publicKeyJWK = device.publicKeyJWK
            existing.lastSeenAt = device.lastSeenAt
            existing.lastIP = device.lastIP
            existing.approvedBy = device.approvedBy
            devices[key] = existing
        } else {
            devices[key] = device
        }
    }

    public func device(id: String, accountId: String) async throws -> Device? {
        devices[Self.deviceKey(accountId, id)]
    }

    public func devices(accountId: String) async throws -> [Device] {
        devices.values.filter { $0.accountId == accountId }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    public func touchDevice(id: String, accountId: String, at date: Date, ip: String) async throws {
        let key = Self.deviceKey(accountId, id)
        devices[key]?.lastSeenAt = date
        devices[key]?.lastIP = ip
    }

    public func removeDevice(id: String, accountId: String, at date: Date) async throws -> Bool {
        for (tokenId, token) in tokens where token.accountId == accountId && token.deviceId == id && token.revokedAt == nil {
            tokens[tokenId]?.revokedAt = date
        }
        return devices.removeValue(forKey: Self.deviceKey(accountId, id)) != nil
    }

    public func insertToken(_ token: TokenRecord) async throws {
        insert(token)
    }

    private func insert(_ token: TokenRecord) {
        tokens[token.id] = token
        tokenIdByHash[token.hash] = token.id
    }

    public func token(hash: String) async throws -> TokenRecord? {
        tokenIdByHash[hash].flatMap { tokens[$0] }
    }

    public func revokeToken(id: String, at date: Date) async throws -> Bool {
        guard let token = tokens[id], token.revokedAt == nil else { return false }
        tokens[id]?.revokedAt = date
        return true
    }

    public func putOneTimeCode(_ code: OneTimeCode) async throws {
        codes[code.phone] = code
    }

    public func checkOneTimeCode(phone: String, codeHash: String, maxAttempts: Int, at date: Date) async throws -> OneTimeCodeCheck {
        guard var code = codes[phone], date < code.expiresAt, code.attempts < maxAttempts else {
            codes[phone] = nil
            return .missing
        }
        if Secrets.constantTimeEquals(code.codeHash, codeHash) {
            codes[phone] = nil
            return .accepted
        }
        code.attempts += 1
        if code.attempts >= maxAttempts {
            codes[phone] = nil
            return .tooManyAttempts
        }
        codes[phone] = code
        return .rejected(remaining: maxAttempts - code.attempts)
    }

    public func insertLoginRequest(_ request: LoginRequest) async throws {
        requests[request.id] = request
    }

    public func loginRequest(id: String) async throws -> LoginRequest? { requests[id] }

    public func transitionLoginRequest(id: String, _ transition: @Sendable (inout LoginRequest) throws -> LoginSideEffects) async throws -> LoginRequest {
        guard var request = requests[id] else { throw QRLoginError.notFound }
        let effects = try transition(&request)
        requests[id] = request
        if let device = effects.upsertDevice { upsert(device) }
        if let token = effects.insertToken { insert(token) }
        if let revoke = effects.revokeTokenId, tokens[revoke]?.revokedAt == nil {
            tokens[revoke]?.revokedAt = effects.revokedAt ?? Date()
        }
        return request
    }

    public func deleteLoginRequests(expiredBefore cutoff: Date) async throws -> Int {
        let old = requests.values.filter { $0.expiresAt < cutoff }.map(\.id)
        for id in old { requests[id] = nil }
        return old.count
    }
}
