import Foundation
import Hummingbird
import QRLoginCore

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
}

struct ConfirmBody: Decodable {
    var ticket: String
    var match: Int
}

struct DenyBody: Decodable {
    var ticket: String
}

struct AccountView: ResponseEncodable {
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
}

struct DeviceView: ResponseEncodable {
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

struct CreatedLoginView: ResponseEncodable {
    var id: String
    var url: String
    var pollSecret: String
    var expiresAt: Date
    var interval: Int
}

struct LoginStatusView: ResponseEncodable {
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
}

struct ScanView: ResponseEncodable {
    struct Requester: Encodable {
        var type: DeviceType
        var name: String
        var ip: String
        var userAgent: String
        var createdAt: Date
    }

    var id: String
    var ticket: String
    var ticketExpiresAt: Date
    var requester: Requester
    var matchChoices: [Int]

    init(_ result: ScanResult) {
        let request = result.request
        id = request.id
        ticket = result.ticket
        ticketExpiresAt = request.ticketExpiresAt ?? request.deadline
        requester = Requester(type: request.requester.type, name: request.requester.name, ip: request.requester.ip, userAgent: request.requester.userAgent, createdAt: request.createdAt)
        matchChoices = request.matchChoices
    }
}

struct StateView: ResponseEncodable {
    var id: String
    var state: LoginState
}

struct MeView: ResponseEncodable {
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
}

struct DevicesView: ResponseEncodable {
    var devices: [DeviceView]
}

struct HealthView: ResponseEncodable {
    var status: String
    var storage: String
}
