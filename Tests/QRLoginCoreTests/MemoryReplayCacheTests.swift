import Foundation
import QRLoginCore
import Testing

@Suite("MemoryReplayCache")
struct MemoryReplayCacheTests {
    private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func secondInsertWithinExpiryIsAReplay() async {
        let cache = MemoryReplayCache()
        #expect(await cache.insert("k", expiresAt: t0.addingTimeInterval(60), now: t0))
        #expect(await cache.insert("k", expiresAt: t0.addingTimeInterval(70), now: t0.addingTimeInterval(10)) == false)
        #expect(await cache.insert("other", expiresAt: t0.addingTimeInterval(60), now: t0.addingTimeInterval(10)))
    }

    @Test func keyIsFreeAgainAfterItsExpiry() async {
        let cache = MemoryReplayCache()
        #expect(await cache.insert("k", expiresAt: t0.addingTimeInterval(60), now: t0))
        #expect(await cache.insert("k", expiresAt: t0.addingTimeInterval(120), now: t0.addingTimeInterval(60)))
    }

    @Test func replayIsCaughtAcrossGenerations() async {
        let cache = MemoryReplayCache(rotationInterval: 10)
        #expect(await cache.insert("k", expiresAt: t0.addingTimeInterval(120), now: t0))
        for step in 1...11 {
            let now = t0.addingTimeInterval(Double(step) * 10)
            #expect(await cache.insert("filler-\(step)", expiresAt: now.addingTimeInterval(5), now: now))
            #expect(await cache.insert("k", expiresAt: now.addingTimeInterval(60), now: now) == false, "step \(step)")
        }
    }

    @Test func expiredGenerationsAreReleased() async {
        let cache = MemoryReplayCache(rotationInterval: 10)
        for index in 0..<1_000 {
            _ = await cache.insert("old-\(index)", expiresAt: t0.addingTimeInterval(60), now: t0)
        }
        #expect(cache.count == 1_000)
        let later = t0.addingTimeInterval(61)
        _ = await cache.insert("new", expiresAt: later.addingTimeInterval(60), now: later)
        #expect(cache.count == 1)
    }

    /// Keys are held as digests: keys shaped like the verifier's (one key's thumbprint, ids that
    /// differ in one character or in length) must all stay apart, and each must still be caught.
    @Test func keysThatDifferInOneCharacterStayApart() async {
        let cache = MemoryReplayCache()
        let thumbprint = String(repeating: "T", count: 43)
        var keys: [String] = []
        for index in 0..<5_000 { keys.append("\(thumbprint):jti-\(index)") }
        keys += ["\(thumbprint):", "\(thumbprint)::", "", ":\(thumbprint)"]
        for key in keys {
            #expect(await cache.insert(key, expiresAt: t0.addingTimeInterval(60), now: t0), "\(key) was taken for a replay")
        }
        #expect(cache.count == keys.count)
        for key in keys {
            #expect(await cache.insert(key, expiresAt: t0.addingTimeInterval(70), now: t0.addingTimeInterval(1)) == false, "\(key) was not caught")
        }
    }
}
