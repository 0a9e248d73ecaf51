import Foundation
@testable import QRLoginCore
import Testing

/// ProofJSON replaces JSONSerialization in front of every request, so it is held to it: it must
/// read what JSONSerialization reads, and never accept what JSONSerialization refuses.
@Suite("Proof JSON")
struct ProofJSONTests {
    static func parse(_ text: String) -> ProofJSON? { ProofJSON(Array(text.utf8)) }

    static func foundation(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    /// Whether `ours` says what `theirs` (JSONSerialization's reading) says: same member names,
    /// same strings, same numbers, objects alike, and nothing typed that they read as another type.
    static func agree(_ ours: ProofJSON, _ theirs: [String: Any]) -> Bool {
        guard ours.members.count == theirs.count else { return false }
        for (name, value) in ours.members {
            guard let their = theirs[name] else { return false }
            switch value {
            case .string(let string):
                guard (their as? String) == string else { return false }
            case .number(let number):
                // Foundation reads integers beyond Int64 as Decimal; Double is within rounding of it.
                if let decimal = their as? Decimal {
                    guard abs(NSDecimalNumber(decimal: decimal).doubleValue - number) <= abs(number) * 1e-12 else { return false }
                } else {
                    // A boolean arrives as an NSNumber too; its type code `c` tells it apart.
                    guard their as? String == nil, let nsNumber = their as? NSNumber,
                          nsNumber.objCType.pointee != CChar(UInt8(ascii: "c")), nsNumber.doubleValue == number
                    else { return false }
                }
            case .object(let object):
                guard let theirObject = their as? [String: Any], agree(object, theirObject) else { return false }
            case .other:
                guard their as? String == nil, their as? [String: Any] == nil else { return false }
            }
        }
        return true
    }

    static let claims = #"{"htm":"POST","htu":"https://login.example.com/api/v1/login-requests","iat":1764057600,"jti":"c1b2a3","ath":"fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"}"#
    static let header = #"{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}}"#

    @Test func readsAProofsClaimsAndHeader() throws {
        let claims = try #require(Self.parse(Self.claims))
        #expect(claims.members.map(\.name) == ["htm", "htu", "iat", "jti", "ath"])
        guard case .string("POST") = claims["htm"], case .number(1_764_057_600) = claims["iat"] else {
            Issue.record("htm or iat misread"); return
        }
        #expect(claims["nonce"] == nil)
        let header = try #require(Self.parse(Self.header))
        guard case .object(let jwk) = header["jwk"], case .string("P-256") = jwk["crv"] else {
            Issue.record("jwk misread"); return
        }
        #expect(Self.agree(claims, try #require(Self.foundation(Array(Self.claims.utf8)))))
        #expect(Self.agree(header, try #require(Self.foundation(Array(Self.header.utf8)))))
    }

    /// Valid JSON in every shape a member can take; each must be read as JSONSerialization reads it.
    @Test(arguments: [
        #"{}"#, #" { } "#, "\t{\n\"a\" :\r\"b\" }\n",
        #"{"a":"","b":"\"\\\/\b\f\n\r\t","c":"\u00e9\u20AC\ud83d\ude00","d":"é€😀"}"#,
        #"{"n":0,"m":-0,"o":12.5,"p":-1.25e-3,"q":1E+2,"r":6.02e23,"s":1764057600.5,"t":123456789012345678901234567890}"#,
        #"{"t":true,"f":false,"z":null,"a":[],"b":[1,"x",[null,{}],{"k":false}],"o":{"p":{"q":{}}}}"#,
        #"{"nonce":"abc","extra":{"nested":[1,2,3]},"htm":"GET"}"#,
        #"{"\u0068tm":"GET","k\"ey":"v"}"#,
        #"{"zero":"\u0000"}"#,
    ])
    func readsValidJSONAsFoundationDoes(text: String) throws {
        let ours = try #require(Self.parse(text))
        let theirs = try #require(Self.foundation(Array(text.utf8)))
        #expect(Self.agree(ours, theirs))
    }

    /// Malformed input that JSONSerialization also refuses.
    @Test(arguments: [
        "", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\" \"b\"}", "{,}", "{\"a\":1 \"b\":2}",
        "{\"a\":1}x", "{\"a\":1}{}", "{\"a\":1e999}", "{\"a\":-1e999}", "[]", "\"str\"", "1", "null", "{a:1}", "{'a':1}",
        "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":+1}", "{\"a\":0x10}",
        "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":tru}", "{\"a\":truex}", "{\"a\":nul}", "{\"a\":True}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\ude00\"}",
        "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"unterminated}", "{\"a\":\"tab\there\"}", "{\"a\":\"nl\nhere\"}",
        "{\"a\":[1 2]}", "{\"a\":[}", "{\"a\":{\"b\":1}", "{\"a\"::1}",
    ])
    func refusesWhatFoundationRefuses(text: String) {
        #expect(Self.foundation(Array(text.utf8)) == nil, "JSONSerialization accepts \(text)")
        #expect(Self.parse(text) == nil, "accepted \(text)")
    }

    @Test func refusesInvalidUTF8() {
        for bytes: [UInt8] in [
            Array(#"{"a":""#.utf8) + [0xFF] + Array(#""}"#.utf8),          // not UTF-8 at all
            Array(#"{"a":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8),    // overlong "/"
            Array(#"{"a":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8), // an encoded surrogate
            Array(#"{"a":""#.utf8) + [0xE2, 0x82] + Array(#""}"#.utf8),    // truncated sequence
            Array(#"{"a\"#.utf8) + [0xFF] + Array(#"":1}"#.utf8),          // in a member name, after an escape
            [0xFF] + Array("{}".utf8),
        ] {
            #expect(Self.foundation(bytes) == nil)
            #expect(ProofJSON(bytes) == nil, "accepted \(bytes)")
        }
    }

    /// Stricter than JSONSerialization, on purpose: ambiguous or absurd proofs are refused.
    @Test func refusesTrailingCommasRepeatedNamesTooManyMembersAndDeepNesting() {
        #expect(Self.foundation(Array(#"{"a":[1,],}"#.utf8)) != nil, "Foundation lets trailing commas through")
        #expect(Self.parse(#"{"a":1,}"#) == nil)
        #expect(Self.parse(#"{"a":[1,]}"#) == nil)
        #expect(Self.parse(#"{"htm":"GET","htm":"POST"}"#) == nil)
        #expect(Self.parse(#"{"a":{"k":1,"k":2}}"#) == nil)
        let many = (0..<ProofJSON.maxMembers).map { "\"m\($0)\":\($0)" }
        #expect(Self.parse("{" + many.joined(separator: ",") + "}") != nil)
        #expect(Self.parse("{" + (many + ["\"one-more\":0"]).joined(separator: ",") + "}") == nil)
        func nested(_ depth: Int) -> String {
            "{\"a\":" + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}"
        }
        #expect(Self.parse(nested(ProofJSON.maxDepth)) != nil)
        #expect(Self.parse(nested(ProofJSON.maxDepth + 1)) == nil)
        #expect(Self.parse(nested(100_000)) == nil)
    }

    /// Hostile input by mutation: whatever ProofJSON accepts, JSONSerialization must accept and
    /// read the same way. Deterministic, so a failure reproduces.
    @Test func mutatedProofsNeverParseDifferentlyFromFoundation() {
        // A fixed-seed linear congruential sequence (Knuth's MMIX constants): reproducible.
        var state: UInt64 = 0x5EED_1234
        func nextRandom() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 17
        }
        let seeds = [Self.claims, Self.header, #"{"a":[1,{"b":"\u00e9"}],"c":-1.5e3,"d":"x\"y"}"#].map { Array($0.utf8) }
        let alphabet = Array(#"{}[]:,"\ /0123456789.eE+-tfnrulsabxyzu"#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xA9, 0xED, 0xFF]
        var accepted = 0
        for round in 0..<30_000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0...Int(nextRandom() % 3) {
                let position = Int(nextRandom() % UInt64(bytes.count + 1))
                let byte = alphabet[Int(nextRandom() % UInt64(alphabet.count))]
                switch nextRandom() % 3 {
                case 0 where position < bytes.count: bytes[position] = byte
                case 1: bytes.insert(byte, at: position)
                default: if position < bytes.count { bytes.remove(at: position) }
                }
            }
            guard let ours = ProofJSON(bytes) else { continue }
            accepted += 1
            guard let theirs = Self.foundation(bytes), Self.agree(ours, theirs) else {
                Issue.record("differs from JSONSerialization on \(String(decoding: bytes, as: UTF8.self)) \(bytes)")
                return
            }
        }
        // Enough mutants stay valid for the comparison to mean something.
        #expect(accepted > 1_000)
    }
}
