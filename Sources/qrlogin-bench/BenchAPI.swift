import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QRLoginCore
import QRLoginOAuth

/// The protocol as the load generator drives it: real DPoP proofs, poll secrets, SSE.
struct BenchAPI: Sendable {
    /// Where requests are sent.
    let base: String
    /// The server's public URL, which every proof's `htu` names: `base` itself, unless requests
    /// go straight to one instance of a cluster whose public URL is its proxy's.
    let publicBase: String
    let http: HTTPClient
    /// The secret of the resource server client (``BenchClients/resourceServer``).
    var resourceServerSecret = BenchClients.resourceServerSecret

    struct Reply {
        var status: Int
        var body: ByteBuffer
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:] }
        /// The body as text, at most 300 characters (for error messages).
        var text: String { String(String(decoding: body.readableBytesView, as: UTF8.self).prefix(300)) }
    }

    init(base: String, http: HTTPClient, publicBase: String? = nil) {
        self.base = base
        self.http = http
        self.publicBase = publicBase ?? base
    }

    /// The same client sending to `instance` (one instance's own URL) while its proofs still
    /// name the public URL.
    func sending(to instance: String) -> BenchAPI {
        var api = BenchAPI(base: instance, http: http, publicBase: publicBase)
        api.resourceServerSecret = resourceServerSecret
        return api
    }

    /// A PC's login request as the PC holds it.
    struct PCLogin: Sendable {
        var pc: DPoPSigner
        var id: String
        var pollSecret: String
    }

    /// A signed-in phone.
    struct Phone: Sendable {
        var signer: DPoPSigner
        var token: String
    }

    func send(_ method: HTTPMethod, _ path: String, body: Data? = nil, proof: String? = nil, authorization: String? = nil, accept: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let proof { request.headers.add(name: "DPoP", value: proof) }
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        if let accept { request.headers.add(name: "Accept", value: accept) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(request, timeout: .seconds(120))
        let collected = try await response.body.collect(upTo: 1 << 20)
        return Reply(status: Int(response.status.code), body: collected)
    }

    /// POSTs an `application/x-www-form-urlencoded` body, as the OAuth endpoints take.
    func sendForm(_ path: String, _ form: String, proof: String? = nil, authorization: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        if let proof { request.headers.add(name: "DPoP", value: proof) }
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.body = .bytes(ByteBuffer(string: form))
        let response = try await http.execute(request, timeout: .seconds(120))
        let collected = try await response.body.collect(upTo: 1 << 20)
        return Reply(status: Int(response.status.code), body: collected)
    }

    static let createBody = Data(#"{"device":{"type":"cli","name":"bench"}}"#.utf8)

    func createProof(_ signer: DPoPSigner) throws -> String {
        try signer.proof(method: "POST", url: publicBase + "/api/v1/qr")
    }

    /// POST /api/v1/qr with `proof` made by `signer`.
    func create(signer: DPoPSigner, proof: String) async throws -> (Reply, PCLogin?) {
        let reply = try await send(.POST, "/api/v1/qr", body: Self.createBody, proof: proof)
        let json = reply.json
        guard reply.status == 201, let id = json["id"] as? String, let secret = json["pollSecret"] as? String else { return (reply, nil) }
        return (reply, PCLogin(pc: signer, id: id, pollSecret: secret))
    }

    func statusProof(_ login: PCLogin) throws -> String {
        try login.pc.proof(method: "GET", url: publicBase + "/api/v1/qr/" + login.id, accessToken: login.pollSecret)
    }

    func status(_ login: PCLogin, proof: String, query: String = "") async throws -> Reply {
        try await send(.GET, "/api/v1/qr/" + login.id + query, proof: proof, authorization: "Bearer " + login.pollSecret)
    }

    /// Registers and signs in a phone (bcrypt runs here: keep it out of timed loops).
    func phone(username: String) async throws -> Phone {
        let password = "bench password 1"
        let register = try JSONSerialization.data(withJSONObject: ["username": username, "password": password, "displayName": username])
        let created = try await send(.POST, "/api/v1/accounts", body: register)
        guard created.status == 201 else { throw BenchError.unexpected("register \(created.status)") }
        let signer = DPoPSigner()
        let body = try JSONSerialization.data(withJSONObject: ["username": username, "password": password, "device": ["type": "ios", "name": "bench phone"]])
        let session = try await send(.POST, "/api/v1/auth/password", body: body, proof: try signer.proof(method: "POST", url: publicBase + "/api/v1/auth/password"))
        guard session.status == 201, let token = session.json["accessToken"] as? String else { throw BenchError.unexpected("signin \(session.status)") }
        return Phone(signer: signer, token: token)
    }

    func scan(_ id: String, by phone: Phone) async throws -> Reply {
        let path = "/api/v1/qr/\(id)/scan"
        return try await send(.POST, path, proof: try phone.signer.proof(method: "POST", url: publicBase + path, accessToken: phone.token), authorization: "DPoP " + phone.token)
    }

    func confirm(_ id: String, ticket: String, match: Int, by phone: Phone) async throws -> Reply {
        let path = "/api/v1/qr/\(id)/confirm"
        let body = try JSONSerialization.data(withJSONObject: ["ticket": ticket, "match": match])
        return try await send(.POST, path, body: body, proof: try phone.signer.proof(method: "POST", url: publicBase + path, accessToken: phone.token), authorization: "DPoP " + phone.token)
    }

    func me(signer: DPoPSigner, token: String) async throws -> Reply {
        try await send(.GET, "/api/v1/me", proof: try signer.proof(method: "GET", url: publicBase + "/api/v1/me", accessToken: token), authorization: "DPoP " + token)
    }

    /// Opens the PC's event stream.
    func events(_ login: PCLogin) async throws -> EventStream {
        var request = HTTPClientRequest(url: base + "/api/v1/qr/" + login.id)
        request.headers.add(name: "DPoP", value: try statusProof(login))
        request.headers.add(name: "Authorization", value: "Bearer " + login.pollSecret)
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await http.execute(request, timeout: .seconds(600))
        guard response.status == .ok else { throw BenchError.unexpected("sse \(response.status.code)") }
        return EventStream(iterator: response.body.makeAsyncIterator())
    }
}

/// The steps of one login, each checked as a PC or phone would: shared by the login and steps
/// scenarios.
extension BenchAPI {
    /// PC create with a proof made beforehand.
    func createLogin(_ pc: DPoPSigner, proof: String) async throws -> PCLogin {
        guard let login = try await create(signer: pc, proof: proof).1 else { throw BenchError.unexpected("create") }
        return login
    }

    /// The PC opens its event stream and reads its `pending` event.
    func openStream(_ login: PCLogin) async throws -> EventStream {
        var stream = try await events(login)
        guard try await stream.next()?.name == "pending" else { throw BenchError.unexpected("first event") }
        return stream
    }

    /// The phone scans; the PC reads the match from its `scanned` event.
    func scan(_ login: PCLogin, by phone: Phone, seenIn stream: inout EventStream) async throws -> (ticket: String, match: Int) {
        let reply = try await scan(login.id, by: phone)
        guard reply.status == 200, let ticket = reply.json["ticket"] as? String else { throw BenchError.unexpected("scan \(reply.status)") }
        guard let scanned = try await stream.next(), scanned.name == "scanned", let match = scanned.data["match"] as? Int else {
            throw BenchError.unexpected("scanned event")
        }
        return (ticket, match)
    }

    /// The phone confirms; the PC collects the token from its `confirmed` event.
    func confirm(_ login: PCLogin, ticket: String, match: Int, by phone: Phone, collectingFrom stream: inout EventStream) async throws -> String {
        let reply = try await confirm(login.id, ticket: ticket, match: match, by: phone)
        guard reply.status == 200 else { throw BenchError.unexpected("confirm \(reply.status)") }
        guard let confirmed = try await stream.next(), confirmed.name == "confirmed",
              let token = (confirmed.data["token"] as? [String: Any])?["accessToken"] as? String
        else { throw BenchError.unexpected("confirmed event") }
        return token
    }

    /// The PC's first `GET /api/v1/me` with its new token.
    func checkMe(_ pc: DPoPSigner, token: String) async throws {
        let reply = try await me(signer: pc, token: token)
        guard reply.status == 200 else { throw BenchError.unexpected("me \(reply.status)") }
    }
}

/// The OAuth clients the harness registers on the server it starts, in a client file that
/// `serve --client-file` loads: a public CLI that logs in by the device grant and refreshes, and
/// a confidential resource server that introspects. Against a server of one's own (`--server`),
/// register the same two (`qrlogin clients add`, or this file) and give the resource server's
/// secret with `--rs-secret`.
enum BenchClients {
    static let cli = "bench-cli"
    static let resourceServer = "bench-rs"
    /// Made anew in each run; the server keeps only its hash.
    static let resourceServerSecret = ClientSecret.generate()

    /// The client file's JSON.
    static func file(resourceServerSecret: String) throws -> Data {
        let document = ClientFileDocument(clients: [
            ClientDocument(id: cli, name: "Bench CLI", type: .public, grantTypes: ["device_code", "refresh_token"]),
            ClientDocument(id: resourceServer, name: "Bench RS", type: .confidential, secret: resourceServerSecret, grantTypes: []),
        ])
        return try JSONEncoder().encode(document)
    }
}

/// The OAuth side as the generator drives it: a device (the bench CLI) logs in by the device
/// grant (RFC 8628) with a DPoP key (RFC 9449), a phone approves it, a resource server
/// introspects (RFC 7662), the device refreshes. Every answer is checked as a client would.
extension BenchAPI {
    struct DeviceStart: Sendable {
        var deviceCode: String
        var userCode: String
        var requestId: String
    }

    struct OAuthTokens: Sendable {
        var accessToken: String
        var refreshToken: String
    }

    static let deviceAuthorizationPath = "/oauth/device_authorization"
    static let tokenPath = "/oauth/token"
    static let introspectionPath = "/oauth/introspect"

    /// Proofs at the device authorization and token endpoints name only the method and URL (no
    /// access token, so no `ath`): they can be signed before the clock starts.
    func deviceAuthorizationProof(_ key: DPoPSigner) throws -> String {
        try key.proof(method: "POST", url: publicBase + Self.deviceAuthorizationPath)
    }

    func tokenProof(_ key: DPoPSigner) throws -> String {
        try key.proof(method: "POST", url: publicBase + Self.tokenPath)
    }

    /// `POST /oauth/device_authorization` as the bench CLI, with a proof of its key.
    func authorizeDevice(proof: String) async throws -> DeviceStart {
        let reply = try await sendForm(Self.deviceAuthorizationPath, "client_id=\(BenchClients.cli)&scope=openid+offline_access", proof: proof)
        let json = reply.json
        guard reply.status == 200, let deviceCode = json["device_code"] as? String, let userCode = json["user_code"] as? String,
              let complete = json["verification_uri_complete"] as? String, let id = complete.split(separator: "/").last
        else { throw BenchError.unexpected("device authorization \(reply.status) \(reply.text)") }
        return DeviceStart(deviceCode: deviceCode, userCode: userCode, requestId: String(id))
    }

    /// The phone scans the device's request, finds the device's user code among its choices and
    /// confirms with it.
    func approve(_ start: DeviceStart, by phone: Phone) async throws {
        let scan = try await scan(start.requestId, by: phone)
        let json = scan.json
        guard scan.status == 200, let ticket = json["ticket"] as? String, let choices = json["userCodeChoices"] as? [String] else {
            throw BenchError.unexpected("device scan \(scan.status) \(scan.text)")
        }
        guard choices.contains(start.userCode) else { throw BenchError.unexpected("device scan: the user code is not among the choices") }
        let path = "/api/v1/qr/\(start.requestId)/confirm"
        let body = try JSONSerialization.data(withJSONObject: ["ticket": ticket, "userCode": start.userCode])
        let confirm = try await send(.POST, path, body: body, proof: try phone.signer.proof(method: "POST", url: publicBase + path, accessToken: phone.token), authorization: "DPoP " + phone.token)
        guard confirm.status == 200 else { throw BenchError.unexpected("device confirm \(confirm.status) \(confirm.text)") }
    }

    /// The device's poll after the phone confirmed: its tokens.
    func redeem(_ start: DeviceStart, proof: String) async throws -> OAuthTokens {
        let form = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=\(start.deviceCode)&client_id=\(BenchClients.cli)"
        let reply = try await sendForm(Self.tokenPath, form, proof: proof)
        guard reply.status == 200, let tokens = Self.tokens(in: reply.body) else { throw BenchError.unexpected("device token \(reply.status) \(reply.text)") }
        return tokens
    }

    /// `grant_type=refresh_token` with a proof of the key the family is bound to.
    func refresh(_ refreshToken: String, proof: String) async throws -> Reply {
        try await sendForm(Self.tokenPath, "grant_type=refresh_token&refresh_token=\(refreshToken)&client_id=\(BenchClients.cli)", proof: proof)
    }

    var resourceServerAuthorization: String {
        "Basic " + Data("\(BenchClients.resourceServer):\(resourceServerSecret)".utf8).base64EncodedString()
    }

    /// `POST /oauth/introspect` as the resource server, with its HTTP Basic credentials.
    func introspect(_ token: String, authorization: String) async throws -> Reply {
        try await sendForm(Self.introspectionPath, "token=" + token, authorization: authorization)
    }

    /// The two tokens of a token answer. The server writes its JSON with no spaces and tokens are
    /// base64url, so a scan for the members is enough and costs the generator little.
    static func tokens(in body: ByteBuffer) -> OAuthTokens? {
        guard let access = stringMember("access_token", in: body), let refresh = stringMember("refresh_token", in: body) else { return nil }
        return OAuthTokens(accessToken: access, refreshToken: refresh)
    }

    /// The string value of member `name` in compact JSON whose strings need no escapes.
    static func stringMember(_ name: String, in body: ByteBuffer) -> String? {
        let bytes = body.readableBytesView
        let key = Array("\"\(name)\":\"".utf8)
        guard bytes.count > key.count else { return nil }
        var index = bytes.startIndex
        while index + key.count <= bytes.endIndex {
            if bytes[index] == key[0], bytes[index..<(index + key.count)].elementsEqual(key) {
                let start = index + key.count
                guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
                return String(decoding: bytes[start..<end], as: UTF8.self)
            }
            index += 1
        }
        return nil
    }

    /// Whether an introspection answer says the token is active: the server writes `active`
    /// first.
    static func isActive(_ body: ByteBuffer) -> Bool {
        body.readableBytesView.starts(with: #"{"active":true,"#.utf8)
    }
}

/// Server-Sent Events from a streaming body: yields `(event name, data JSON)`.
struct EventStream {
    var iterator: HTTPClientResponse.Body.AsyncIterator
    var buffer: [UInt8] = []

    mutating func next() async throws -> (name: String, data: [String: Any])? {
        while true {
            if let end = Self.blockEnd(in: buffer) {
                let block = String(decoding: buffer[..<end], as: UTF8.self)
                buffer.removeFirst(end + 2)
                var name = "message", data = ""
                for line in block.split(separator: "\n") {
                    if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                    else if line.hasPrefix("data: ") { data += line.dropFirst(6) }
                }
                if data.isEmpty { continue }
                let json = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
                return (name, json)
            }
            guard let chunk = try await iterator.next() else { return nil }
            buffer.append(contentsOf: chunk.readableBytesView)
        }
    }

    private static func blockEnd(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 2 else { return nil }
        for index in 0..<(bytes.count - 1) where bytes[index] == 10 && bytes[index + 1] == 10 { return index }
        return nil
    }
}

enum BenchError: Error, CustomStringConvertible {
    case unexpected(String)
    var description: String {
        switch self { case .unexpected(let what): "unexpected response: \(what)" }
    }
}
