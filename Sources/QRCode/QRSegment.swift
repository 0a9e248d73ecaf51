/// A segment of data in one encoding mode, as it goes into a QR code's bit stream: the mode,
/// the character count and the data bits. Make segments with the factory methods, or let
/// `QRSegment.segments(for:)` pick the shortest mix of modes for a text.
public struct QRSegment: Sendable, Hashable {
    /// A segment's encoding mode.
    public enum Mode: Sendable, Hashable, CustomStringConvertible {
        /// Decimal digits 0-9, 3 per 10 bits.
        case numeric
        /// Digits, upper-case A-Z and ` $%*+-./:`, 2 per 11 bits.
        case alphanumeric
        /// Arbitrary bytes, 8 bits each.
        case byte
        /// Shift_JIS double-byte characters, 13 bits each.
        case kanji
        /// An Extended Channel Interpretation designator; carries no characters.
        case eci

        /// The 4-bit mode indicator.
        var indicator: UInt64 {
            switch self {
            case .numeric: 0x1
            case .alphanumeric: 0x2
            case .byte: 0x4
            case .kanji: 0x8
            case .eci: 0x7
            }
        }

        /// Width of the character count field at `version` (1...40); widths change at 10 and 27.
        public func characterCountBits(version: Int) -> Int {
            let index = version <= 9 ? 0 : (version <= 26 ? 1 : 2)
            switch self {
            case .numeric: return [10, 12, 14][index]
            case .alphanumeric: return [9, 11, 13][index]
            case .byte: return [8, 16, 16][index]
            case .kanji: return [8, 10, 12][index]
            case .eci: return 0
            }
        }

        /// The mode's name in lower case (ECI in capitals).
        public var description: String {
            switch self {
            case .numeric: "numeric"
            case .alphanumeric: "alphanumeric"
            case .byte: "byte"
            case .kanji: "kanji"
            case .eci: "ECI"
            }
        }
    }

    /// The encoding mode.
    public let mode: Mode
    /// The number of characters (digits, alphanumerics, bytes or kanji); 0 for ECI.
    public let characterCount: Int
    /// The data bits, without mode indicator and count.
    let data: BitBuffer

    /// The number of data bits (not counting the mode indicator and character count).
    public var bitLength: Int { data.count }

    /// The data bits packed most significant bit first; the last byte is padded with zeros.
    public var dataBytes: [UInt8] { data.bytes }

    init(mode: Mode, characterCount: Int, data: BitBuffer) {
        self.mode = mode
        self.characterCount = characterCount
        self.data = data
    }

    /// The characters allowed in alphanumeric mode, in code order.
    static let alphanumericCharset: [UInt8] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".utf8)

    /// Maps an ASCII byte to its alphanumeric code, or -1.
    static let alphanumericCode: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in alphanumericCharset.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    /// A numeric segment for a string of ASCII digits. Throws `invalidCharacter` for any other
    /// character. An empty string gives an empty segment.
    public static func numeric(_ digits: String) throws(QRCodeError) -> QRSegment {
        try numeric(utf8: Array(digits.utf8))
    }

    static func numeric(utf8 digits: some Collection<UInt8>) throws(QRCodeError) -> QRSegment {
        if let offset = digits.firstIndex(where: { $0 < 0x30 || $0 > 0x39 }).map({ digits.distance(from: digits.startIndex, to: $0) }) {
            throw .invalidCharacter(mode: .numeric, offset: offset)
        }
        return numeric(validDigits: digits)
    }

    /// A numeric segment for bytes already known to be ASCII digits.
    static func numeric(validDigits digits: some Collection<UInt8>) -> QRSegment {
        var bits = BitBuffer(reservingBits: digits.count * 10 / 3 + 4)
        var group: UInt64 = 0
        var inGroup = 0
        for c in digits {
            group = group * 10 + UInt64(c - 0x30)
            inGroup += 1
            if inGroup == 3 {
                bits.append(group, bits: 10)
                group = 0
                inGroup = 0
            }
        }
        if inGroup > 0 { bits.append(group, bits: inGroup * 3 + 1) }
        return QRSegment(mode: .numeric, characterCount: digits.count, data: bits)
    }

    /// An alphanumeric segment: digits, upper-case A-Z, space and `$%*+-./:`. Throws
    /// `invalidCharacter` for any other character (lower case included).
    public static func alphanumeric(_ text: String) throws(QRCodeError) -> QRSegment {
        try alphanumeric(utf8: Array(text.utf8))
    }

    static func alphanumeric(utf8 text: some Collection<UInt8>) throws(QRCodeError) -> QRSegment {
        if let offset = text.firstIndex(where: { alphanumericCode[Int($0)] < 0 }).map({ text.distance(from: text.startIndex, to: $0) }) {
            throw .invalidCharacter(mode: .alphanumeric, offset: offset)
        }
        return alphanumeric(validText: text)
    }

    /// An alphanumeric segment for bytes already known to be in the alphanumeric set.
    static func alphanumeric(validText text: some Collection<UInt8>) -> QRSegment {
        var bits = BitBuffer(reservingBits: text.count * 11 / 2 + 6)
        var pending = -1
        for c in text {
            let code = Int(alphanumericCode[Int(c)])
            if pending < 0 {
                pending = code
            } else {
                bits.append(UInt64(pending * 45 + code), bits: 11)
                pending = -1
            }
        }
        if pending >= 0 { bits.append(UInt64(pending), bits: 6) }
        return QRSegment(mode: .alphanumeric, characterCount: text.count, data: bits)
    }

    /// A byte segment holding `bytes` as they are. Any bytes are allowed; decoders usually read
    /// them as UTF-8 or ISO 8859-1 unless an ECI segment says otherwise.
    public static func bytes(_ bytes: some Collection<UInt8>) -> QRSegment {
        QRSegment(mode: .byte, characterCount: bytes.count, data: BitBuffer(bytes: Array(bytes)))
    }

    /// A byte segment holding the UTF-8 encoding of `text`.
    public static func bytes(utf8 text: String) -> QRSegment {
        bytes(Array(text.utf8))
    }

    /// A kanji segment from Shift_JIS bytes, two per character. Each character must lie in
    /// 0x8140...0x9FFC or 0xE040...0xEBBF with a second byte in 0x40...0xFC other than 0x7F.
    /// Throws `invalidCharacter` (offset in bytes) otherwise, and for an odd byte count.
    public static func kanji(shiftJIS: some Collection<UInt8>) throws(QRCodeError) -> QRSegment {
        let sjis = Array(shiftJIS)
        guard sjis.count % 2 == 0 else {
            throw .invalidCharacter(mode: .kanji, offset: sjis.count - 1)
        }
        var bits = BitBuffer(reservingBits: sjis.count / 2 * 13)
        var i = 0
        while i < sjis.count {
            guard let value = kanjiValue(sjis[i], sjis[i + 1]) else {
                throw .invalidCharacter(mode: .kanji, offset: i)
            }
            bits.append(UInt64(value), bits: 13)
            i += 2
        }
        return QRSegment(mode: .kanji, characterCount: sjis.count / 2, data: bits)
    }

    /// The 13-bit kanji value of a Shift_JIS pair, or nil if the pair is outside the QR ranges.
    static func kanjiValue(_ lead: UInt8, _ trail: UInt8) -> Int? {
        guard trail >= 0x40 && trail <= 0xFC && trail != 0x7F else { return nil }
        let code = Int(lead) << 8 | Int(trail)
        let offset: Int
        switch code {
        case 0x8140...0x9FFC: offset = code - 0x8140
        case 0xE040...0xEBBF: offset = code - 0xC140
        default: return nil
        }
        return (offset >> 8) * 0xC0 + (offset & 0xFF)
    }

    /// An ECI segment with the given designator (0...999999). Values below 128 take one byte,
    /// below 16384 two bytes, and the rest three. Throws `outOfRange` otherwise.
    public static func eci(_ designator: Int) throws(QRCodeError) -> QRSegment {
        var bits = BitBuffer()
        switch designator {
        case 0..<(1 << 7):
            bits.append(UInt64(designator), bits: 8)
        case (1 << 7)..<(1 << 14):
            bits.append(0b10, bits: 2)
            bits.append(UInt64(designator), bits: 14)
        case (1 << 14)..<1_000_000:
            bits.append(0b110, bits: 3)
            bits.append(UInt64(designator), bits: 21)
        default:
            throw .outOfRange(what: "ECI designator", value: designator, allowed: 0...999_999)
        }
        return QRSegment(mode: .eci, characterCount: 0, data: bits)
    }

    /// The total length in bits of `segments` at `version` (headers included), or nil if a
    /// segment's character count does not fit its count field at that version.
    public static func totalBits(_ segments: [QRSegment], version: Int) -> Int? {
        var total = 0
        for segment in segments {
            let countBits = segment.mode.characterCountBits(version: version)
            if segment.characterCount >= 1 << countBits { return nil }
            total += 4 + countBits + segment.data.count
        }
        return total
    }
}
