// Hand-written on swift-crypto rather than built on vapor/jwt-kit (checked at 5.8.0): jwt-kit
// verifies against keys registered in a key collection, while a DPoP proof carries its own key
// in the header; it has no RFC 7638 thumbprint; its JWK type accepts a private `d` and turns it
// into a signer instead of refusing it; and it would add swift-certificates, swift-asn1 and
// CryptoExtras to every build for one algorithm. DPoP needs one fixed algorithm (ES256), one
// key type and a handful of claim checks, which fit in a small verifier over P256.Signing.

import Crypto
import Foundation

/// A verified DPoP proof: who signed it (the key) and what it said.
public struct DPoPProof: Sendable, Equatable {
    /// RFC 7638 thumbprint of the proof's key (base64url SHA-256): the device id.
    public var thumbprint: String
    /// The public key as canonical JWK JSON: `{"crv":"P-256","kty":"EC","x":"…","y":"…"}`.
    public var publicKeyJWK: String
    /// The proof's unique id.
    public var jti: String
    /// When the proof says it was made.
    public var issuedAt: Date
    /// The server-provided nonce the proof carries (RFC 9449 §8), if any.
    public var nonce: String? = nil
}

/// A verified proof's entry for the replay cache, not yet recorded: for a caller that records
/// it together with its own write (``Store/useRefreshToken(hash:family:at:recording:_:)``) instead of
/// in a commit of its own.
public struct ProofRecord: Sendable, Equatable {
    /// The cache key: the proof's key thumbprint and `jti`.
    public var key: String
    /// Until when a second use must be refused.
    public var expiresAt: Date
    /// The time the proof was checked at.
    public var now: Date

    /// Creates a record.
    public init(key: String, expiresAt: Date, now: Date) {
        self.key = key
        self.expiresAt = expiresAt
        self.now = now
    }
}

/// Remembers proof ids for the acceptance window, so a replayed proof is refused: in process
/// memory for one instance (``MemoryReplayCache``), in the shared database for several.
public protocol ReplayCache: Sendable {
    /// Records `key` until `expiresAt`. Returns `false` if `key` is already recorded and has
    /// not expired at `now` (a replay), `true` if it was new.
    /// - Throws: a storage fault of a shared cache (the proof is then not accepted).
    func insert(_ key: String, expiresAt: Date, now: Date) async throws -> Bool
}

/// Verifies RFC 9449 DPoP proofs: ES256 only, `typ` `dpop+jwt`, a public P-256 `jwk`,
/// matching `htm`/`htu`, fresh `iat`, unseen `jti`, and `ath` when a token is presented.
public struct DPoPVerifier: Sendable {
    /// Proofs longer than this many bytes are refused before any decoding. A real ES256 proof
    /// is about 600 bytes, so this leaves room for long URLs without letting a client make the
    /// server parse arbitrarily large JSON.
    public static let maxProofLength = 8 * 1024
    /// The longest `jti` accepted, in bytes; it becomes part of a replay-cache key.
    public static let maxJTILength = 256

    private let publicBaseURL: String
    private let maxClockSkew: TimeInterval
    private let replayCache: any ReplayCache
    private let clock: any NowClock
    private let headers = CheckedHeaders()
    /// Told the reason of every refused proof (the `invalidProof` reason, or `replayed`): the
    /// server counts them by reason in its metrics.
    public var onRefusal: (@Sendable (_ reason: String) -> Void)?

    /// Creates a verifier. `publicBaseURL` is the server's configured public URL (for `htu`).
    public init(publicBaseURL: String, maxClockSkew: TimeInterval = 60, replayCache: any ReplayCache, clock: any NowClock) {
        var base = Substring(publicBaseURL)
        while base.hasSuffix("/") { base = base.dropLast() }
        self.publicBaseURL = String(base)
        self.maxClockSkew = maxClockSkew
        self.replayCache = replayCache
        self.clock = clock
    }

    /// Verifies `proof` for a request with `method` to `path` (no query), optionally presenting
    /// `accessToken` (or poll secret).
    /// - Throws: ``QRLoginError/invalidProof(_:)`` naming the failed check, or
    ///   ``QRLoginError/replayedProof``.
    public func verify(proof: String?, method: String, path: String, accessToken: String?) async throws(QRLoginError) -> DPoPProof {
        let (verified, record) = try verifyUnrecorded(proof: proof, method: method, path: path, accessToken: accessToken)
        try await self.record(record)
        return verified
    }

    /// Every check of ``verify(proof:method:path:accessToken:)`` but the replay cache's: the
    /// caller must record the returned entry, through ``record(_:)`` or a store that records it
    /// with its own write, before it acts on the proof.
    /// - Throws: ``QRLoginError/invalidProof(_:)`` naming the failed check.
    public func verifyUnrecorded(proof: String?, method: String, path: String, accessToken: String?) throws(QRLoginError) -> (DPoPProof, ProofRecord) {
        do throws(QRLoginError) {
            guard var proof, !proof.isEmpty else { throw .invalidProof("missing DPoP header") }
            guard proof.utf8.count <= Self.maxProofLength else { throw .invalidProof("proof too large") }
            let now = clock.now
            // Every check but the replay cache's runs over the proof's UTF-8 bytes in place.
            let checked = proof.withUTF8 { bytes in
                Result { () throws(QRLoginError) in try check(bytes, method: method, path: path, accessToken: accessToken, now: now) }
            }
            let verified = try checked.get()
            // The proof stays acceptable until iat + skew (inclusive); a future-dated one also until
            // now + skew. Its record outlives that by a second: a cache frees a record at its expiry
            // exactly, when the proof would still pass the iat check.
            let expiry = max(verified.issuedAt, now).addingTimeInterval(maxClockSkew + 1)
            return (verified, ProofRecord(key: verified.thumbprint + ":" + verified.jti, expiresAt: expiry, now: now))
        } catch {
            refused(error)
            throw error
        }
    }

    /// Records a verified proof in the replay cache.
    /// - Throws: ``QRLoginError/replayedProof`` for a proof recorded before and still live,
    ///   ``QRLoginError/storeUnavailable`` when a shared cache cannot answer.
    public func record(_ record: ProofRecord) async throws(QRLoginError) {
        let fresh: Bool
        do {
            fresh = try await replayCache.insert(record.key, expiresAt: record.expiresAt, now: record.now)
        } catch {
            // A shared cache that cannot answer must not let the proof through.
            throw .storeUnavailable
        }
        guard fresh else {
            refused(.replayedProof)
            throw .replayedProof
        }
    }

    /// Tells ``onRefusal`` why a proof was refused, also when a store that recorded the proof
    /// found it replayed.
    public func refused(_ error: QRLoginError) {
        switch error {
        case .invalidProof(let reason): onRefusal?(reason)
        case .replayedProof: onRefusal?("replayed")
        default: break
        }
    }

    /// Every check of `verify` except the replay cache's, on the proof's bytes.
    private func check(_ bytes: UnsafeBufferPointer<UInt8>, method: String, path: String, accessToken: String?, now: Date) throws(QRLoginError) -> DPoPProof {
        // Exactly three parts: header.claims.signature.
        var dots: [Int] = []
        dots.reserveCapacity(2)
        for index in bytes.indices where bytes[index] == UInt8(ascii: ".") {
            guard dots.count < 2 else { throw .invalidProof("malformed") }
            dots.append(index)
        }
        guard dots.count == 2 else { throw .invalidProof("malformed") }
        let header = UnsafeBufferPointer(rebasing: bytes[..<dots[0]])
        let claimsPart = UnsafeBufferPointer(rebasing: bytes[(dots[0] + 1)..<dots[1]])
        let signaturePart = UnsafeBufferPointer(rebasing: bytes[(dots[1] + 1)...])

        let (key, jwk, thumbprint) = try checkedHeader(header)

        guard let signatureBytes = Base64URL.decodeBytes(signaturePart), signatureBytes.count == 64,
              let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureBytes)
        else { throw .invalidProof("bad signature") }
        let digest = SHA256.hash(data: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[..<dots[1]])))
        guard key.isValidSignature(signature, for: digest) else { throw .invalidProof("bad signature") }

        let claims = try DPoPClaims(json: decodeBase64(claimsPart))
        guard let htm = claims.htm, htm == method else { throw .invalidProof("htm mismatch") }
        guard let htu = claims.htu, htuMatches(htu, path: path) else { throw .invalidProof("htu mismatch") }
        guard let iat = claims.iat, abs(iat - now.timeIntervalSince1970) <= maxClockSkew else {
            throw .invalidProof("iat outside the accepted window")
        }
        guard let jti = claims.jti, !jti.isEmpty, jti.utf8.count <= Self.maxJTILength else {
            throw .invalidProof("jti must be a non-empty string of at most \(Self.maxJTILength) bytes")
        }
        if let accessToken {
            guard let ath = claims.ath else { throw .invalidProof("missing ath") }
            guard ath == Self.ath(for: accessToken) else { throw .invalidProof("ath mismatch") }
        }
        return DPoPProof(thumbprint: thumbprint, publicKeyJWK: jwk, jti: jti, issuedAt: Date(timeIntervalSince1970: iat), nonce: claims.nonce)
    }

    /// Headers held by the checked-header cache (for tests).
    var checkedHeaderCount: Int { headers.count }

    /// The `ath` value for `accessToken`: base64url SHA-256 of its ASCII bytes.
    public static func ath(for accessToken: String) -> String {
        Base64URL.encode(SHA256.hash(data: Array(accessToken.utf8)))
    }

    /// Computes the RFC 7638 thumbprint of a canonical JWK string.
    public static func thumbprint(ofCanonicalJWK jwk: String) -> String {
        Base64URL.encode(SHA256.hash(data: Array(jwk.utf8)))
    }

    /// The key, canonical JWK and thumbprint of a header that passes every header check. A PC
    /// or phone sends the same header with every proof, so a header already checked is looked
    /// up by its exact text instead of being decoded, parsed and its key imported again.
    private func checkedHeader(_ part: UnsafeBufferPointer<UInt8>) throws(QRLoginError) -> (P256.Signing.PublicKey, String, String) {
        let text = String(decoding: part, as: UTF8.self)
        if let known = headers.entry(for: text) { return (known.key, known.jwk, known.thumbprint) }
        let header = try DPoPHeader(json: decodeBase64(part))
        guard header.alg == "ES256" else { throw .invalidProof("alg must be ES256") }
        guard header.typ == "dpop+jwt" else { throw .invalidProof("typ must be dpop+jwt") }
        guard !header.hasCrit else { throw .invalidProof("unsupported crit header") }
        let (key, jwk) = try publicKey(header.jwk)
        let thumbprint = Self.thumbprint(ofCanonicalJWK: jwk)
        headers.remember(CheckedHeaders.Entry(key: key, jwk: jwk, thumbprint: thumbprint), for: text)
        return (key, jwk, thumbprint)
    }

    private func decodeBase64(_ part: UnsafeBufferPointer<UInt8>) throws(QRLoginError) -> [UInt8] {
        guard let bytes = Base64URL.decodeBytes(part) else { throw .invalidProof("malformed") }
        return bytes
    }

    private func publicKey(_ jwk: DPoPJWK?) throws(QRLoginError) -> (P256.Signing.PublicKey, String) {
        let reason = "jwk must be a public P-256 key"
        guard let jwk, !jwk.hasPrivateMembers, jwk.kty == "EC", jwk.crv == "P-256",
              let x = jwk.x, let y = jwk.y,
              let xBytes = Base64URL.decodeBytes(x.utf8), xBytes.count == 32,
              let yBytes = Base64URL.decodeBytes(y.utf8), yBytes.count == 32
        else { throw .invalidProof(reason) }
        // The x9.63 form makes swift-crypto check that the point lies on the curve.
        guard let key = try? P256.Signing.PublicKey(x963Representation: [0x04] + xBytes + yBytes) else {
            throw .invalidProof(reason)
        }
        return (key, canonicalP256JWK(x: x, y: y))
    }

    /// `htu` without query and fragment must be exactly the public base URL plus the path:
    /// the configured URL, never the Host header, decides which origin a proof is for.
    private func htuMatches(_ htu: String, path: String) -> Bool {
        let claimed = htu.utf8.prefix { $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
        let requestPath = path.utf8.prefix { $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
        let base = publicBaseURL.utf8
        guard claimed.count == base.count + requestPath.count else { return false }
        return claimed.prefix(base.count).elementsEqual(base) && claimed.dropFirst(base.count).elementsEqual(requestPath)
    }
}

/// Proof headers that passed every check, by their exact base64url text. What is cached is a
/// pure function of that text (the key it carries, its canonical JWK and thumbprint), so a hit
/// decides nothing differently; the signature is still checked on every proof. Bounded: when
/// full it starts again empty, so a client sending ever new headers costs at most the
/// uncached work.
final class CheckedHeaders: @unchecked Sendable {
    struct Entry: Sendable {
        let key: P256.Signing.PublicKey
        let jwk: String
        let thumbprint: String
    }

    static let capacity = 1024
    /// Guards `entries`.
    private let lock = NSLock()
    private var entries: [String: Entry] = [:]

    func entry(for text: String) -> Entry? {
        lock.withLock { entries[text] }
    }

    func remember(_ entry: Entry, for text: String) {
        lock.withLock {
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[text] = entry
        }
    }

    var count: Int { lock.withLock { entries.count } }
}
