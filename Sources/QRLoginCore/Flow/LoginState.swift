/// The states of a QR login request. `confirmed`, `denied`, `expired` and `cancelled` are final.
public enum LoginState: String, Codable, Sendable, CaseIterable {
    case pending, scanned, confirmed, denied, expired, cancelled

    /// Whether no further transition (other than token pickup on `confirmed`) can happen.
    public var isFinal: Bool {
        switch self {
        case .pending, .scanned: false
        case .confirmed, .denied, .expired, .cancelled: true
        }
    }
}

/// Why a request ended up `denied`.
public enum DenyReason: String, Codable, Sendable {
    /// The user tapped Deny on the phone.
    case user
    /// The user picked a number that the PC did not show.
    case wrongMatch = "wrong_match"
}
