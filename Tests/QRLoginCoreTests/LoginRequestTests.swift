import Foundation
import QRLoginCore
import Testing

/// Builds requests in each state, with fixed times: the request lives 120 s, a ticket 60 s.
private enum Scenario {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let phone = "phone-device"
    static let account = "account-1"
    static let ticket = Secrets.hash("qrl_st_ticket")
    static let pickupWindow: TimeInterval = 120

    static func pending() -> LoginRequest {
        LoginRequest(
            id: "req-1", pollSecretHash: Secrets.hash("qrl_ps_secret"), pcKeyThumbprint: "pc-key",
            pcPublicKeyJWK: "{}", requester: RequesterContext(type: .pc, name: "Office PC", ip: "192.0.2.1", userAgent: "Test"),
            createdAt: t0, expiresAt: t0.addingTimeInterval(120)
        )
    }

    static func scan(_ request: inout LoginRequest, by device: String = phone, at now: Date) throws(QRLoginError) {
        try request.scan(
            accountId: account, displayName: "Alice", deviceId: device, ticketHash: ticket,
            ticketExpiresAt: now.addingTimeInterval(60), match: 47, matchChoices: [12, 47, 83], at: now
        )
    }

    static func scanned() -> LoginRequest {
        var request = pending()
        try! scan(&request, at: t0.addingTimeInterval(10))
        return request
    }

    static func confirmed() -> LoginRequest {
        var request = scanned()
        try! request.confirm(deviceId: phone, accountId: account, ticketHash: ticket, match: 47, pickupWindow: pickupWindow, at: t0.addingTimeInterval(20))
        return request
    }
}

/// The requests a table row can start from.
enum Start: String, Sendable, CaseIterable {
    case pending, scanned, confirmed, deniedByUser, deniedByWrongMatch, cancelled
    case pendingPastDeadline, storedExpired, scannedPastTicket, confirmedPastPickup

    /// The request, and the time at which the row's action happens.
    func make() -> (LoginRequest, Date) {
        let t = Scenario.t0
        switch self {
        case .pending: return (Scenario.pending(), t.addingTimeInterval(30))
        case .scanned: return (Scenario.scanned(), t.addingTimeInterval(30))
        case .confirmed: return (Scenario.confirmed(), t.addingTimeInterval(30))
        case .deniedByUser:
            var request = Scenario.scanned()
            try! request.deny(deviceId: Scenario.phone, accountId: Scenario.account, ticketHash: Scenario.ticket, at: t.addingTimeInterval(20))
            return (request, t.addingTimeInterval(30))
        case .deniedByWrongMatch:
            var request = Scenario.scanned()
            try! request.confirm(deviceId: Scenario.phone, accountId: Scenario.account, ticketHash: Scenario.ticket, match: 12, pickupWindow: Scenario.pickupWindow, at: t.addingTimeInterval(20))
            return (request, t.addingTimeInterval(30))
        case .cancelled:
            var request = Scenario.pending()
            try! request.cancel(at: t.addingTimeInterval(20))
            return (request, t.addingTimeInterval(30))
        case .pendingPastDeadline: return (Scenario.pending(), t.addingTimeInterval(120))
        case .storedExpired:
            var request = Scenario.pending()
            request.expireIfDue(at: t.addingTimeInterval(121))
            return (request, t.addingTimeInterval(122))
        case .scannedPastTicket: return (Scenario.scanned(), t.addingTimeInterval(70))
        case .confirmedPastPickup: return (Scenario.confirmed(), t.addingTimeInterval(20 + Scenario.pickupWindow))
        }
    }
}

/// What a table row tries to do.
enum Action: String, Sendable {
    case scan, scanBySecondPhone, confirm, confirmByOtherDevice, confirmByOtherAccount, confirmWithWrongTicket
    case deny, denyByOtherDevice, denyWithWrongTicket, cancel, collect

    func apply(to request: inout LoginRequest, at now: Date) throws(QRLoginError) {
        let phone = Scenario.phone, account = Scenario.account, ticket = Scenario.ticket
        switch self {
        case .scan: try Scenario.scan(&request, at: now)
        case .scanBySecondPhone: try Scenario.scan(&request, by: "second-phone", at: now)
        case .confirm: try request.confirm(deviceId: phone, accountId: account, ticketHash: ticket, match: 47, pickupWindow: 120, at: now)
        case .confirmByOtherDevice: try request.confirm(deviceId: "other", accountId: account, ticketHash: ticket, match: 47, pickupWindow: 120, at: now)
        case .confirmByOtherAccount: try request.confirm(deviceId: phone, accountId: "account-2", ticketHash: ticket, match: 47, pickupWindow: 120, at: now)
        case .confirmWithWrongTicket: try request.confirm(deviceId: phone, accountId: account, ticketHash: Secrets.hash("qrl_st_forged"), match: 47, pickupWindow: 120, at: now)
        case .deny: try request.deny(deviceId: phone, accountId: account, ticketHash: ticket, at: now)
        case .denyByOtherDevice: try request.deny(deviceId: "other", accountId: account, ticketHash: ticket, at: now)
        case .denyWithWrongTicket: try request.deny(deviceId: phone, accountId: account, ticketHash: Secrets.hash("qrl_st_forged"), at: now)
        case .cancel: try request.cancel(at: now)
        case .collect: _ = try request.collect(tokenId: "token-new", at: now)
        }
    }
}

/// An illegal transition and the exact error it must raise.
struct IllegalTransition: Sendable, CustomTestStringConvertible {
    var start: Start
    var action: Action
    var error: QRLoginError

    var testDescription: String { "\(start.rawValue) + \(action.rawValue) → \(error.code)" }
}

private func row(_ start: Start, _ actions: [Action], _ error: QRLoginError) -> [IllegalTransition] {
    actions.map { IllegalTransition(start: start, action: $0, error: error) }
}

private let illegalTransitions: [IllegalTransition] =
    row(.pending, [.confirm, .deny, .confirmByOtherDevice], .notScanner)
    + row(.pending, [.collect], .wrongState(.pending))
    + row(.scanned, [.scan, .scanBySecondPhone], .alreadyScanned)
    + row(.scanned, [.confirmByOtherDevice, .confirmByOtherAccount, .denyByOtherDevice], .notScanner)
    + row(.scanned, [.confirmWithWrongTicket, .denyWithWrongTicket], .invalidTicket)
    + row(.scanned, [.collect], .wrongState(.scanned))
    + row(.confirmed, [.scan, .confirm, .deny, .cancel, .confirmWithWrongTicket], .wrongState(.confirmed))
    + row(.deniedByUser, [.scan, .confirm, .deny, .cancel, .collect], .wrongState(.denied))
    + row(.deniedByWrongMatch, [.scan, .confirm, .deny, .cancel, .collect], .wrongState(.denied))
    + row(.cancelled, [.scan, .confirm, .deny, .cancel, .collect], .wrongState(.cancelled))
    + row(.pendingPastDeadline, [.scan, .confirm, .deny, .cancel, .collect], .expired)
    + row(.storedExpired, [.scan, .confirm, .deny, .cancel, .collect], .expired)
    + row(.scannedPastTicket, [.confirm, .deny], .ticketExpired)
    + row(.scannedPastTicket, [.scan, .cancel], .expired)
    + row(.confirmedPastPickup, [.collect], .expired)

@Suite("LoginRequest state machine")
struct LoginRequestTests {
    private let t0 = Scenario.t0

    @Test func newRequestIsPending() {
        let request = Scenario.pending()
        #expect(request.state == .pending)
        #expect(request.version == 0)
        #expect(request.effectiveState(at: t0) == .pending)
        #expect(request.deadline == t0.addingTimeInterval(120))
    }

    @Test func scanBindsTheAccount() throws {
        var request = Scenario.pending()
        try Scenario.scan(&request, at: t0.addingTimeInterval(10))
        #expect(request.state == .scanned)
        #expect(request.accountId == Scenario.account)
        #expect(request.scannerDisplayName == "Alice")
        #expect(request.scannerDeviceId == Scenario.phone)
        #expect(request.ticketHash == Scenario.ticket)
        #expect(request.ticketExpiresAt == t0.addingTimeInterval(70))
        #expect(request.match == 47)
        #expect(request.matchChoices == [12, 47, 83])
        #expect(request.version == 1)
    }

    @Test func confirmWithTheRightMatch() throws {
        var request = Scenario.scanned()
        let now = t0.addingTimeInterval(50)
        try request.confirm(deviceId: Scenario.phone, accountId: Scenario.account, ticketHash: Scenario.ticket, match: 47, pickupWindow: 120, at: now)
        #expect(request.state == .confirmed)
        #expect(request.ticketHash == nil)
        #expect(request.denyReason == nil)
        #expect(request.version == 2)
        // The pickup window runs from the confirm, beyond the request's original lifetime.
        #expect(request.expiresAt == now.addingTimeInterval(120))
        #expect(request.effectiveState(at: now.addingTimeInterval(119)) == .confirmed)
    }

    @Test func denyByUser() throws {
        var request = Scenario.scanned()
        try request.deny(deviceId: Scenario.phone, accountId: Scenario.account, ticketHash: Scenario.ticket, at: t0.addingTimeInterval(20))
        #expect(request.state == .denied)
        #expect(request.denyReason == .user)
        #expect(request.ticketHash == nil)
        #expect(request.version == 2)
    }

    @Test(arguments: [12, 83, 0, 99])
    func wrongMatchDenies(pick: Int) throws {
        var request = Scenario.scanned()
        try request.confirm(deviceId: Scenario.phone, accountId: Scenario.account, ticketHash: Scenario.ticket, match: pick, pickupWindow: 120, at: t0.addingTimeInterval(20))
        #expect(request.state == .denied)
        #expect(request.denyReason == .wrongMatch)
        #expect(request.ticketHash == nil)
    }

    @Test(arguments: [Start.pending, .scanned])
    func cancelBeforeTheEnd(start: Start) throws {
        let (started, now) = start.make()
        var request = started
        try request.cancel(at: now)
        #expect(request.state == .cancelled)
        #expect(request.ticketHash == nil)
    }

    @Test func pendingExpiresAtItsDeadline() {
        var request = Scenario.pending()
        let deadline = t0.addingTimeInterval(120)
        #expect(request.effectiveState(at: deadline.addingTimeInterval(-0.001)) == .pending)
        #expect(request.effectiveState(at: deadline) == .expired)
        let changed1 = request.expireIfDue(at: deadline.addingTimeInterval(-1))
        #expect(!changed1)
        #expect(request.state == .pending)
        let changed2 = request.expireIfDue(at: deadline)
        #expect(changed2)
        #expect(request.state == .expired)
        #expect(request.version == 1)
        let changed3 = request.expireIfDue(at: deadline.addingTimeInterval(1))
        #expect(!changed3)
    }

    @Test func ticketExpiryCutsAScannedRequestShort() {
        var request = Scenario.scanned()
        let ticketEnd = t0.addingTimeInterval(70)
        #expect(request.deadline == ticketEnd)
        #expect(request.effectiveState(at: ticketEnd.addingTimeInterval(-1)) == .scanned)
        #expect(request.effectiveState(at: ticketEnd) == .expired)
        let changed4 = request.expireIfDue(at: ticketEnd)
        #expect(changed4)
        #expect(request.state == .expired)
        #expect(request.ticketHash == nil)
    }

    @Test func requestLifetimeCutsALateTicketShort() throws {
        var request = Scenario.pending()
        try Scenario.scan(&request, at: t0.addingTimeInterval(100))
        #expect(request.deadline == t0.addingTimeInterval(120))
        #expect(request.effectiveState(at: t0.addingTimeInterval(120)) == .expired)
    }

    @Test func finalStatesDoNotExpire() {
        let (request, _) = Start.confirmed.make()
        #expect(request.effectiveState(at: t0.addingTimeInterval(10_000)) == .confirmed)
        var cancelled = Start.cancelled.make().0
        let changed = cancelled.expireIfDue(at: t0.addingTimeInterval(10_000))
        #expect(!changed)
        #expect(cancelled.state == .cancelled)
    }

    @Test func collectReturnsThePreviousToken() throws {
        var request = Scenario.confirmed()
        let now = t0.addingTimeInterval(30)
        let first = try request.collect(tokenId: "token-1", at: now)
        #expect(first == nil)
        #expect(request.tokenId == "token-1")
        let second = try request.collect(tokenId: "token-2", at: now.addingTimeInterval(1))
        #expect(second == "token-1")
        #expect(request.tokenId == "token-2")
        #expect(request.state == .confirmed)
        #expect(request.version == 4)
    }

    @Test(arguments: illegalTransitions)
    func illegalTransitionIsRejected(transition: IllegalTransition) {
        let (before, now) = transition.start.make()
        var request = before
        #expect(throws: transition.error) { try transition.action.apply(to: &request, at: now) }
        #expect(request == before, "a rejected transition changes nothing")
    }

    @Test func everyActionIsCoveredFromEveryFinalState() {
        let finals: [Start] = [.confirmed, .deniedByUser, .deniedByWrongMatch, .cancelled, .storedExpired]
        for start in finals {
            let actions = Set(illegalTransitions.filter { $0.start == start }.map(\.action.rawValue))
            #expect(actions.isSuperset(of: ["scan", "confirm", "deny", "cancel"]), "\(start.rawValue)")
        }
    }
}
