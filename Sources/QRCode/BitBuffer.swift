/// An append-only sequence of bits, packed most significant bit first into bytes.
struct BitBuffer: Sendable, Hashable {
    private(set) var bytes: [UInt8] = []
    private(set) var count: Int = 0

    init() {}

    init(reservingBits bits: Int) {
        bytes.reserveCapacity((bits + 7) / 8)
    }

    /// A buffer holding whole bytes.
    init(bytes: [UInt8]) {
        self.bytes = bytes
        count = bytes.count * 8
    }

    /// Appends the low `length` bits of `value`, most significant first. `length` is 0...57.
    mutating func append(_ value: UInt64, bits length: Int) {
        precondition(length >= 0 && length <= 57 && value >> UInt64(length) == 0)
        var remaining = length
        while remaining > 0 {
            let used = count & 7
            if used == 0 { bytes.append(0) }
            let room = 8 - used
            let take = Swift.min(room, remaining)
            let chunk = UInt8(truncatingIfNeeded: value >> UInt64(remaining - take)) & UInt8((1 << take) - 1)
            bytes[bytes.count - 1] |= chunk << UInt8(room - take)
            remaining -= take
            count += take
        }
    }

    /// Appends all bits of another buffer.
    mutating func append(contentsOf other: BitBuffer) {
        let full = other.count / 8
        if count & 7 == 0 {
            bytes.append(contentsOf: other.bytes[0..<full])
            count += full * 8
        } else {
            // Each whole byte straddles two of ours: its top part fills our last byte.
            let used = UInt8(count & 7)
            bytes.reserveCapacity(bytes.count + full + 1)
            for i in 0..<full {
                let b = other.bytes[i]
                bytes[bytes.count - 1] |= b >> used
                bytes.append(b << (8 - used))
            }
            count += full * 8
        }
        let rest = other.count & 7
        if rest > 0 { append(UInt64(other.bytes[full] >> UInt8(8 - rest)), bits: rest) }
    }

    /// The bit at `index` (0 is the first appended).
    func bit(at index: Int) -> Bool {
        (bytes[index >> 3] >> UInt8(7 - (index & 7))) & 1 == 1
    }
}
