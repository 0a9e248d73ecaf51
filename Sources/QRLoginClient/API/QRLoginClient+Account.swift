import Foundation
import QRLoginCore

/// Accounts, sign-in and the signed-in device's calls.
extension QRLoginClient {
    private struct RegisterBody: Encodable {
        var username: String
        var password: String
        var displayName: String?
        var phone: String?
    }

    private struct PasswordBody: Encodable {
        var username: String
        var password: String
        var device: DeviceDescription
    }

    private struct CodeStartBody: Encodable {
        var phone: String
    }

    private struct CodeVerifyBody: Encodable {
        var phone: String
        var code: String
        var device: DeviceDescription
    }

    /// Creates an account: `POST /api/v1/accounts`.
    /// - Throws: `.server` with `username_taken`, `phone_taken` or `invalid_request`.
    public func register(username: String, password: String, displayName: String? = nil, phone: String? = nil) async throws -> AccountInfo {
        try await call("POST", "/api/v1/accounts", auth: .none, token: nil, body: RegisterBody(username: username, password: password, displayName: displayName, phone: phone), as: AccountInfo.self)
    }

    /// Signs this device in with a password and keeps the session token.
    /// - Throws: `.server` with `invalid_credentials`, `rate_limited`, …
    public func signIn(username: String, password: String, device: DeviceDescription) async throws -> Session {
        let session = try await call("POST", "/api/v1/auth/password", auth: .proof, token: nil, body: PasswordBody(username: username, password: password, device: device), as: Session.self)
        accessToken = session.accessToken
        return session
    }

    /// Asks the server to send a one-time sign-in code to `phone`.
    public func startCodeSignIn(phone: String) async throws {
        try await callNoContent("POST", "/api/v1/auth/sms/start", auth: .none, token: nil, body: CodeStartBody(phone: phone))
    }

    /// Signs this device in with a one-time code and keeps the session token.
    /// - Throws: `.server` with `invalid_code` or `too_many_attempts`.
    public func verifyCodeSignIn(phone: String, code: String, device: DeviceDescription) async throws -> Session {
        let session = try await call("POST", "/api/v1/auth/sms/verify", auth: .proof, token: nil, body: CodeVerifyBody(phone: phone, code: code, device: device), as: Session.self)
        accessToken = session.accessToken
        return session
    }

    /// Revokes the current token on the server and forgets it.
    /// - Throws: ``QRLoginClientError/notSignedIn``, or `.server` (`invalid_token` when it
    ///   was already revoked; the token is forgotten anyway).
    public func logout() async throws {
        let token = try requireToken()
        defer { accessToken = nil }
        try await callNoContent("POST", "/api/v1/auth/logout", auth: .session, token: token)
    }

    /// The account, device and token behind the session: `GET /api/v1/me`.
    /// - Throws: `.notSignedIn`, or `.server` with `invalid_token` when the token is revoked,
    ///   expired or bound to another key.
    public func me() async throws -> Me {
        try await call("GET", "/api/v1/me", auth: .session, token: try requireToken(), as: Me.self)
    }

    /// The devices linked to the account.
    public func devices() async throws -> [DeviceInfo] {
        try await call("GET", "/api/v1/devices", auth: .session, token: try requireToken(), as: DevicesList.self).devices
    }

    /// Remote logout: every token of device `id` stops working.
    /// - Throws: `.server` with `device_not_found`.
    public func revoke(deviceId id: String) async throws {
        let escaped = id.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? id
        try await callNoContent("DELETE", "/api/v1/devices/\(escaped)", auth: .session, token: try requireToken())
    }
}
