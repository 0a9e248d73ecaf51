import Crypto
import Foundation

/// Server-provided DPoP nonces (RFC 9449 §8). A nonce is an HMAC of the current time window
/// under a key made when the process starts, so it needs no storage, any nonce of the current
/// or the previous window is accepted, and after a restart no earlier nonce is: a proof signed
/// before the restart cannot be replayed after it, even though the replay cache started empty.
///
/// Several instances on one database share one key (kept in the database, made by the first
/// instance), so a nonce from one is good at every other; their replay cache is shared and
/// durable, so a restart does not reopen replays there.
public struct DPoPNonces: Sendable {
    private let key: SymmetricKey
    /// Seconds a window lasts; a nonce is good for one to two windows.
    public let window: TimeInterval

    /// Creates a nonce source with a new random key.
    public init(window: TimeInterval = 300) {
        self.init(key: SymmetricKey(size: .bits256), window: window)
    }

    /// Creates a nonce source with `key` (shared by the instances of one deployment).
    public init(key: SymmetricKey, window: TimeInterval = 300) {
        precondition(window > 0, "the nonce window must be positive")
        self.key = key
        self.window = window
    }

    /// The nonce to hand out at `now`.
    public func current(at now: Date) -> String {
        nonce(forWindow: windowIndex(now))
    }

    /// Whether `nonce` was handed out by this source in the current or the previous window.
    public func isValid(_ nonce: String?, at now: Date) -> Bool {
        guard let nonce, nonce.utf8.count <= 64 else { return false }
        let index = windowIndex(now)
        return ClientSecret.constantTimeEquals(nonce, self.nonce(forWindow: index))
            || ClientSecret.constantTimeEquals(nonce, self.nonce(forWindow: index - 1))
    }

    private func windowIndex(_ now: Date) -> Int64 {
        Int64((now.timeIntervalSince1970 / window).rounded(.down))
    }

    private func nonce(forWindow index: Int64) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: withUnsafeBytes(of: index.bigEndian) { Data($0) }, using: key)
        return ClientSecret.base64URL(Data(mac.prefix(18)))
    }
}
