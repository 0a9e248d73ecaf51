import Foundation
import Hummingbird
import QRLoginCore
import QRLoginOAuth

// Request and response bodies of the v1 HTTP contract. Field names are camelCase; dates are
// ISO 8601. Every response is built from these, never from storage records directly, so no
// hash or key material can leak by accident.

struct DeviceBody: Decodable {
    var type: String
    var name: String

    func validated() throws(QRLoginError) -> DeviceInfo {
        DeviceInfo(type: try Validate.deviceType(type), name: try Validate.name(name, field: "device.name"))
    }
}

struct RegisterBody: Decodable {
    var username: String
    var password: String
    var displayName: String?
    var phone: String?
}

struct PasswordSignInBody: Decodable {
    var username: String
    var password: String
    var device: DeviceBody
}

struct CodeStartBody: Decodable {
    var phone: String
}

struct CodeVerifyBody: Decodable {
    var phone: String
    var code: String
    var device: DeviceBody
}

struct CreateLoginBody: Decodable {
    var device: DeviceBody
    /// On the OpenID Connect login screen: the authorization request's query, so the phone can
    /// name the app (checked by the server, never taken on trust).
    var authorize: String?
}

struct ConfirmBody: Decodable {
    var ticket: String
    /// The number picked, for a QR login.
    var match: Int?
    /// The user code picked, for a device grant.
    var userCode: String?

    /// What was picked: exactly one of `match` and `userCode`.
    func pick() throws(QRLoginError) -> LoginRequest.Pick {
        switch (match, userCode) {
        case (let match?, nil): return .number(match)
        case (nil, let code?): return .userCode(code)
        default: throw .invalidInput("give either match (a QR login) or userCode (a device grant)")
        }
    }
}

struct UserCodeBody: Decodable {
    var userCode: String
}

struct DenyBody: Decodable {
    var ticket: String
}

struct AccountView: ResponseGenerator, JSONWritable {
    var id: String
    var username: String
    var displayName: String
    var phone: String?
    var createdAt: Date

    init(_ account: Account) {
        id = account.id
        username = account.username
        displayName = account.displayName
        phone = account.phone
        createdAt = account.createdAt
    }

    func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("createdAt", createdAt)
            $0.field("displayName", displayName)
            $0.field("id", id)
            $0.field("phone", phone)
            $0.field("username", username)
        }
    }
}

struct DeviceView: Encodable, JSONWritable {
    var id: String
    var type: DeviceType
    var name: String
    var createdAt: Date
    var lastSeenAt: Date
    var lastIP: String
    var approvedBy: String?
    var current: Bool

    init(_ device: Device, currentId: String) {
        id = device.id
        type = device.type
        name = device.name
        createdAt = device.createdAt
        lastSeenAt = device.lastSeenAt
        lastIP = device.lastIP
        approvedBy = device.approvedBy
        current = device.id == currentId
    }

    func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("approvedBy", approvedBy)
            $0.field("createdAt", createdAt)
            $0.field("current", current)
            $0.field("id", id)
            $0.field("lastIP", lastIP)
            $0.field("lastSeenAt", lastSeenAt)
            $0.field("name", name)
            $0.field("type", type)
        }
    }
}

struct SessionView: ResponseEncodable {
    var accessToken: String
    var tokenType = "DPoP"
    var expiresAt: Date
    var account: AccountView
    var device: DeviceView

    init(_ issued: IssuedToken) {
        accessToken = issued.accessToken
        expiresAt = issued.record.expiresAt
        account = AccountView(issued.account)
        device = DeviceView(issued.device, currentId: issued.device.id)
    }
}

struct CreatedLoginView: ResponseGenerator, JSONWritable {
    var id: String
    var url: String
    var pollSecret: String
    var expiresAt: Date
    var interval: Int

    func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("expiresAt", expiresAt)
            $0.field("id", id)
            $0.field("interval", interval)
            $0.field("pollSecret", pollSecret)
            $0.field("url", url)
        }
    }
}

struct LoginStatusView: ResponseGenerator, JSONWritable {
    struct Scanner: Encodable {
        var displayName: String
    }

    struct Token: Encodable {
        var accessToken: String
        var tokenType = "DPoP"
        var expiresAt: Date
        var accountId: String
        var deviceId: String
        var deviceType: DeviceType
    }

    var id: String
    var state: LoginState
    var expiresAt: Date
    var interval: Int
    var scanner: Scanner?
    var match: Int?
    var reason: DenyReason?
    var token: Token?

    init(_ status: LoginStatus, interval: Int) {
        let request = status.request
        id = request.id
        state = status.state
        expiresAt = request.deadline
        self.interval = interval
        if status.state == .scanned || status.state == .confirmed, let name = request.scannerDisplayName {
            scanner = Scanner(displayName: name)
            match = status.state == .scanned ? request.match : nil
        }
        reason = status.state == .denied ? request.denyReason : nil
        token = status.token.map {
            Token(accessToken: $0.accessToken, expiresAt: $0.record.expiresAt, accountId: $0.record.accountId, deviceId: $0.record.deviceId, deviceType: $0.record.deviceType)
        }
    }

    func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("expiresAt", expiresAt)
            $0.field("id", id)
            $0.field("interval", interval)
            $0.field("match", match)
            $0.field("reason", reason)
            if let scanner {
                $0.field("scanner") { $0.field("displayName", scanner.displayName) }
            }
            $0.field("state", state)
            if let token {
                $0.field("token") {
                    $0.field("accessToken", token.accessToken)
                    $0.field("accountId", token.accountId)
                    $0.field("deviceId", token.deviceId)
                    $0.field("deviceType", token.deviceType)
                    $0.field("expiresAt", token.expiresAt)
                    $0.field("tokenType", token.tokenType)
                }
            }
        }
    }
}

struct ScanView: ResponseGenerator, JSONWritable {
    struct Requester: Encodable {
        var type: DeviceType
        var name: String
        var ip: String
        var userAgent: String
        var createdAt: Date
        /// Whether the PC asked from the phone's network (``Network/same(_:_:)``); when not,
        /// the phone warns that a relayed code may be a phishing attempt.
        var sameNetwork: Bool
    }

    struct Client: Encodable {
        var id: String
        var name: String
    }

    struct ScopeView: Encodable {
        var name: String
        var description: String
    }

    var id: String
    var ticket: String
    var ticketExpiresAt: Date
    var requester: Requester
    var matchChoices: [Int]
    /// For a device grant: the user codes to pick from, as `XXXX-XXXX`.
    var userCodeChoices: [String]?
    /// For a device grant: the client that asks.
    var client: Client?
    /// For a device grant: the scopes asked for, in plain words.
    var scopes: [ScopeView]?

    /// The answer to a scan by a phone whose address is `phoneIP`.
    init(_ result: ScanResult, phoneIP: String) {
        let request = result.request
        id = request.id
        ticket = result.ticket
        ticketExpiresAt = request.ticketExpiresAt ?? request.deadline
        requester = Requester(
            type: request.requester.type, name: request.requester.name, ip: request.requester.ip, userAgent: request.requester.userAgent,
            createdAt: request.createdAt, sameNetwork: Network.same(request.requester.ip, phoneIP)
        )
        matchChoices = request.matchChoices
        if let grant = request.deviceGrant {
            userCodeChoices = grant.userCodeChoices.map(UserCode.display)
            client = Client(id: grant.clientId, name: result.client?.name ?? grant.clientId)
            scopes = grant.scopes.map { ScopeView(name: $0, description: Scope.describe($0)) }
        } else if let app = request.app {
            client = Client(id: app.clientId, name: result.client?.name ?? app.clientId)
            scopes = app.scopes.map { ScopeView(name: $0, description: Scope.describe($0)) }
        }
    }

    func write(to writer: inout JSONWriter) {
        writer.object {
            if let client {
                $0.field("client", object: {
                    $0.field("id", client.id)
                    $0.field("name", client.name)
                })
            }
            $0.field("id", id)
            $0.field("matchChoices", matchChoices)
            $0.field("requester") {
                $0.field("createdAt", requester.createdAt)
                $0.field("ip", requester.ip)
                $0.field("name", requester.name)
                $0.field("sameNetwork", requester.sameNetwork)
                $0.field("type", requester.type)
                $0.field("userAgent", requester.userAgent)
            }
            if let scopes {
                $0.field("scopes", array: scopes) { writer, scope in
                    writer.field("description", scope.description)
                    writer.field("name", scope.name)
                }
            }
            $0.field("ticket", ticket)
            $0.field("ticketExpiresAt", ticketExpiresAt)
            if let userCodeChoices { $0.field("userCodeChoices", userCodeChoices) }
        }
    }
}

struct GrantView: Encodable {
    var id: String
    var client: ScanView.Client
    var scopes: [ScanView.ScopeView]
    var createdAt: Date
    var expiresAt: Date
}

struct GrantsView: ResponseEncodable {
    var grants: [GrantView]
}

struct StateView: ResponseGenerator, JSONWritable {
    var id: String
    var state: LoginState

    func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("id", id)
            $0.field("state", state)
        }
    }
}

struct MeView: ResponseGenerator, JSONWritable {
    struct TokenFacts: Encodable {
        var id: String
        var origin: TokenOrigin
        var deviceType: DeviceType
        var approvedBy: String?
        var createdAt: Date
        var expiresAt: Date
    }

    var account: AccountView
    var device: DeviceView
    var token: TokenFacts

    init(_ identity: Identity) {
        account = AccountView(identity.account)
        device = DeviceView(identity.device, currentId: identity.device.id)
        let token = identity.token
        self.token = TokenFacts(id: token.id, origin: token.origin, deviceType: token.deviceType, approvedBy: token.approvedBy, createdAt: token.createdAt, expiresAt: token.expiresAt)
    }

    func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("account", account)
            $0.field("device", device)
            $0.field("token") {
                $0.field("approvedBy", token.approvedBy)
                $0.field("createdAt", token.createdAt)
                $0.field("deviceType", token.deviceType)
                $0.field("expiresAt", token.expiresAt)
                $0.field("id", token.id)
                $0.field("origin", token.origin)
            }
        }
    }
}

struct DevicesView: ResponseEncodable {
    var devices: [DeviceView]
}

struct HealthView: ResponseGenerator, JSONWritable {
    var status: String
    var storage: String

    func write(to writer: inout JSONWriter) {
        writer.object {
            $0.field("status", status)
            $0.field("storage", storage)
        }
    }
}
