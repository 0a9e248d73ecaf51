/// The JSON object of a DPoP proof's header or claims, parsed strictly (RFC 8259).
///
/// Written here rather than taken from Foundation because it sits in front of every request:
/// `JSONSerialization` builds an `[String: Any]` of bridged objects that every member read then
/// casts back, several microseconds per proof, and no JSON package this project can use parses
/// faster. A proof is small and flat, so this reads it in one pass over its bytes and keeps its
/// members in order, with strings and numbers typed and anything else only validated.
///
/// It accepts no more than `JSONSerialization` does (tests hold it to that on hostile and
/// mutated input) and refuses more: a trailing comma (which Foundation lets through), an
/// object with a repeated member name (a proof that says
/// `htm` twice says two things; RFC 7515 §4 lets a parser refuse it), more than
/// ``maxMembers`` members, or nesting deeper than ``maxDepth``.
struct ProofJSON {
    enum Value {
        case string(String)
        case number(Double)
        case object(ProofJSON)
        /// `true`, `false`, `null` or an array: valid, never read.
        case other
    }

    /// Members in the order they appear.
    private(set) var members: [(name: String, value: Value)]

    /// Most members one object may have; real proofs have five or six.
    static let maxMembers = 64
    /// Deepest nesting of objects and arrays; a proof's deepest is its header's `jwk`.
    static let maxDepth = 16

    /// Parses `bytes` as one JSON object with nothing but whitespace around it; nil if they are
    /// not exactly that.
    init?(_ bytes: [UInt8]) {
        let parsed: ProofJSON? = bytes.withUnsafeBufferPointer { buffer in
            var parser = Parser(bytes: buffer)
            parser.skipWhitespace()
            guard let object = parser.object(depth: 1) else { return nil }
            parser.skipWhitespace()
            return parser.index == buffer.count ? object : nil
        }
        guard let parsed else { return nil }
        self = parsed
    }

    fileprivate init(members: [(name: String, value: Value)]) {
        self.members = members
    }

    subscript(name: String) -> Value? {
        for member in members where member.name == name { return member.value }
        return nil
    }
}

private struct Parser {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    private static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")

    private var next: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipWhitespace() {
        while let byte = next, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard next == byte else { return false }
        index += 1
        return true
    }

    mutating func object(depth: Int) -> ProofJSON? {
        guard depth <= ProofJSON.maxDepth, take(UInt8(ascii: "{")) else { return nil }
        var members: [(name: String, value: ProofJSON.Value)] = []
        skipWhitespace()
        if take(UInt8(ascii: "}")) { return ProofJSON(members: members) }
        while true {
            skipWhitespace()
            guard let name = string() else { return nil }
            skipWhitespace()
            guard take(UInt8(ascii: ":")) else { return nil }
            skipWhitespace()
            guard let value = value(depth: depth),
                  members.count < ProofJSON.maxMembers,
                  !members.contains(where: { $0.name == name })
            else { return nil }
            members.append((name, value))
            skipWhitespace()
            if take(UInt8(ascii: ",")) { continue }
            return take(UInt8(ascii: "}")) ? ProofJSON(members: members) : nil
        }
    }

    private mutating func array(depth: Int) -> Bool {
        guard depth <= ProofJSON.maxDepth, take(UInt8(ascii: "[")) else { return false }
        skipWhitespace()
        if take(UInt8(ascii: "]")) { return true }
        while true {
            skipWhitespace()
            guard value(depth: depth) != nil else { return false }
            skipWhitespace()
            if take(UInt8(ascii: ",")) { continue }
            return take(UInt8(ascii: "]"))
        }
    }

    /// The value at `index`, nested one level below `depth` if it is an object or array.
    private mutating func value(depth: Int) -> ProofJSON.Value? {
        guard let first = next else { return nil }
        switch first {
        case Self.quote: return string().map { .string($0) }
        case UInt8(ascii: "{"): return object(depth: depth + 1).map { .object($0) }
        case UInt8(ascii: "["): return array(depth: depth + 1) ? .other : nil
        case UInt8(ascii: "t"): return literal("true") ? .other : nil
        case UInt8(ascii: "f"): return literal("false") ? .other : nil
        case UInt8(ascii: "n"): return literal("null") ? .other : nil
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
        default: return nil
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count else { return false }
        for offset in 0..<count where bytes[index + offset] != word.utf8Start[offset] { return false }
        index += count
        return true
    }

    private mutating func digits() -> Bool {
        let start = index
        while let byte = next, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { index += 1 }
        return index > start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() -> ProofJSON.Value? {
        let start = index
        _ = take(UInt8(ascii: "-"))
        if take(UInt8(ascii: "0")) {
            // No leading zeros: "01" is not a number.
        } else {
            guard let byte = next, byte >= UInt8(ascii: "1"), byte <= UInt8(ascii: "9") else { return nil }
            _ = digits()
        }
        if take(UInt8(ascii: ".")) { guard digits() else { return nil } }
        if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
            if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
            guard digits() else { return nil }
        }
        // Beyond Double's range is refused, as JSONSerialization refuses it.
        guard let number = Double(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)),
              number.isFinite
        else { return nil }
        return .number(number)
    }

    /// A string at `index` (its opening quote), unescaped; nil unless it is well formed,
    /// valid UTF-8, free of raw control characters and of unpaired UTF-16 surrogates.
    mutating func string() -> String? {
        guard take(Self.quote) else { return nil }
        let start = index
        // Common case: no escapes, so the text is the bytes themselves; ASCII needs no validation.
        var ascii = true
        while let byte = next, byte != Self.quote, byte != Self.backslash {
            guard byte >= 0x20 else { return nil }
            if byte >= 0x80 { ascii = false }
            index += 1
        }
        guard let stop = next else { return nil }
        if stop == Self.quote {
            index += 1
            let text = UnsafeBufferPointer(rebasing: bytes[start..<index - 1])
            return ascii ? String(decoding: text, as: UTF8.self) : String(validating: text, as: UTF8.self)
        }
        var text = Array(bytes[start..<index])
        while let byte = next {
            index += 1
            switch byte {
            case Self.quote:
                return String(validating: text, as: UTF8.self)
            case Self.backslash:
                guard let escaped = next else { return nil }
                index += 1
                switch escaped {
                case Self.quote, Self.backslash, UInt8(ascii: "/"): text.append(escaped)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    text.append(contentsOf: String(Character(scalar)).utf8)
                default: return nil
                }
            case ..<0x20:
                return nil
            default:
                text.append(byte)
            }
        }
        return nil
    }

    /// The scalar of a `\u` escape whose `\u` has been read: one BMP code unit, or a high
    /// surrogate followed by `\u` and a low one.
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let unit = hex4() else { return nil }
        switch unit {
        case 0xD800...0xDBFF:
            guard take(Self.backslash), take(UInt8(ascii: "u")), let low = hex4(), (0xDC00...0xDFFF).contains(low) else { return nil }
            return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
        case 0xDC00...0xDFFF:
            return nil
        default:
            return Unicode.Scalar(unit)
        }
    }

    private mutating func hex4() -> UInt32? {
        guard bytes.count - index >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }
}
