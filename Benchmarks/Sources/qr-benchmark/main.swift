import CQREncode
import QRCode

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Encodes per second for our encoder and libqrencode (QRcode_encodeString8bit, level M,
// automatic version and mask), measured in the same run in alternating rounds; the best
// round of each counts. `--quick` runs short rounds for a smoke test.
// Separate functions per payload keep the two payloads apart in a callgrind profile.

let quick = CommandLine.arguments.contains("--quick")
let rounds = quick ? 2 : 7
let roundSeconds = quick ? 0.1 : 0.5

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Runs `body` repeatedly for about `roundSeconds` and returns calls per second.
func rate(_ body: () -> Int) -> Double {
    var sink = 0
    var calls = 0
    var batch = 1
    let start = now()
    var elapsed = 0.0
    while elapsed < roundSeconds {
        for _ in 0..<batch { sink &+= body() }
        calls += batch
        elapsed = now() - start
        if elapsed < roundSeconds / 10 { batch *= 2 }
    }
    if sink == 42 { print("") }  // keep the work observable
    return Double(calls) / elapsed
}

struct Deterministic: RandomNumberGenerator {
    var state: UInt64 = 0x5EED
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

var random = Deterministic()
let base64url = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
let token = String((0..<32).map { _ in base64url[Int(random.next() % 64)] })
let loginURL = "https://login.example.com/q/" + token
let lowercase = Array("abcdefghijklmnopqrstuvwxyz")
let large = String((0..<2300).map { _ in lowercase[Int(random.next() % 26)] })

func ours(_ text: String) -> Int {
    do {
        let code = try QRCode.encode(text: text, correction: .medium)
        return code.mask.number &+ code.size
    } catch {
        fatalError("encode failed: \(error)")
    }
}

func theirs(_ text: String) -> Int {
    guard let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M) else { fatalError("libqrencode failed") }
    let width = Int(code.pointee.width)
    QRcode_free(code)
    return width
}

var machine = "unknown"
if let info = fopen("/proc/cpuinfo", "r") {
    var line = [CChar](repeating: 0, count: 512)
    while fgets(&line, 512, info) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("model name") {
            machine = String(text.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters()
            break
        }
    }
    fclose(info)
}

extension String {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == "\n" || $0 == " " }.reversed())
    }
}

// `--calls N [login|large]`: exactly N encodes of each (or one) payload by each encoder and no
// timing, for counting instructions with `valgrind --tool=callgrind` (unaffected by other load
// on the machine).
if let index = CommandLine.arguments.firstIndex(of: "--calls"), index + 1 < CommandLine.arguments.count,
   let calls = Int(CommandLine.arguments[index + 1]) {
    var sink = 0
    var texts = [loginURL, large]
    if CommandLine.arguments.contains("login") { texts = [loginURL] }
    if CommandLine.arguments.contains("large") { texts = [large] }
    for text in texts {
        for _ in 0..<calls { sink &+= ours(text) }
        for _ in 0..<calls { sink &+= theirs(text) }
    }
    print("done \(sink)")
    exit(0)
}

print("QR encoder benchmark (release build; best of \(rounds) rounds of \(roundSeconds) s)")
print("CPU: \(machine); libqrencode \(String(cString: QRcode_APIVersionString()))")
var allMeetTarget = true
for (name, text) in [("login URL, \(loginURL.utf8.count) bytes", loginURL), ("\(large.utf8.count) bytes", large)] {
    let code = try QRCode.encode(text: text, correction: .medium)
    let reference = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M)!
    let theirVersion = Int(reference.pointee.version)
    QRcode_free(reference)
    var bestOurs = 0.0, bestTheirs = 0.0
    for _ in 0..<rounds {
        bestOurs = max(bestOurs, rate { ours(text) })
        bestTheirs = max(bestTheirs, rate { theirs(text) })
    }
    let ratio = bestOurs / bestTheirs
    if ratio < 1.0 { allMeetTarget = false }
    print("\(name): version \(code.version) (libqrencode \(theirVersion)), level M, mask \(code.mask) (automatic)")
    print("  ours        \(Int(bestOurs.rounded())) encodes/s")
    print("  libqrencode \(Int(bestTheirs.rounded())) encodes/s")
    print("  ratio       \((ratio * 100).rounded() / 100)")
}
print(allMeetTarget ? "target ratio >= 1.0 met" : "target ratio >= 1.0 NOT met")
