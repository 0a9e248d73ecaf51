import QRLoginCore
import Testing

@Suite("Same network: the QRLjacking warning's comparison")
struct NetworkTests {
    @Test("IPv4: the same address only", arguments: [
        ("203.0.113.7", "203.0.113.7", true),
        ("203.0.113.7", "203.0.113.8", false),
        ("10.0.0.1", "10.0.0.1", true),
        ("203.0.113.7", "::ffff:203.0.113.7", true),
        ("::ffff:203.0.113.7", "203.0.113.9", false),
        // An IPv6-only server behind a NAT64/SIIT translator sees IPv4 clients in 64:ff9b::/96:
        // one /64 for all of them, so only the embedded address may count.
        ("64:ff9b::203.0.113.7", "64:ff9b::cb00:7107", true),
        ("64:ff9b::203.0.113.7", "203.0.113.7", true),
        ("64:ff9b::203.0.113.7", "64:ff9b::198.51.100.9", false),
        // Teredo (RFC 4380 §4): 2001:0:<relay>:<flags>:<port>:<client IPv4, inverted>.
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45", true),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e378:8000:63bf:3fff:fdd3", false),
    ])
    func ipv4(first: String, second: String, same: Bool) {
        #expect(Network.same(first, second) == same)
        #expect(Network.same(second, first) == same)
    }

    @Test("IPv6: the same /64, however the addresses are written", arguments: [
        ("2001:db8:1:2::10", "2001:db8:1:2:abcd:ef01:2345:6789", true),
        ("2001:db8:1:2::10", "2001:0db8:0001:0002:0000:0000:0000:0010", true),
        ("2001:db8:1:2::10", "2001:db8:1:3::10", false),
        ("2001:db8:1:2::10", "2001:db9:1:2::10", false),
        ("fe80::1%eth0", "fe80::2", true),
        ("::1", "::1", true),
        // NAT64's local-use prefix embeds IPv4 where its operator chose: the same address only.
        ("64:ff9b:1:2::7", "64:ff9b:1:2::7", true),
        ("64:ff9b:1:2::7", "64:ff9b:1:2::8", false),
    ])
    func ipv6(first: String, second: String, same: Bool) {
        #expect(Network.same(first, second) == same)
        #expect(Network.same(second, first) == same)
    }

    @Test("Anything that is not an address is never the same network", arguments: [
        ("unknown", "unknown"), ("", ""), ("203.0.113.7", "2001:db8::7"), ("::203.0.113.7x", "::203.0.113.7x"),
        ("203.0.113.7", "203.0.113"), ("999.1.1.1", "999.1.1.1"), ("2001:db8::1/64", "2001:db8::1/64"),
    ])
    func notAddresses(first: String, second: String) {
        #expect(!Network.same(first, second))
    }
}
