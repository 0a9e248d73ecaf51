import Foundation

/// The OAuth side of a login request created through the device authorization endpoint
/// (RFC 8628): which client asked, for what, the code the device shows, and how it polls.
/// A login request with this part is a device grant: the device is the PC of the flow, the
/// user code replaces the match number, and the token endpoint replaces the status read.
public struct DeviceGrant: Codable, Sendable, Equatable {
    /// The client that asked.
    public var clientId: String
    /// The scopes asked for, in order.
    public var scopes: [String]
    /// The user code, normalised (`BCDFGHJK`); shown as `BCDF-GHJK`.
    public var userCode: String
    /// The three codes offered on the phone after a scan, in display order.
    public var userCodeChoices: [String]
    /// Seconds the device must wait between polls; raised by 5 on every `slow_down`.
    public var interval: Int
    /// When the device last polled the token endpoint.
    public var lastPolledAt: Date?
    /// Whether the tokens were handed out (a confirmed grant hands them out once).
    public var issued: Bool

    /// Creates the OAuth part of a new device grant.
    public init(clientId: String, scopes: [String], userCode: String, interval: Int) {
        self.clientId = clientId
        self.scopes = scopes
        self.userCode = userCode
        self.userCodeChoices = []
        self.interval = interval
        self.lastPolledAt = nil
        self.issued = false
    }

    /// Records a poll at `now`. Returns `slow_down` (having raised the interval by 5 s, RFC 8628
    /// §3.5) when the poll came sooner than `interval` after the previous one, nil otherwise.
    /// It returns rather than throws because the poll time and the new interval must be written
    /// either way.
    public mutating func poll(at now: Date) -> OAuthError? {
        defer { lastPolledAt = now }
        guard let last = lastPolledAt, now.timeIntervalSince(last) < Double(interval) else { return nil }
        interval += 5
        return OAuthError(.slowDown, "poll at most every \(interval) seconds")
    }
}
