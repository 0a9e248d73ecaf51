import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOCore
import QRLoginCore
import QRLoginOAuth
@testable import QRLoginServer
import Testing

/// Registered clients every OAuth test starts with.
enum OAuthClients {
    /// A public CLI that must use DPoP.
    static let cli = OAuthClient(id: "cli", name: "Terminal <b>app</b>", type: .public, secretHash: nil, grantTypes: [.deviceCode, .refreshToken], scopes: ["billing:read"], requireDPoP: true, createdAt: Date())
    /// A public client that may use Bearer tokens.
    static let tv = OAuthClient(id: "tv", name: "Living-room TV", type: .public, secretHash: nil, grantTypes: [.deviceCode, .refreshToken], createdAt: Date())
    /// A confidential device client.
    static let confSecret = "qrl_cs_conf-secret-0123456789abcdefghijklmnopqrstuvw"
    static let conf = OAuthClient(id: "conf", name: "Kiosk", type: .confidential, secretHash: ClientSecret.hash(confSecret), grantTypes: [.deviceCode, .refreshToken], createdAt: Date())
    /// A resource server that only introspects.
    static let rsSecret = "qrl_cs_rs-secret-0123456789abcdefghijklmnopqrstuvwxyz"
    static let rs = OAuthClient(id: "rs", name: "Billing API", type: .confidential, secretHash: ClientSecret.hash(rsSecret), grantTypes: [], createdAt: Date())

    /// A memory store with the clients above.
    static func store() async throws -> MemoryStore {
        let store = MemoryStore()
        for client in [cli, tv, conf, rs] { try await store.upsertClient(client) }
        return store
    }

    static func basic(_ id: String, _ secret: String) -> String {
        "Basic " + Data("\(id):\(secret)".utf8).base64EncodedString()
    }
}

/// A device grant as the device sees it after the device authorization response.
struct DeviceGrantStart {
    var deviceCode: String
    var userCode: String
    var requestId: String
    var interval: Int
    var key: TestDevice?
}

extension API {
    /// POSTs form `params` to `path`, with a DPoP proof of `device` (carrying `nonce`) and
    /// `authorization` if given.
    @discardableResult
    func form(_ path: String, _ params: [(String, String)], device: TestDevice? = nil, nonce: String? = nil, authorization: String? = nil, proof: String? = nil) async throws -> Reply {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let authorization { headers[.authorization] = authorization }
        if let proof {
            headers[.dpop] = proof
        } else if let device {
            headers[.dpop] = try device.signer.proof(method: "POST", url: testBaseURL + path, issuedAt: clock.now, nonce: nonce)
        }
        let body = params.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        let reply = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            Reply(status: response.status, headers: response.headers, body: response.body)
        }
        ResponseRecorder.record(.post, path, reply)
        return reply
    }

    static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// Starts a device grant for `client` (with a DPoP key unless `key` is nil).
    func startDeviceGrant(client: String = "cli", scope: String = "openid offline_access", key: TestDevice? = TestDevice(), authorization: String? = nil) async throws -> DeviceGrantStart {
        var params = [("scope", scope)]
        if authorization == nil { params.append(("client_id", client)) }
        let reply = try await form("/oauth/device_authorization", params, device: key, authorization: authorization)
        #expect(reply.status == .ok, "\(reply.text)")
        let complete = try #require(reply["verification_uri_complete"] as? String)
        #expect(reply["verification_uri"] as? String == testBaseURL + "/device")
        return DeviceGrantStart(
            deviceCode: try #require(reply["device_code"] as? String), userCode: try #require(reply["user_code"] as? String),
            requestId: String(try #require(complete.split(separator: "/").last)), interval: try #require(reply["interval"] as? Int), key: key
        )
    }

    /// The device polls the token endpoint.
    func poll(_ start: DeviceGrantStart, client: String = "cli", key: TestDevice?? = .none, authorization: String? = nil) async throws -> Reply {
        var params = [("grant_type", GrantType.deviceCode.rawValue), ("device_code", start.deviceCode)]
        if authorization == nil { params.append(("client_id", client)) }
        let signer: TestDevice? = switch key { case .none: start.key; case .some(let given): given }
        return try await form("/oauth/token", params, device: signer, authorization: authorization)
    }

    /// The phone scans the request and picks `pick` (the device's user code when nil).
    @discardableResult
    func approve(_ start: DeviceGrantStart, by phone: TestDevice, pick: String? = nil) async throws -> Reply {
        let scan = try await call(.post, "/api/v1/qr/\(start.requestId)/scan", device: phone, token: phone.token)
        #expect(scan.status == .ok, "\(scan.text)")
        let choices = try #require(scan["userCodeChoices"] as? [String])
        #expect(choices.contains(start.userCode))
        return try await call(.post, "/api/v1/qr/\(start.requestId)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "userCode": pick ?? start.userCode], device: phone, token: phone.token)
    }

    /// Runs a whole device grant and returns the token response.
    func deviceTokens(client: String = "cli", scope: String = "openid offline_access", key: TestDevice? = TestDevice(), phone: TestDevice) async throws -> (start: DeviceGrantStart, tokens: Reply) {
        let start = try await startDeviceGrant(client: client, scope: scope, key: key)
        let confirmed = try await approve(start, by: phone)
        #expect(confirmed.status == .ok, "\(confirmed.text)")
        let tokens = try await poll(start, client: client)
        #expect(tokens.status == .ok, "\(tokens.text)")
        return (start, tokens)
    }

    /// Introspects `token` as the resource server (or `authorization`).
    func introspect(_ token: String, authorization: String = OAuthClients.basic("rs", OAuthClients.rsSecret)) async throws -> Reply {
        try await form("/oauth/introspect", [("token", token)], authorization: authorization)
    }

    /// Refreshes with `refreshToken`, proving `key`.
    func refresh(_ refreshToken: String, client: String = "cli", key: TestDevice?, scope: String? = nil) async throws -> Reply {
        var params = [("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("client_id", client)]
        if let scope { params.append(("scope", scope)) }
        return try await form("/oauth/token", params, device: key)
    }
}

extension Reply {
    /// The RFC 6749 `error` of an OAuth answer.
    var oauthError: String? { json["error"] as? String }
}
