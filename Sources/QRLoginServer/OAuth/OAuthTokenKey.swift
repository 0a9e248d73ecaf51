import QRLoginCore

/// Where an OAuth token is kept, read from the token itself.
///
/// A token names its family and its place in it: `qrl_oa_<family>.<place>.<secret>` (refresh
/// tokens `qrl_rt_…`), with 256 random bits as the secret. So a store can keep each family's
/// tokens together, in the order they were issued, and find one among them
/// (``Store/oauthToken(hash:family:)``): a refresh then writes its new tokens and marks the old
/// one on one page of the database, where tokens found by hash alone were spread over three at
/// random. The family's id and the token's place are not secret (the grant's id is shown to its
/// user; introspection tells when a token was issued). Tokens issued before tokens named their
/// family (`qrl_oa_<secret>`) name none and are found by hash alone.
struct OAuthTokenKey: Equatable {
    /// The family the token names; nil for one that names none.
    var family: String?
    /// What the store keeps and looks up (``OAuthToken/hash``): the token's SHA-256, base64url,
    /// after its place (ten digits and a dot) when it names one, so a family's tokens sort in
    /// the order they were issued.
    var hash: String
    /// The token's place in its family, if it names one.
    var place: Int?

    /// The key of `token`, which must start with `prefix`; nil for anything not shaped like a
    /// token of ours (it is then unknown: no store is asked).
    init?(token: String, prefix: String) {
        // Over bytes: `hasPrefix` compares Characters.
        guard token.utf8.count <= 256, token.utf8.starts(with: prefix.utf8) else { return nil }
        let parts = token.utf8.dropFirst(prefix.utf8.count).split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        switch parts.count {
        case 1:
            self.init(family: nil, hash: Secrets.hash(token), place: nil)
        case 3:
            let (family, digits, secret) = (parts[0], parts[1], parts[2])
            guard (1...64).contains(family.count), family.allSatisfy(Self.isBase64URL),
                  (1...10).contains(digits.count), digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  !secret.isEmpty, let place = Int(String(decoding: digits, as: UTF8.self))
            else { return nil }
            self.init(family: String(decoding: family, as: UTF8.self), hash: Self.hash(token, place: place), place: place)
        default:
            return nil
        }
    }

    private init(family: String?, hash: String, place: Int?) {
        self.family = family
        self.hash = hash
        self.place = place
    }

    /// A new token of `family` at `place` (its family's first is 0), with its key. `secret` is
    /// 32 bytes from the CSPRNG (``Secrets/randomBytes(_:)``).
    static func make(prefix: String, family: String, place: Int, secret: some Collection<UInt8>) -> (token: String, key: OAuthTokenKey) {
        precondition(secret.count == 32, "a token's secret is 256 bits")
        let token = "\(prefix)\(family).\(place)." + Base64URL.encode(secret)
        return (token, OAuthTokenKey(family: family, hash: hash(token, place: place), place: place))
    }

    private static func hash(_ token: String, place: Int) -> String {
        let digits = String(place)
        return String(repeating: "0", count: max(0, 10 - digits.count)) + digits + "." + Secrets.hash(token)
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }
}
