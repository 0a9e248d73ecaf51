import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import QRLoginCore
import QRLoginServer
import Testing

/// Prometheus text as samples: `name{label="value",…} number` lines.
struct Exposition {
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    let samples: [Sample]
    let text: String

    init(_ text: String) {
        self.text = text
        samples = text.split(separator: "\n").compactMap { line -> Sample? in
            guard !line.hasPrefix("#"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let series = line[..<space]
            guard let open = series.firstIndex(of: "{") else { return Sample(name: String(series), labels: [:], value: value) }
            var labels: [String: String] = [:]
            // Values here never hold a quote or a comma (routes, states, reasons).
            for pair in series[series.index(after: open)..<series.index(before: series.endIndex)].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
            }
            return Sample(name: String(series[..<open]), labels: labels, value: value)
        }
    }

    /// The value of the series `name` with (at least) `labels`; nil if there is none.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }?.value
    }
}

@Suite("Metrics: GET /metrics on a listener of its own", .serialized)
struct MetricsTests {
    private func scrape(_ port: Int) async throws -> (HTTPClientResponse, Exposition) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 22)
        return (response, Exposition(String(buffer: body)))
    }

    @Test("A login's life is counted: created, waiting, confirmed with its time, ended; requests by route and status; store calls; refusals")
    func countsTheFlow() async throws {
        let metricsPort = Int.random(in: 20_000...32_000)
        let metrics = ServerMetrics()
        let server = try await LiveServer.start(metrics: metrics) { config in
            config.metricsPort = metricsPort
            config.rateLimits = [.register: 2]
        }
        let (head, before) = try await scrape(metricsPort)
        #expect(head.status == .ok)
        #expect(head.headers["Content-Type"].first == ServerMetrics.contentType)
        #expect(before.value("qrlogin_login_requests_created_total", ["kind": "qr"]) == 0, "series a dashboard sums exist from the start")
        #expect(before.value("qrlogin_login_requests_ended_total", ["state": "expired"]) == 0)

        let phone = try await server.signedInPhone("alice")
        // A confirmed login, its PC waiting on an event stream on a connection of its own.
        let login = try await server.newLogin()
        let stream = try await server.openStream(login, on: .own)
        var events = EventReader(stream)
        #expect(try await events.next()?.name == "pending")
        #expect(try await scrape(metricsPort).1.value("qrlogin_waiting_pcs", ["transport": "sse"]) == 1)
        server.clock.advance(by: 7)
        let scan = try await server.json(try await server.call(.POST, "/api/v1/qr/\(login.id)/scan", device: phone, token: phone.token))
        let match = try #require(try await events.next()?.data["match"] as? Int)
        let confirm = try await server.call(.POST, "/api/v1/qr/\(login.id)/confirm", json: ["ticket": scan["ticket"] as? String ?? "", "match": match], device: phone, token: phone.token)
        #expect(confirm.status == .ok)
        #expect(try await events.next()?.name == "confirmed")
        // A denied one and a cancelled one.
        let denied = try await server.newLogin()
        let deniedScan = try await server.json(try await server.call(.POST, "/api/v1/qr/\(denied.id)/scan", device: phone, token: phone.token))
        #expect(try await server.call(.POST, "/api/v1/qr/\(denied.id)/deny", json: ["ticket": deniedScan["ticket"] as? String ?? ""], device: phone, token: phone.token).status == .ok)
        let cancelled = try await server.newLogin()
        #expect(try await server.call(.DELETE, "/api/v1/qr/\(cancelled.id)", device: cancelled.device, token: cancelled.pollSecret, scheme: "Bearer").status == .ok)
        // Refusals: a replayed proof, a malformed one, and a rate limit (2 registrations a minute).
        let proof = try phone.signer.proof(method: "GET", url: testBaseURL + "/api/v1/me", accessToken: phone.token, issuedAt: server.clock.now)
        for _ in 0..<2 {
            _ = try await server.call(.GET, "/api/v1/me", token: phone.token, headers: [("DPoP", proof)])
        }
        #expect(try await server.call(.GET, "/api/v1/me", token: phone.token, headers: [("DPoP", "not.a.proof")]).status == .unauthorized)
        _ = try await server.signedInPhone("bob")
        let third = try await server.call(.POST, "/api/v1/accounts", json: ["username": "carol", "password": "correct horse battery"])
        #expect(third.status == .tooManyRequests)

        let (_, after) = try await scrape(metricsPort)
        #expect(after.value("qrlogin_login_requests_created_total", ["kind": "qr"]) == 3)
        #expect(after.value("qrlogin_login_requests_created_total", ["kind": "device_grant"]) == 0)
        #expect(after.value("qrlogin_login_requests_ended_total", ["state": "confirmed"]) == 1)
        #expect(after.value("qrlogin_login_requests_ended_total", ["state": "denied"]) == 1)
        #expect(after.value("qrlogin_login_requests_ended_total", ["state": "cancelled"]) == 1)
        #expect(after.value("qrlogin_login_confirm_seconds_count") == 1)
        #expect(after.value("qrlogin_login_confirm_seconds_bucket", ["le": "5.0"]) == 0, "confirmed 7 s after it was created")
        #expect(after.value("qrlogin_login_confirm_seconds_bucket", ["le": "8.0"]) == 1)
        #expect(after.value("qrlogin_waiting_pcs", ["transport": "sse"]) == 0, "the stream ended with the token")
        #expect(after.value("qrlogin_http_requests_total", ["method": "POST", "route": "/api/v1/qr/{id}/scan", "status": "200"]) == 2)
        #expect(after.value("qrlogin_http_requests_total", ["method": "POST", "route": "/api/v1/qr", "status": "201"]) == 3)
        #expect(after.value("qrlogin_http_requests_total", ["method": "POST", "route": "/api/v1/accounts", "status": "429"]) == 1)
        #expect(after.value("qrlogin_http_requests_total", ["method": "GET", "route": "/api/v1/qr/{id}", "status": "200"]) == 1, "the stream served off the router")
        #expect(after.value("qrlogin_http_requests_total", ["method": "GET", "route": "/api/v1/me", "status": "401"]) == 2)
        #expect((after.value("qrlogin_http_request_duration_seconds_count", ["method": "POST", "route": "/api/v1/qr/{id}/scan"]) ?? 0) == 2)
        #expect(after.value("qrlogin_dpop_proofs_refused_total", ["reason": "replayed"]) == 1)
        #expect(after.value("qrlogin_dpop_proofs_refused_total", ["reason": "malformed"]) == 1)
        #expect(after.value("qrlogin_rate_limited_total", ["route": "register"]) == 1)
        #expect((after.value("qrlogin_store_call_duration_seconds_count", ["operation": "insertLoginRequest"]) ?? 0) == 3)
        #expect((after.value("qrlogin_store_call_duration_seconds_count", ["operation": "transitionLoginRequest"]) ?? 0) >= 4)
        // No request id, token or other secret becomes a label.
        #expect(!after.text.contains(login.id) && !after.text.contains("qrl_"))

        // The Grafana dashboard in docs/ charts only series the server exports.
        let dashboard = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/grafana/qrlogin-dashboard.json")
        let panels = try String(contentsOf: dashboard, encoding: .utf8)
        let charted = Set(panels.matches(of: /qrlogin_[a-z_]+/).map { String($0.output) })
        #expect(charted.count >= 8, "\(charted)")
        let exported = Set(after.text.split(separator: "\n").compactMap { line -> String? in
            line.hasPrefix("# TYPE ") ? line.split(separator: " ").dropFirst(2).first.map(String.init) : nil
        })
        for name in charted {
            let base = name.replacing(/_(bucket|count|sum)$/, with: "")
            #expect(exported.contains(base), "the dashboard charts \(name), which the server does not export")
        }

        // The public port does not serve them.
        #expect(try await server.call(.GET, "/metrics").status == .notFound)
        try await server.stop()
    }

    @Test("A long-polling PC is counted while it waits")
    func longPollGauge() async throws {
        let metricsPort = Int.random(in: 20_000...32_000)
        let server = try await LiveServer.start(metrics: ServerMetrics()) { $0.metricsPort = metricsPort }
        let login = try await server.newLogin()
        let poll = Task {
            try await server.call(.GET, "/api/v1/qr/\(login.id)?wait=5&state=pending", device: login.device, token: login.pollSecret, scheme: "Bearer")
        }
        var seen: Double?
        for _ in 0..<50 {
            seen = try await scrape(metricsPort).1.value("qrlogin_waiting_pcs", ["transport": "long_poll"])
            if seen == 1 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(seen == 1)
        #expect(try await server.call(.DELETE, "/api/v1/qr/\(login.id)", device: login.device, token: login.pollSecret, scheme: "Bearer").status == .ok)
        _ = try await poll.value
        #expect(try await scrape(metricsPort).1.value("qrlogin_waiting_pcs", ["transport": "long_poll"]) == 0)
        try await server.stop()
    }

    @Test("A request nobody answers is counted as expired once, soon after its deadline")
    func expiriesAreCounted() async throws {
        let metricsPort = Int.random(in: 20_000...32_000)
        let server = try await LiveServer.start(metrics: ServerMetrics()) { config in
            config.metricsPort = metricsPort
            config.expiryInterval = 0.05
        }
        for _ in 0..<3 { _ = try await server.newLogin() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await scrape(metricsPort).1.value("qrlogin_login_requests_ended_total", ["state": "expired"]) == 0)
        server.clock.advance(by: 121)
        var expired: Double?
        for _ in 0..<100 {
            expired = try await scrape(metricsPort).1.value("qrlogin_login_requests_ended_total", ["state": "expired"])
            if expired == 3 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(expired == 3)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await scrape(metricsPort).1.value("qrlogin_login_requests_ended_total", ["state": "expired"]) == 3, "counted once")
        try await server.stop()
    }

    @Test("No metrics port: nothing is collected and nothing listens")
    func offByDefault() throws {
        let config = try ServerConfiguration.resolve(options: ServeOptions(), environment: [:])
        #expect(config.metricsPort == nil)
        #expect(config.metricsHost == "127.0.0.1")
        #expect(throws: ServerConfigurationError.self) {
            try ServerConfiguration.resolve(options: ServeOptions(port: 9000, metricsPort: 9000), environment: [:])
        }
    }
}
