#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether two client addresses are on the same network, for the phone's QRLjacking warning
/// (draft-ietf-oauth-cross-device-security): a login request relayed by a phisher comes from
/// the phisher's network, not the phone's.
///
/// "Same network" is the same IPv4 address (behind one NAT a household or office shares one),
/// or for IPv6 the same /64 (one link's prefix). An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// counts as its IPv4 address. Anything that is not an IP address is never the same network,
/// so an unknown address warns rather than reassures.
public enum Network {
    /// Whether addresses `first` and `second` (as the server saw them) are on one network.
    public static func same(_ first: String, _ second: String) -> Bool {
        guard let a = address(first), let b = address(second), a.count == b.count else { return false }
        return a.count == 4 ? a == b : a.prefix(8) == b.prefix(8)
    }

    /// The address's bytes: 4 for IPv4 (also when mapped into IPv6), 16 for IPv6.
    static func address(_ text: String) -> [UInt8]? {
        // A zone (`fe80::1%eth0`) names the interface, not the address.
        let host = String(text.prefix { $0 != "%" })
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return Array(bytes[12...])
        }
        return bytes
    }
}
