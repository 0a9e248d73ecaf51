/// A row or column of up to 64, 128 or 192 modules as a bit set: bit x is module x, 1 is dark.
/// The penalty scorer is generic over the width so that each symbol size runs with the fewest
/// words; `down(k)` moves module x+k to x, `up(k)` moves module x-k to x.
protocol BitLine {
    static var wordCount: Int { get }
    init(_ p: UnsafePointer<UInt64>)
    func store(_ p: UnsafeMutablePointer<UInt64>)
    static func & (a: Self, b: Self) -> Self
    static func | (a: Self, b: Self) -> Self
    static func ^ (a: Self, b: Self) -> Self
    static prefix func ~ (a: Self) -> Self
    /// Shift towards lower indices by k (1...63), filling the top with zeros.
    func down(_ k: Int) -> Self
    /// Shift towards lower indices by k (1...63), filling the top with ones (light beyond the edge).
    func downOnes(_ k: Int) -> Self
    /// Shift towards higher indices by k (1...63), filling the bottom with zeros.
    func up(_ k: Int) -> Self
    /// Shift towards higher indices by k (1...63), filling the bottom with ones.
    func upOnes(_ k: Int) -> Self
    var popcount: Int { get }
    var isZero: Bool { get }
}

struct Line64: BitLine {
    var a: UInt64
    static var wordCount: Int { 1 }
    @inline(__always) init(a: UInt64) { self.a = a }
    @inline(__always) init(_ p: UnsafePointer<UInt64>) { a = p[0] }
    @inline(__always) func store(_ p: UnsafeMutablePointer<UInt64>) { p[0] = a }
    @inline(__always) static func & (x: Self, y: Self) -> Self { Self(a: x.a & y.a) }
    @inline(__always) static func | (x: Self, y: Self) -> Self { Self(a: x.a | y.a) }
    @inline(__always) static func ^ (x: Self, y: Self) -> Self { Self(a: x.a ^ y.a) }
    @inline(__always) static prefix func ~ (x: Self) -> Self { Self(a: ~x.a) }
    @inline(__always) func down(_ k: Int) -> Self { Self(a: a &>> UInt64(k)) }
    @inline(__always) func downOnes(_ k: Int) -> Self { Self(a: a &>> UInt64(k) | ~(~0 &>> UInt64(k))) }
    @inline(__always) func up(_ k: Int) -> Self { Self(a: a &<< UInt64(k)) }
    @inline(__always) func upOnes(_ k: Int) -> Self { Self(a: a &<< UInt64(k) | ((1 &<< UInt64(k)) &- 1)) }
    @inline(__always) var popcount: Int { a.nonzeroBitCount }
    @inline(__always) var isZero: Bool { a == 0 }
}

struct Line128: BitLine {
    var a: UInt64, b: UInt64
    static var wordCount: Int { 2 }
    @inline(__always) init(a: UInt64, b: UInt64) { self.a = a; self.b = b }
    @inline(__always) init(_ p: UnsafePointer<UInt64>) { a = p[0]; b = p[1] }
    @inline(__always) func store(_ p: UnsafeMutablePointer<UInt64>) { p[0] = a; p[1] = b }
    @inline(__always) static func & (x: Self, y: Self) -> Self { Self(a: x.a & y.a, b: x.b & y.b) }
    @inline(__always) static func | (x: Self, y: Self) -> Self { Self(a: x.a | y.a, b: x.b | y.b) }
    @inline(__always) static func ^ (x: Self, y: Self) -> Self { Self(a: x.a ^ y.a, b: x.b ^ y.b) }
    @inline(__always) static prefix func ~ (x: Self) -> Self { Self(a: ~x.a, b: ~x.b) }
    @inline(__always) func down(_ k: Int) -> Self {
        let s = UInt64(k)
        return Self(a: a &>> s | b &<< (64 &- s), b: b &>> s)
    }
    @inline(__always) func downOnes(_ k: Int) -> Self {
        let s = UInt64(k)
        return Self(a: a &>> s | b &<< (64 &- s), b: b &>> s | ~(~0 &>> s))
    }
    @inline(__always) func up(_ k: Int) -> Self {
        let s = UInt64(k)
        return Self(a: a &<< s, b: b &<< s | a &>> (64 &- s))
    }
    @inline(__always) func upOnes(_ k: Int) -> Self {
        let s = UInt64(k)
        return Self(a: a &<< s | ((1 &<< s) &- 1), b: b &<< s | a &>> (64 &- s))
    }
    @inline(__always) var popcount: Int { a.nonzeroBitCount &+ b.nonzeroBitCount }
    @inline(__always) var isZero: Bool { a | b == 0 }
}

struct Line192: BitLine {
    var a: UInt64, b: UInt64, c: UInt64
    static var wordCount: Int { 3 }
    @inline(__always) init(a: UInt64, b: UInt64, c: UInt64) { self.a = a; self.b = b; self.c = c }
    @inline(__always) init(_ p: UnsafePointer<UInt64>) { a = p[0]; b = p[1]; c = p[2] }
    @inline(__always) func store(_ p: UnsafeMutablePointer<UInt64>) { p[0] = a; p[1] = b; p[2] = c }
    @inline(__always) static func & (x: Self, y: Self) -> Self { Self(a: x.a & y.a, b: x.b & y.b, c: x.c & y.c) }
    @inline(__always) static func | (x: Self, y: Self) -> Self { Self(a: x.a | y.a, b: x.b | y.b, c: x.c | y.c) }
    @inline(__always) static func ^ (x: Self, y: Self) -> Self { Self(a: x.a ^ y.a, b: x.b ^ y.b, c: x.c ^ y.c) }
    @inline(__always) static prefix func ~ (x: Self) -> Self { Self(a: ~x.a, b: ~x.b, c: ~x.c) }
    @inline(__always) func down(_ k: Int) -> Self {
        let s = UInt64(k), t = 64 &- UInt64(k)
        return Self(a: a &>> s | b &<< t, b: b &>> s | c &<< t, c: c &>> s)
    }
    @inline(__always) func downOnes(_ k: Int) -> Self {
        let s = UInt64(k), t = 64 &- UInt64(k)
        return Self(a: a &>> s | b &<< t, b: b &>> s | c &<< t, c: c &>> s | ~(~0 &>> s))
    }
    @inline(__always) func up(_ k: Int) -> Self {
        let s = UInt64(k), t = 64 &- UInt64(k)
        return Self(a: a &<< s, b: b &<< s | a &>> t, c: c &<< s | b &>> t)
    }
    @inline(__always) func upOnes(_ k: Int) -> Self {
        let s = UInt64(k), t = 64 &- UInt64(k)
        return Self(a: a &<< s | ((1 &<< s) &- 1), b: b &<< s | a &>> t, c: c &<< s | b &>> t)
    }
    @inline(__always) var popcount: Int { a.nonzeroBitCount &+ b.nonzeroBitCount &+ c.nonzeroBitCount }
    @inline(__always) var isZero: Bool { a | b | c == 0 }
}
