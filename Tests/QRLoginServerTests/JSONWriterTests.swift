import Foundation
import NIOCore
import QRLoginCore
@testable import QRLoginServer
import Testing

/// The hand-written JSON of the hot responses must be byte for byte what `JSONEncoder.qrlogin`
/// writes for the same value: key order, escapes, dates, left-out nils.
@Suite("JSONWriter")
struct JSONWriterTests {
    static let strings: [String] = [
        "", "plain", "a\"b\\c/d", "</script><script>alert(1)</script>",
        String((0..<32).map { Character(Unicode.Scalar(UInt8($0))) }) + "\u{7F}",
        "é€😀\u{2028}\u{2029}\u{FEFF}", "Office <PC> & \"quoted\" 'single'", String(repeating: "x/", count: 300),
    ]
    static let dates: [Date] = [
        Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_764_049_366.987), Date(timeIntervalSince1970: -1.5),
        Date(timeIntervalSince1970: 951_782_400), Date(timeIntervalSince1970: 253_402_300_799),
    ]

    private func expectSame(_ value: some JSONWritable, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let expected = String(decoding: try JSONEncoder.qrlogin.encode(value), as: UTF8.self)
        let written = String(buffer: value.json)
        #expect(written == expected, sourceLocation: sourceLocation)
    }

    private func request(_ text: String, _ date: Date) -> LoginRequest {
        LoginRequest(
            id: text, pollSecretHash: "hash", pcKeyThumbprint: "thumb", pcPublicKeyJWK: "{}",
            requester: RequesterContext(type: .pc, name: text, ip: text, userAgent: text), createdAt: date, expiresAt: date
        )
    }

    private func account(_ text: String, _ date: Date, phone: String?) -> Account {
        Account(id: text, username: text, passwordHash: "x", phone: phone, displayName: text, createdAt: date)
    }

    private func device(_ text: String, _ date: Date, approvedBy: String?) -> Device {
        Device(id: text, accountId: text, type: .ios, name: text, publicKeyJWK: "{}", createdAt: date, lastSeenAt: date, lastIP: text, approvedBy: approvedBy)
    }

    @Test func matchesJSONEncoderForEveryView() throws {
        for text in Self.strings {
            for date in Self.dates {
                try expectSame(CreatedLoginView(id: text, url: "https://login.example.com/q/\(text)", pollSecret: text, expiresAt: date, interval: 5))
                try expectSame(StateView(id: text, state: .confirmed))
                try expectSame(HealthView(status: text, storage: text))
                try expectSame(AccountView(account(text, date, phone: text)))
                try expectSame(AccountView(account(text, date, phone: nil)))
                try expectSame(DeviceView(device(text, date, approvedBy: text), currentId: text))
                try expectSame(DeviceView(device(text, date, approvedBy: nil), currentId: "other"))

                let token = TokenRecord(id: text, hash: "h", accountId: text, deviceId: text, deviceType: .pc, origin: .qr, approvedBy: text, createdAt: date, expiresAt: date)
                try expectSame(MeView(Identity(account: account(text, date, phone: nil), device: device(text, date, approvedBy: text), token: token)))
                var unapproved = token
                unapproved.approvedBy = nil
                try expectSame(MeView(Identity(account: account(text, date, phone: text), device: device(text, date, approvedBy: nil), token: unapproved)))

                try expectSame(ScanView(ScanResult(ticket: text, request: request(text, date)), phoneIP: text))

                for state in LoginState.allCases {
                    var view = LoginStatusView(LoginStatus(request: request(text, date), state: state, token: nil), interval: Int.max)
                    try expectSame(view)
                    view.scanner = .init(displayName: text)
                    view.match = Int.min
                    view.reason = .wrongMatch
                    view.token = .init(accessToken: text, expiresAt: date, accountId: text, deviceId: text, deviceType: .web)
                    try expectSame(view)
                }
            }
        }
    }

    @Test func writesValidJSONThatReadsBack() throws {
        for text in Self.strings {
            let view = StateView(id: text, state: .pending)
            let object = try #require(try JSONSerialization.jsonObject(with: Data(view.json.readableBytesView)) as? [String: String])
            #expect(object == ["id": text, "state": "pending"])
        }
    }
}
