import Foundation
import QRLoginCore

// The shapes of the v1 HTTP contract as a client sees them. Dates are ISO 8601 on the wire.

/// What a device says about itself when it signs in or asks to log in.
public struct DeviceDescription: Codable, Sendable, Equatable {
    /// The kind of device.
    public var type: DeviceType
    /// The name shown to the user, e.g. "Alice's iPhone" or "build-box (ssh)".
    public var name: String

    /// Creates a description.
    public init(type: DeviceType, name: String) {
        self.type = type
        self.name = name
    }
}

/// An account as the server shows it.
public struct AccountInfo: Codable, Sendable, Equatable {
    /// Stable account id.
    public var id: String
    /// Login name.
    public var username: String
    /// The name shown to people.
    public var displayName: String
    /// Phone number, if one is registered.
    public var phone: String?
    /// When the account was created.
    public var createdAt: Date
}

/// A device linked to an account.
public struct DeviceInfo: Codable, Sendable, Equatable {
    /// The device id (its key's RFC 7638 thumbprint).
    public var id: String
    /// The kind of device.
    public var type: DeviceType
    /// The name it gave itself (untrusted text).
    public var name: String
    /// When it was linked.
    public var createdAt: Date
    /// When it last made a call.
    public var lastSeenAt: Date
    /// The IP of that call.
    public var lastIP: String
    /// For a device logged in by QR: the device that approved it.
    public var approvedBy: String?
    /// Whether this is the device making the call.
    public var current: Bool
}

/// A signed-in session: a device-bound access token.
public struct Session: Codable, Sendable, Equatable {
    /// The access token (send it only with a proof of this device's key).
    public var accessToken: String
    /// Always `DPoP`.
    public var tokenType: String
    /// When the token stops working.
    public var expiresAt: Date
    /// The account.
    public var account: AccountInfo
    /// This device.
    public var device: DeviceInfo
}

/// Facts about the caller: `GET /api/v1/me`.
public struct Me: Codable, Sendable, Equatable {
    /// Facts about the token in use.
    public struct TokenFacts: Codable, Sendable, Equatable {
        /// Token record id (not the secret).
        public var id: String
        /// How it was obtained: `password`, `sms` or `qr`.
        public var origin: TokenOrigin
        /// The kind of device it is bound to.
        public var deviceType: DeviceType
        /// For `qr` tokens, the approving device.
        public var approvedBy: String?
        /// When it was issued.
        public var createdAt: Date
        /// When it stops working.
        public var expiresAt: Date
    }

    /// The account.
    public var account: AccountInfo
    /// This device.
    public var device: DeviceInfo
    /// The token in use.
    public var token: TokenFacts
}

/// A login request the PC created: `POST /api/v1/qr`.
public struct PendingLogin: Codable, Sendable, Equatable {
    /// The public id (in the QR).
    public var id: String
    /// The url to show as a QR code.
    public var url: String
    /// The secret that lets this PC read the state; never display it.
    public var pollSecret: String
    /// When the request expires unless confirmed.
    public var expiresAt: Date
    /// Seconds between polls for clients that poll without waiting.
    public var interval: Int
}

/// The token a PC collects when its login is confirmed.
public struct LoginToken: Codable, Sendable, Equatable {
    /// The access token, bound to the PC's key.
    public var accessToken: String
    /// Always `DPoP`.
    public var tokenType: String
    /// When it stops working.
    public var expiresAt: Date
    /// The account it acts for.
    public var accountId: String
    /// The PC's device id.
    public var deviceId: String
    /// The PC's device type.
    public var deviceType: DeviceType
}

/// The state of a login request as its PC sees it: the long-poll body and the SSE `data:`.
public struct LoginStatus: Codable, Sendable, Equatable {
    /// Who scanned.
    public struct Scanner: Codable, Sendable, Equatable {
        /// The scanner's display name.
        public var displayName: String
    }

    /// The request id.
    public var id: String
    /// The state.
    public var state: LoginState
    /// When the request expires (or expired).
    public var expiresAt: Date
    /// Suggested seconds between plain polls.
    public var interval: Int
    /// On `scanned` and `confirmed`: who scanned.
    public var scanner: Scanner?
    /// On `scanned`: the number the PC shows and the user picks on the phone.
    public var match: Int?
    /// On `denied`: why.
    public var reason: DenyReason?
    /// On `confirmed`: the PC's token.
    public var token: LoginToken?
}

/// What the phone learns by scanning: `POST /api/v1/qr/{id}/scan`.
public struct ScanResult: Codable, Sendable, Equatable {
    /// The PC that is asking (client-supplied text: escape wherever shown).
    public struct Requester: Codable, Sendable, Equatable {
        /// Its device type.
        public var type: DeviceType
        /// Its name.
        public var name: String
        /// The IP it asked from.
        public var ip: String
        /// Its user agent.
        public var userAgent: String
        /// When it asked.
        public var createdAt: Date
        /// Whether it asked from the phone's network (the same IP address, or the same IPv6
        /// /64). `false` is the QRLjacking warning sign: a code relayed by a phisher comes from
        /// the phisher's network. Nil from a server that does not compare.
        public var sameNetwork: Bool?
    }

    /// The request id.
    public var id: String
    /// The one-time ticket that confirms or denies.
    public var ticket: String
    /// When the ticket expires.
    public var ticketExpiresAt: Date
    /// Who is asking.
    public var requester: Requester
    /// The three numbers to choose from; one is shown on the PC. Empty for a device grant.
    public var matchChoices: [Int]
    /// For an OAuth device grant: the three user codes (`XXXX-XXXX`) to choose from; one is
    /// shown on the device.
    public var userCodeChoices: [String]?
    /// For an OAuth device grant: the app that asks.
    public var client: AskingClient?
    /// For an OAuth device grant: what the app asks for, in plain words.
    public var scopes: [AskedScope]?

    /// The app behind a device grant.
    public struct AskingClient: Codable, Sendable, Equatable {
        /// Its client id.
        public var id: String
        /// The name it was registered with (client-supplied text).
        public var name: String
    }

    /// A scope an app asks for.
    public struct AskedScope: Codable, Sendable, Equatable {
        /// The scope as the app names it.
        public var name: String
        /// What it means, for people.
        public var description: String
    }
}

/// The answer to confirm, deny and cancel.
public struct StateChange: Codable, Sendable, Equatable {
    /// The request id.
    public var id: String
    /// The state it is in now.
    public var state: LoginState
}

struct DevicesList: Decodable {
    var devices: [DeviceInfo]
}

struct ProblemBody: Decodable {
    var status: Int?
    var code: String?
    var title: String?
    var detail: String?
}

extension JSONDecoder {
    /// Decodes the server's ISO 8601 dates.
    static var qrlogin: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

extension JSONEncoder {
    /// Encodes with ISO 8601 dates and sorted keys.
    static var qrlogin: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
