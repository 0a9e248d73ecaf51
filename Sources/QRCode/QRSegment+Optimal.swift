extension QRSegment {
    /// The shortest sequence of numeric, alphanumeric and byte segments for `text` at `version`
    /// (1...40; only the count-width class matters: 1-9, 10-26, 27-40). Byte segments hold
    /// UTF-8. The result is never longer than one byte segment holding the whole text: a mixed
    /// stream is only returned when it is strictly shorter. Returns `[]` for an empty text.
    public static func segments(for text: String, version: Int = 1) -> [QRSegment] {
        let scalars = Array(text.unicodeScalars)
        if scalars.isEmpty { return [] }
        let single = bytes(utf8: text)
        let optimal = optimalSegments(scalars, version: version)
        guard let optimalBits = totalBits(optimal, version: version) else { return [single] }
        if let singleBits = totalBits([single], version: version), singleBits <= optimalBits {
            return [single]
        }
        return optimal
    }

    private enum Choice: UInt8 { case byte = 0, alphanumeric = 1, numeric = 2 }

    /// Dynamic programming over characters. Costs are in sixths of a bit so that numeric
    /// (10 bits per 3) and alphanumeric (11 bits per 2) are exact; a segment's cost is rounded up
    /// to whole bits when it ends, which matches the real bit length.
    private static func optimalSegments(_ scalars: [Unicode.Scalar], version: Int) -> [QRSegment] {
        let modes: [Mode] = [.byte, .alphanumeric, .numeric]
        let headCosts = modes.map { (4 + $0.characterCountBits(version: version)) * 6 }
        let unreachable = Int.max / 4
        // from[i * 3 + m]: the mode the segment ending in mode m before char i came from.
        var from = [UInt8](repeating: 255, count: scalars.count * 3)
        var previous = headCosts
        for (i, scalar) in scalars.enumerated() {
            let v = scalar.value
            var current = [unreachable, unreachable, unreachable]
            current[0] = previous[0] + UTF8.width(scalar) * 8 * 6
            from[i * 3 + 0] = 0
            if v < 128 && alphanumericCode[Int(v)] >= 0 {
                current[1] = previous[1] + 33
                from[i * 3 + 1] = 1
            }
            if v >= 0x30 && v <= 0x39 {
                current[2] = previous[2] + 20
                from[i * 3 + 2] = 2
            }
            // Switching: end a segment in mode k after this char, start one in mode j.
            let ended = current
            for j in 0..<3 {
                for k in 0..<3 where ended[k] < unreachable {
                    let cost = (ended[k] + 5) / 6 * 6 + headCosts[j]
                    if cost < current[j] {
                        current[j] = cost
                        from[i * 3 + j] = UInt8(k)
                    }
                }
            }
            previous = current
        }
        // Pick the cheapest final mode, then walk back to find each character's mode.
        var mode = 0
        for m in 1..<3 where previous[m] < previous[mode] { mode = m }
        var charModes = [UInt8](repeating: 0, count: scalars.count)
        for i in stride(from: scalars.count - 1, through: 0, by: -1) {
            let cameFrom = Int(from[i * 3 + mode])
            // from == mode means the char extends a segment in this mode; otherwise the
            // char belongs to mode `cameFrom` and the switch happens after it.
            mode = cameFrom
            charModes[i] = UInt8(mode)
        }
        return buildSegments(scalars, charModes)
    }

    private static func buildSegments(_ scalars: [Unicode.Scalar], _ charModes: [UInt8]) -> [QRSegment] {
        var result: [QRSegment] = []
        var start = 0
        while start < scalars.count {
            var end = start + 1
            while end < scalars.count && charModes[end] == charModes[start] { end += 1 }
            var utf8: [UInt8] = []
            for s in scalars[start..<end] { utf8.append(contentsOf: UTF8.encode(s)!) }
            switch Choice(rawValue: charModes[start])! {
            case .byte: result.append(bytes(utf8))
            // The DP only assigns these modes to characters that qualify.
            case .alphanumeric: result.append(try! alphanumeric(utf8: utf8))
            case .numeric: result.append(try! numeric(utf8: utf8))
            }
            start = end
        }
        return result
    }
}
