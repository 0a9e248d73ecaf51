/// An error thrown by a renderer when an option is out of range. Renderers never trap.
public enum QRRenderError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The quiet zone is outside `QRRenderLimits.quietZone` (in modules).
    case invalidQuietZone(Int)
    /// The PNG scale is outside `QRRenderLimits.scale` (pixels per module).
    case invalidScale(Int)
    /// A colour is not `#rgb`, `#rrggbb`, `#rrggbbaa` or a plain colour name.
    case invalidColor(String)

    /// A sentence for people naming the option, its value and the allowed range.
    public var description: String {
        switch self {
        case let .invalidQuietZone(value):
            "quiet zone \(value) is out of range \(QRRenderLimits.quietZone.lowerBound)...\(QRRenderLimits.quietZone.upperBound) modules"
        case let .invalidScale(value):
            "scale \(value) is out of range \(QRRenderLimits.scale.lowerBound)...\(QRRenderLimits.scale.upperBound) pixels per module"
        case let .invalidColor(value):
            "colour \"\(value)\" is not #rgb, #rrggbb, #rrggbbaa or a colour name"
        }
    }
}

/// The bounds renderers accept.
public enum QRRenderLimits {
    /// Quiet zone width in modules: 0...64. The standard asks for at least 4.
    public static let quietZone: ClosedRange<Int> = 0...64
    /// PNG pixels per module: 1...64.
    public static let scale: ClosedRange<Int> = 1...64

    static func check(quietZone: Int) throws(QRRenderError) {
        guard Self.quietZone.contains(quietZone) else { throw .invalidQuietZone(quietZone) }
    }

    static func check(scale: Int) throws(QRRenderError) {
        guard Self.scale.contains(scale) else { throw .invalidScale(scale) }
    }
}
