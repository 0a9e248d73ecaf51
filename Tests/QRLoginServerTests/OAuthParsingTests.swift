import Foundation
import QRLoginCore
import QRLoginOAuth
@testable import QRLoginServer
import Testing

/// The byte-level parsing every OAuth request goes through: the body's media type and the
/// HTTP Basic client credentials (RFC 6749 §2.3.1, RFC 7617).
@Suite("OAuth request parsing")
struct OAuthParsingTests {
    @Test(arguments: [
        "application/x-www-form-urlencoded",
        "Application/X-WWW-Form-Urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        " application/x-www-form-urlencoded\t;charset=utf-8",
        "APPLICATION/X-WWW-FORM-URLENCODED;",
    ])
    func formMediaTypes(_ value: String) {
        #expect(FormBody.isFormType(value))
    }

    @Test(arguments: [
        "", ";", "application/json", "multipart/form-data; boundary=x", "application/x-www-form-urlencodedx",
        "application/x-www-form-urlencode", "application/x-www-form\rurlencoded", "application/x-www-form-urlencoded, text/plain",
        "application/x-www-form-urlencoded\u{00A0}", "text/x-www-form-urlencoded",
    ])
    func otherMediaTypes(_ value: String) {
        #expect(!FormBody.isFormType(value))
    }

    private func credentials(_ authorization: String?, form: String = "") throws(OAuthError) -> ClientCredentials {
        try OAuthRoutes.credentials(authorization: authorization, form: try FormBody(form))
    }

    private func basic(_ text: String) -> String {
        Data(text.utf8).base64EncodedString()
    }

    @Test func basicCredentialsInAnyCaseAndSpacing() throws {
        for header in ["Basic \(basic("rs:s3cret"))", "basic \(basic("rs:s3cret"))", "BASIC   \(basic("rs:s3cret"))  "] {
            let parsed = try credentials(header)
            #expect(parsed.clientId == "rs" && parsed.secret == "s3cret" && parsed.viaBasic, "\(header)")
        }
    }

    @Test func basicCredentialsAreFormDecodedAndSplitAtTheFirstColon() throws {
        let parsed = try credentials("Basic \(basic("my%20app:a%2Bb:c+d"))")
        #expect(parsed.clientId == "my app")
        #expect(parsed.secret == "a+b:c d")
        let empty = try credentials("Basic \(basic("cli:"))")
        #expect(empty.clientId == "cli" && empty.secret == nil, "a public client sends an empty password")
    }

    @Test(arguments: [
        "Bearer abc", "Basic", "Basic ", "Basicx \(Data("rs:x".utf8).base64EncodedString())", "Basic !!!!", "Basic cnM6eA",
        "Basic \(Data("no colon".utf8).base64EncodedString())", "Basic \(Data([0xFF, 0x3A, 0x61]).base64EncodedString())",
        "Basic \(Data("rs:%zz".utf8).base64EncodedString())",
    ])
    func malformedBasicCredentialsAreInvalidClient(_ header: String) {
        #expect(throws: OAuthError.self) { try credentials(header) }
        do {
            _ = try credentials(header)
        } catch {
            #expect(error.code == .invalidClient, "\(header)")
        }
    }

    @Test func basicAndBodyCredentialsTogetherAreRefused() throws {
        #expect(throws: OAuthError.self) { try credentials("Basic \(basic("rs:x"))", form: "client_secret=y") }
        #expect(throws: OAuthError.self) { try credentials("Basic \(basic("rs:x"))", form: "client_id=other") }
        let same = try credentials("Basic \(basic("rs:x"))", form: "client_id=rs")
        #expect(same.clientId == "rs")
        let post = try credentials(nil, form: "client_id=app&client_secret=z")
        #expect(post.clientId == "app" && post.secret == "z" && !post.viaBasic)
    }

    @Test func aTokenNamesItsFamilyAndPlace() throws {
        let (token, key) = OAuthTokenKey.make(prefix: "qrl_rt_", family: "Fam_ily-1", place: 41, secret: Secrets.randomBytes(32))
        #expect(token.hasPrefix("qrl_rt_Fam_ily-1.41."))
        #expect(token.utf8.count == "qrl_rt_Fam_ily-1.41.".utf8.count + 43)
        #expect(key.family == "Fam_ily-1")
        #expect(key.place == 41)
        #expect(key.hash == "0000000041." + Secrets.hash(token), "sorted by place within the family, then the token's hash")
        #expect(OAuthTokenKey(token: token, prefix: "qrl_rt_") == key)
        #expect(OAuthTokenKey(token: token, prefix: "qrl_oa_") == nil, "another kind's prefix")
        // A token issued before tokens named their family: found by its hash alone.
        let old = "qrl_oa_" + String(repeating: "A", count: 43)
        #expect(OAuthTokenKey(token: old, prefix: "qrl_oa_") == OAuthTokenKey(token: old, prefix: "qrl_oa_"))
        #expect(OAuthTokenKey(token: old, prefix: "qrl_oa_")?.family == nil)
        #expect(OAuthTokenKey(token: old, prefix: "qrl_oa_")?.hash == Secrets.hash(old))
    }

    @Test(arguments: [
        "qrl_oa_fam.1", "qrl_oa_fam.1.secret.more", "qrl_oa_.1.secret", "qrl_oa_fam..secret", "qrl_oa_fam.1.",
        "qrl_oa_fam.x1.secret", "qrl_oa_fam.-1.secret", "qrl_oa_fam.12345678901.secret", "qrl_oa_f%m.1.secret", "qrl_oa_f m.1.secret",
        "qrl_oa_" + String(repeating: "f", count: 65) + ".1.secret", "qrl_oa_" + String(repeating: "s", count: 250), "qrl_rt_fam.1.secret", "",
    ])
    func aMalformedTokenHasNoKey(token: String) {
        #expect(OAuthTokenKey(token: token, prefix: "qrl_oa_") == nil)
    }
}
