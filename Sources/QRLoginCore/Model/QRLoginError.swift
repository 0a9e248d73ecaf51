/// Every failure the login service reports. Each case has a stable machine-readable ``code``;
/// the server maps cases to HTTP statuses in one place. No case carries a secret.
public enum QRLoginError: Error, Sendable, Equatable {
    /// Input is malformed or out of bounds; `detail` says which field and why.
    case invalidInput(String)
    /// The username is already registered.
    case usernameTaken
    /// The phone number is already registered.
    case phoneTaken
    /// Unknown user or wrong password (deliberately the same error).
    case invalidCredentials
    /// The one-time code is wrong, expired or used.
    case invalidCode
    /// Too many wrong one-time codes; a new code must be requested.
    case tooManyAttempts
    /// No `Authorization` credentials where they are required.
    case missingCredentials
    /// The access token is unknown, revoked, expired, or bound to another key.
    case invalidToken
    /// The DPoP proof is missing or invalid; the detail says why.
    case invalidProof(String)
    /// The DPoP proof was seen before.
    case replayedProof
    /// The poll secret or the key proof does not belong to this login request.
    case invalidPollSecret
    /// No such login request.
    case notFound
    /// No such device on this account.
    case deviceNotFound
    /// No such grant (an app's tokens) on this account.
    case grantNotFound
    /// Another phone scanned this request first.
    case alreadyScanned
    /// The request is in a state that does not allow the action.
    case wrongState(LoginState)
    /// The request expired.
    case expired
    /// The scan ticket expired before it was used.
    case ticketExpired
    /// Only the device that scanned may confirm or deny.
    case notScanner
    /// The scan ticket is wrong.
    case invalidTicket
    /// The number picked on the phone was not the one the PC shows; the request is now denied.
    case wrongMatch
    /// Too many requests from this client; retry after the given seconds.
    case rateLimited(retryAfter: Int)
    /// The request body is larger than allowed.
    case bodyTooLarge
    /// A newer read by the same PC took over collecting the token (a stale connection).
    case superseded
    /// The store cannot serve now (its database is unreachable or slow); retry shortly.
    case storeUnavailable

    /// A stable identifier clients can switch on.
    public var code: String {
        switch self {
        case .invalidInput: "invalid_request"
        case .usernameTaken: "username_taken"
        case .phoneTaken: "phone_taken"
        case .invalidCredentials: "invalid_credentials"
        case .invalidCode: "invalid_code"
        case .tooManyAttempts: "too_many_attempts"
        case .missingCredentials: "missing_credentials"
        case .invalidToken: "invalid_token"
        case .invalidProof: "invalid_dpop_proof"
        case .replayedProof: "dpop_proof_replayed"
        case .invalidPollSecret: "invalid_poll_secret"
        case .notFound, .grantNotFound: "not_found"
        case .deviceNotFound: "device_not_found"
        case .alreadyScanned: "already_scanned"
        case .wrongState(let state): "request_\(state.rawValue)"
        case .expired: "expired"
        case .ticketExpired: "ticket_expired"
        case .notScanner: "not_scanner"
        case .invalidTicket: "invalid_ticket"
        case .wrongMatch: "wrong_match"
        case .rateLimited: "rate_limited"
        case .bodyTooLarge: "body_too_large"
        case .superseded: "superseded"
        case .storeUnavailable: "store_unavailable"
        }
    }

    /// A human-readable explanation.
    public var detail: String {
        switch self {
        case .invalidInput(let detail): detail
        case .usernameTaken: "That username is already registered."
        case .phoneTaken: "That phone number is already registered."
        case .invalidCredentials: "Unknown username or wrong password."
        case .invalidCode: "The code is wrong, expired or already used."
        case .tooManyAttempts: "Too many wrong codes. Request a new code."
        case .missingCredentials: "This endpoint needs an Authorization header and a DPoP proof."
        case .invalidToken: "The access token is invalid, expired, revoked or bound to another key."
        case .invalidProof(let reason): "Invalid DPoP proof: \(reason)."
        case .replayedProof: "This DPoP proof was already used; sign a new one for every request."
        case .invalidPollSecret: "The poll secret or key proof does not match this login request."
        case .notFound: "No such login request."
        case .grantNotFound: "No such grant on this account."
        case .deviceNotFound: "No such device on this account."
        case .alreadyScanned: "Another device already scanned this login request."
        case .wrongState(let state): "The login request is \(state.rawValue)."
        case .expired: "The login request expired."
        case .ticketExpired: "The scan ticket expired; the login request has ended."
        case .notScanner: "Only the device that scanned this login request may confirm or deny it."
        case .invalidTicket: "The scan ticket is not valid for this login request."
        case .wrongMatch: "The number picked is not the one the PC shows; the login request was denied."
        case .rateLimited(let seconds): "Too many requests. Retry in \(seconds) s."
        case .bodyTooLarge: "The request body is too large."
        case .superseded: "A newer request from this PC is collecting the login; this one was replaced."
        case .storeUnavailable: "The login service cannot reach its database right now. Retry in a moment."
        }
    }
}
