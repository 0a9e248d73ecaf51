import Foundation
import QRLoginCore

/// The phone's side of a QR login: scan, then confirm or deny.
extension QRLoginClient {
    private struct ConfirmBody: Encodable {
        var ticket: String
        var match: Int?
        var userCode: String?
    }

    private struct UserCodeBody: Encodable {
        var userCode: String
    }

    private struct DenyBody: Encodable {
        var ticket: String
    }

    /// Scans a login request: binds it to this account and returns who is asking, the three
    /// numbers and a one-time ticket. `url` is the QR's url or a bare id.
    /// - Throws: `.invalidLoginURL`, `.notSignedIn`, or `.server` with `not_found`,
    ///   `already_scanned`, `expired`, `request_<state>`.
    public func scan(url: String) async throws -> ScanResult {
        let id = try loginRequestId(fromURLOrId: url)
        return try await call("POST", "/api/v1/qr/\(id)/scan", auth: .session, token: try requireToken(), as: ScanResult.self)
    }

    /// Confirms the scanned request with the number the user picked. A wrong number denies it.
    /// - Throws: `.server` with `wrong_match`, `invalid_ticket`, `ticket_expired`, `not_scanner`.
    @discardableResult
    public func confirm(_ scan: ScanResult, match: Int) async throws -> StateChange {
        try await call("POST", "/api/v1/qr/\(scan.id)/confirm", auth: .session, token: try requireToken(), body: ConfirmBody(ticket: scan.ticket, match: match, userCode: nil), as: StateChange.self)
    }

    /// Confirms a scanned OAuth device grant with the user code the user picked (or typed). A
    /// wrong code denies it.
    /// - Throws: as ``confirm(_:match:)``.
    @discardableResult
    public func confirm(_ scan: ScanResult, userCode: String) async throws -> StateChange {
        try await call("POST", "/api/v1/qr/\(scan.id)/confirm", auth: .session, token: try requireToken(), body: ConfirmBody(ticket: scan.ticket, userCode: userCode), as: StateChange.self)
    }

    /// Finds the device grant whose user code the user typed (dashes and case ignored) and scans
    /// it; typing the code is the match, so the result offers only that code.
    /// - Throws: `.server` with `not_found`, `invalid_request`, `rate_limited`, and as ``scan(url:)``.
    public func scan(userCode: String) async throws -> ScanResult {
        try await call("POST", "/api/v1/device", auth: .session, token: try requireToken(), body: UserCodeBody(userCode: userCode), as: ScanResult.self)
    }

    /// Denies the scanned request.
    /// - Throws: `.server` with `invalid_ticket`, `ticket_expired`, `not_scanner`.
    @discardableResult
    public func deny(_ scan: ScanResult) async throws -> StateChange {
        try await call("POST", "/api/v1/qr/\(scan.id)/deny", auth: .session, token: try requireToken(), body: DenyBody(ticket: scan.ticket), as: StateChange.self)
    }
}
