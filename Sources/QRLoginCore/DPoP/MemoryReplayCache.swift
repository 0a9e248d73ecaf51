import Crypto
import Foundation
import Synchronization

/// A ``ReplayCache`` in process memory.
///
/// Keys live in generations: a new generation starts every `rotationInterval`, and a whole
/// generation is dropped once every key in it has expired. Pruning is therefore a dictionary
/// release instead of a scan, and a lookup checks only a few generations (the acceptance window
/// divided by the interval, plus one).
///
/// A key is held as the first 128 bits of its SHA-256, not as the string: the verifier's keys
/// (a thumbprint and a `jti`, about 80 bytes) would each take a heap block of their own, and the
/// cache holds one per request for a minute or two, so every waiting PC keeps two. A digest sits
/// inline in the dictionary's storage. Two keys that share a digest would need about 2^64 tries
/// to find and could only make one of the finder's own proofs look replayed; matching a key of
/// someone else's, not yet sent, would need about 2^128.
public final class MemoryReplayCache: ReplayCache {
    private struct Digest: Hashable {
        var high: UInt64
        var low: UInt64

        init(_ key: String) {
            var key = key
            let hash = key.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
            (high, low) = hash.withUnsafeBytes { bytes in
                (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        }
    }

    private struct Generation {
        var startedAt: Date
        var latestExpiry: Date
        var expiries: [Digest: Date] = [:]
    }

    private let rotationInterval: TimeInterval
    private let generations: Mutex<[Generation]>

    /// Creates an empty cache that starts a new generation every `rotationInterval` seconds.
    public init(rotationInterval: TimeInterval = 30) {
        precondition(rotationInterval > 0, "the rotation interval must be positive")
        self.rotationInterval = rotationInterval
        generations = Mutex([])
    }

    /// Records `key` until `expiresAt`. Returns `false` for a key recorded earlier and still
    /// live at `now` (a replay), `true` for a new one.
    public func insert(_ key: String, expiresAt: Date, now: Date) async -> Bool {
        let key = Digest(key)
        return generations.withLock { generations in
            generations.removeAll { $0.latestExpiry <= now }
            for generation in generations {
                if let expiry = generation.expiries[key], expiry > now { return false }
            }
            if generations.isEmpty || now.timeIntervalSince(generations[generations.count - 1].startedAt) >= rotationInterval {
                generations.append(Generation(startedAt: now, latestExpiry: expiresAt))
            }
            let last = generations.count - 1
            generations[last].expiries[key] = expiresAt
            generations[last].latestExpiry = max(generations[last].latestExpiry, expiresAt)
            return true
        }
    }

    /// The number of keys held, live or awaiting their generation's release.
    public var count: Int {
        generations.withLock { $0.reduce(0) { $0 + $1.expiries.count } }
    }
}
