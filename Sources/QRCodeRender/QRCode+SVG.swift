import QRCode

extension QRCode {
    /// An SVG image of the symbol: one `path` for all dark modules on a light background
    /// rectangle, with `shape-rendering="crispEdges"`, one user unit per module and a quiet zone
    /// of `quietZone` modules (0...64, default 4). Colours are `#rgb`, `#rrggbb`, `#rrggbbaa` or a
    /// colour name (letters only). Throws `QRRenderError` for a bad quiet zone or colour.
    public func svg(quietZone: Int = 4, dark: String = "#000000", light: String = "#ffffff") throws(QRRenderError) -> String {
        try QRRenderLimits.check(quietZone: quietZone)
        try Self.checkColor(dark)
        try Self.checkColor(light)
        let side = size + 2 * quietZone
        var path = ""
        path.reserveCapacity(size * size * 3)
        for y in 0..<size {
            var x = 0
            while x < size {
                guard self[x: x, y: y] else { x += 1; continue }
                let start = x
                while x < size && self[x: x, y: y] { x += 1 }
                // A horizontal run of dark modules as one rectangle.
                path += "M\(start + quietZone) \(y + quietZone)h\(x - start)v1h-\(x - start)z"
            }
        }
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 \(side) \(side)" \
            width="\(side * 8)" height="\(side * 8)" shape-rendering="crispEdges">
            <rect width="100%" height="100%" fill="\(light)"/>
            <path d="\(path)" fill="\(dark)"/>
            </svg>

            """
    }

    static func checkColor(_ color: String) throws(QRRenderError) {
        let bytes = Array(color.utf8)
        let isHex: (UInt8) -> Bool = { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }
        let isLetter: (UInt8) -> Bool = { $0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A }
        if bytes.first == 0x23, [4, 7, 9].contains(bytes.count), bytes.dropFirst().allSatisfy(isHex) { return }
        if !bytes.isEmpty, bytes.count <= 32, bytes.allSatisfy(isLetter) { return }
        throw .invalidColor(color)
    }
}
