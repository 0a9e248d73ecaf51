import Foundation
import HTTPTypes
import Hummingbird
@testable import QRLoginServer
import Testing

/// HEAD on the read-only GET routes (RFC 9110 §9.3.2): the GET answer's status and headers,
/// with the length of the body it would have had, and no body.
@Suite("HEAD")
struct HeadTests {
    @Test("The phone's reads and a login request's QR images answer HEAD as GET, without the body; without credentials 401")
    func readsAnswerHead() async throws {
        try await withAPI { api, _ in
            let phone = try await api.signedInPhone("hana")
            let login = try await api.newLogin()
            let signedIn = ["/api/v1/me", "/api/v1/devices", "/api/v1/grants"]
            let open = ["/api/v1/qr/\(login.id)/qr.svg", "/api/v1/qr/\(login.id)/qr.png"]
            for path in signedIn + open {
                let needsToken = signedIn.contains(path)
                let get = try await api.call(.get, path, device: needsToken ? phone : nil, token: needsToken ? phone.token : nil)
                #expect(get.status == .ok, "GET \(path): \(get.text)")
                let head = try await api.call(.head, path, device: needsToken ? phone : nil, token: needsToken ? phone.token : nil)
                #expect(head.status == .ok, "HEAD \(path)")
                #expect(head.body.readableBytes == 0, "HEAD \(path)")
                #expect(head.headers[.contentType] == get.headers[.contentType], "HEAD \(path)")
                #expect(head.headers[.contentLength] == String(get.body.readableBytes), "HEAD \(path)")
                if needsToken {
                    let anonymous = try await api.call(.head, path)
                    #expect(anonymous.status == .unauthorized, "HEAD \(path) without a token")
                    #expect(anonymous.headers[.wwwAuthenticate] != nil)
                }
            }
            #expect(try await api.call(.head, "/api/v1/qr/AAAAAAAAAAAAAAAAAAAAAA/qr.svg").status == .notFound)
        }
    }
}
