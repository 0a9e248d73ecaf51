import QRCode

extension QRCode {
    /// The symbol as text, one row per line, `1` for dark and `0` for light, each line ending in
    /// a newline. `quietZone` (0...64, default 0) adds light modules around. Throws
    /// `QRRenderError.invalidQuietZone` when out of range.
    public func plainText(quietZone: Int = 0) throws(QRRenderError) -> String {
        try QRRenderLimits.check(quietZone: quietZone)
        var out = ""
        let range = -quietZone..<(size + quietZone)
        out.reserveCapacity(range.count * (range.count + 1))
        for y in range {
            for x in range { out.append(self[x: x, y: y] ? "1" : "0") }
            out.append("\n")
        }
        return out
    }

    /// The symbol for a terminal: UTF-8 half blocks, two module rows per line, with a quiet zone
    /// of `quietZone` modules (0...64, default 4).
    ///
    /// With `ansiColors` (the default) every line sets a black background and a bright white
    /// foreground and resets at its end, and the light modules are drawn, so the code reads the
    /// same on dark and light terminals (as `qrencode -t ANSIUTF8` does). Without colours the
    /// dark modules are drawn, which suits a light terminal. Throws
    /// `QRRenderError.invalidQuietZone` when out of range.
    public func terminalText(quietZone: Int = 4, ansiColors: Bool = true) throws(QRRenderError) -> String {
        try QRRenderLimits.check(quietZone: quietZone)
        let range = -quietZone..<(size + quietZone)
        var out = ""
        var y = range.lowerBound
        while y < range.upperBound {
            if ansiColors { out += "\u{1B}[40;97m" }
            for x in range {
                // Row y + 1 beyond the quiet zone (odd heights) is light like the quiet zone.
                var top = self[x: x, y: y]
                var bottom = y + 1 < range.upperBound ? self[x: x, y: y + 1] : false
                if ansiColors {
                    top.toggle()
                    bottom.toggle()
                }
                switch (top, bottom) {
                case (true, true): out += "\u{2588}"
                case (true, false): out += "\u{2580}"
                case (false, true): out += "\u{2584}"
                case (false, false): out += " "
                }
            }
            if ansiColors { out += "\u{1B}[0m" }
            out += "\n"
            y += 2
        }
        return out
    }
}
