/// An error thrown by the QR code encoder. The encoder never traps on bad input: every
/// failure the caller can cause is reported as one of these cases.
public enum QRCodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The data does not fit in the largest allowed version at the requested correction level.
    /// `dataBits` is the length of the segment bit stream at that version (`nil` when a segment's
    /// character count does not even fit its count field), `capacityBits` the room available.
    case dataTooLong(dataBits: Int?, capacityBits: Int, version: Int)
    /// No data was given: the text, bytes or segment list was empty.
    case emptyInput
    /// A character cannot be encoded in the requested segment mode.
    case invalidCharacter(mode: QRSegment.Mode, offset: Int)
    /// A number is outside its allowed range (version, mask, ECI designator, version bounds).
    case outOfRange(what: String, value: Int, allowed: ClosedRange<Int>)
    /// `minVersion` is greater than `maxVersion`.
    case invalidVersionRange(min: Int, max: Int)

    /// A sentence for people: what is wrong, with the numbers involved.
    public var description: String {
        switch self {
        case let .dataTooLong(dataBits?, capacityBits, version):
            return "data too long: \(dataBits) data bits, but version \(version) holds at most \(capacityBits) bits at this correction level"
        case let .dataTooLong(nil, capacityBits, version):
            return "data too long: a segment's character count exceeds its count field at version \(version) (capacity \(capacityBits) bits)"
        case .emptyInput:
            return "empty input: there is no data to encode"
        case let .invalidCharacter(mode, offset):
            return "character at offset \(offset) cannot be encoded in \(mode) mode"
        case let .outOfRange(what, value, allowed):
            return "\(what) \(value) is out of range \(allowed.lowerBound)...\(allowed.upperBound)"
        case let .invalidVersionRange(min, max):
            return "minimum version \(min) is greater than maximum version \(max)"
        }
    }
}
