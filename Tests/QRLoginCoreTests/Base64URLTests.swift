import Foundation
import QRLoginCore
import Testing

@Suite("Base64URL")
struct Base64URLTests {
    /// RFC 4648 §10 test vectors, unpadded.
    static let vectors: [(String, String)] = [
        ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy"),
    ]

    @Test(arguments: vectors)
    func rfc4648Vectors(plain: String, encoded: String) {
        #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
        #expect(Base64URL.decode(encoded) == Data(plain.utf8))
        #expect(Base64URL.decode(Substring(encoded)) == Data(plain.utf8))
    }

    @Test func usesTheURLAlphabet() {
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
        #expect(Base64URL.decode("-_-_") == Data([0xFB, 0xFF, 0xBF]))
    }

    /// Foundation's padded base64, translated, as an independent oracle for every length.
    @Test func agreesWithFoundationForEveryLengthUpTo100() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            let expected = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            let encoded = Base64URL.encode(bytes)
            #expect(encoded == expected, "length \(length)")
            // Each way in: contiguous storage, Data, and a sequence that must be copied first.
            #expect(Base64URL.encode(Data(bytes)) == expected, "length \(length)")
            #expect(Base64URL.encode(bytes.lazy.map { $0 }) == expected, "length \(length)")
            #expect(Base64URL.decode(encoded) == Data(bytes), "length \(length)")
        }
    }

    @Test func encodesAnySequenceOfBytes() {
        let bytes: [UInt8] = Array("foobar".utf8)
        #expect(Base64URL.encode(Data(bytes)) == "Zm9vYmFy")
        #expect(Base64URL.encode(bytes[3...]) == "YmFy")
        // A slice of Data starts at its offset in the whole, not at 0.
        #expect(Base64URL.encode(Data(bytes)[3...]) == "YmFy")
        #expect(Base64URL.encode(Data(bytes).dropFirst(3)) == "YmFy")
        #expect(Base64URL.encode("foo".utf8) == "Zm9v")
    }

    @Test(arguments: [
        "Zg==", "Zm8=",             // padding
        "+/8", "Zm9v+w", "a/b",     // the standard alphabet
        "Z", "Zm9vY",               // a length of 1 mod 4
        "Zh", "Zm9", "Zm9vYh",      // non-zero trailing bits: not the canonical spelling
        "Zm9v Yg", "Zm9v\nYg", "Zm9vÿ", "Zm9v.Yg",
    ])
    func refusesNonCanonicalText(text: String) {
        #expect(Base64URL.decode(text) == nil)
        #expect(Base64URL.decode(Substring(text)) == nil)
    }

    @Test func decodesASliceOfALargerString() {
        let compact = "eyJh.Zm9vYmFy.c2ln"
        let middle = compact.split(separator: ".")[1]
        #expect(Base64URL.decode(middle) == Data("foobar".utf8))
    }
}
