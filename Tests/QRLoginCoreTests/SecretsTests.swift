import Foundation
import QRLoginCore
import Testing

@Suite("Secrets")
struct SecretsTests {
    @Test("Random bytes have the asked length and differ between calls", arguments: [0, 1, 7, 8, 9, 16, 32, 33])
    func randomBytes(count: Int) {
        let a = Secrets.randomBytes(count), b = Secrets.randomBytes(count)
        #expect(a.count == count && b.count == count)
        if count >= 8 { #expect(a != b) }
    }

    @Test("Ids carry 128 bits and secrets 256 bits, base64url, with their prefix")
    func shapes() throws {
        let id = Secrets.publicId()
        #expect(id.count == 22)
        #expect(try #require(Base64URL.decode(id)).count == 16)
        let secret = Secrets.secret(prefix: Secrets.pollSecretPrefix)
        #expect(secret.hasPrefix("qrl_ps_"))
        #expect(try #require(Base64URL.decode(String(secret.dropFirst(7)))).count == 32)
        #expect(Set((0..<1000).map { _ in Secrets.publicId() }).count == 1000)
    }

    @Test("Match choices: three distinct two-digit numbers, the match among them")
    func matchChoices() {
        for _ in 0..<200 {
            let (match, choices) = Secrets.matchChoices()
            #expect(choices.count == 3 && Set(choices).count == 3)
            #expect(choices.allSatisfy { (10...99).contains($0) })
            #expect(choices.contains(match))
        }
    }

    @Test("Match choices cover every two-digit number, and the match every position")
    func matchChoicesSpread() {
        var seen = Set<Int>()
        var positions = [0, 0, 0]
        for _ in 0..<3_000 {
            let (match, choices) = Secrets.matchChoices()
            seen.formUnion(choices)
            positions[choices.firstIndex(of: match)!] += 1
        }
        #expect(seen == Set(10...99))
        // About 1,000 each; 800 is more than seven standard deviations below.
        #expect(positions.allSatisfy { $0 > 800 }, "\(positions)")
    }

    @Test("Constant-time comparison")
    func compare() {
        #expect(Secrets.constantTimeEquals("abc", "abc"))
        #expect(!Secrets.constantTimeEquals("abc", "abd"))
        #expect(!Secrets.constantTimeEquals("abc", "abcd"))
    }
}
