extension QRCode {
    /// A QR code version (symbol size), range-checked to 1...40. A symbol of version `v` is
    /// `4 * v + 17` modules wide.
    public struct Version: Sendable, Hashable, Comparable, CustomStringConvertible {
        /// The smallest version, 1 (21 × 21 modules).
        public static let min = Version(unchecked: 1)
        /// The largest version, 40 (177 × 177 modules).
        public static let max = Version(unchecked: 40)

        /// The version number, in 1...40.
        public let number: Int

        /// Creates a version. Throws `QRCodeError.outOfRange` unless `number` is in 1...40.
        public init(_ number: Int) throws(QRCodeError) {
            guard (1...40).contains(number) else {
                throw .outOfRange(what: "version", value: number, allowed: 1...40)
            }
            self.number = number
        }

        init(unchecked number: Int) { self.number = number }

        /// The side of the symbol in modules, `4 * number + 17` (21...177).
        public var size: Int { number * 4 + 17 }

        /// Orders versions by number.
        public static func < (a: Version, b: Version) -> Bool { a.number < b.number }
        /// The version number in decimal.
        public var description: String { String(number) }
    }

    /// One of the 8 data mask patterns, range-checked to 0...7.
    public struct Mask: Sendable, Hashable, CustomStringConvertible {
        /// The mask number, in 0...7.
        public let number: Int

        /// Creates a mask. Throws `QRCodeError.outOfRange` unless `number` is in 0...7.
        public init(_ number: Int) throws(QRCodeError) {
            guard (0...7).contains(number) else {
                throw .outOfRange(what: "mask", value: number, allowed: 0...7)
            }
            self.number = number
        }

        init(unchecked number: Int) { self.number = number }

        /// All 8 masks, in order.
        public static let all: [Mask] = (0..<8).map { Mask(unchecked: $0) }
        /// The mask number in decimal.
        public var description: String { String(number) }
    }

    /// The error correction level: the share of codewords that can be restored.
    public enum ErrorCorrection: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// About 7% of codewords can be restored.
        case low = 0
        /// About 15% of codewords can be restored.
        case medium = 1
        /// About 25% of codewords can be restored.
        case quartile = 2
        /// About 30% of codewords can be restored.
        case high = 3

        /// The 2-bit value in the format information (L = 01, M = 00, Q = 11, H = 10).
        var formatBits: Int {
            switch self {
            case .low: 1
            case .medium: 0
            case .quartile: 3
            case .high: 2
            }
        }

        /// The level's letter: L, M, Q or H.
        public var description: String {
            switch self {
            case .low: "L"
            case .medium: "M"
            case .quartile: "Q"
            case .high: "H"
            }
        }
    }
}
