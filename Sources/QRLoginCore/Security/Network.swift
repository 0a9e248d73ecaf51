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
/// or for IPv6 the same /64 (one link's prefix). IPv6 addresses that carry an IPv4 client's
/// address count as that IPv4 address: IPv4-mapped (`::ffff:a.b.c.d`), NAT64's well-known prefix
/// (`64:ff9b::a.b.c.d`, RFC 6052: a server behind a translator sees every IPv4 client in one /64)
/// and Teredo (`2001::/32`, RFC 4380: every client of one relay shares a /64). Under NAT64's
/// local-use prefix (`64:ff9b:1::/48`, RFC 8215), where the IPv4 address sits depends on how
/// the operator set it up, only the very same address counts. Anything that is not an IP
/// address is never the same network, so an unknown address warns rather than reassures.
public enum Network {
    /// Whether addresses `first` and `second` (as the server saw them) are on one network.
    public static func same(_ first: String, _ second: String) -> Bool {
        guard let a = address(first), let b = address(second), a.count == b.count else { return false }
        if a.count == 4 || isLocalUseNAT64(a) || isLocalUseNAT64(b) { return a == b }
        return a.prefix(8) == b.prefix(8)
    }

    private static func isLocalUseNAT64(_ bytes: [UInt8]) -> Bool {
        bytes.count == 16 && bytes.starts(with: [0x00, 0x64, 0xff, 0x9b, 0x00, 0x01])
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
        // 64:ff9b::/96: the IPv4 address in the last 32 bits.
        if bytes.starts(with: [0x00, 0x64, 0xff, 0x9b]) && bytes[4..<12].allSatisfy({ $0 == 0 }) {
            return Array(bytes[12...])
        }
        // Teredo: the client's public IPv4 address in the last 32 bits, every bit inverted.
        if bytes.starts(with: [0x20, 0x01, 0x00, 0x00]) {
            return bytes[12...].map { ~$0 }
        }
        return bytes
    }
}
