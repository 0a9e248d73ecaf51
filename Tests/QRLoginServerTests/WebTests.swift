import Foundation
import HTTPTypes
import NIOCore
import QRCode
import QRCodeRender
import QRLoginCore
import QRLoginServer
import Testing

@Suite("Web pages, assets and QR images")
struct WebTests {
    static let pages = ["/", "/q/AAAAAAAAAAAAAAAAAAAAAA", "/devices", "/device"]

    @Test("Pages carry a strict CSP, no referrer, nosniff and no-store, and the public URL", arguments: pages)
    func pageHeaders(path: String) async throws {
        try await withAPI { api, _ in
            let page = try await api.call(.get, path)
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(page.headers[.cacheControl] == "no-store")
            let csp = try #require(page.headers[.contentSecurityPolicy])
            #expect(csp.contains("script-src 'self'"))
            #expect(csp.contains("frame-ancestors 'none'"))
            #expect(csp.contains("default-src 'none'"))
            #expect(!csp.contains("unsafe-inline"))
            #expect(!csp.contains("unsafe-eval"))
            #expect(page.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
            #expect(page.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            #expect(page.text.contains(#"<meta name="qrlogin-public-url" content="\#(testBaseURL)">"#))
            #expect(!page.text.contains("{{"))
            // Scripts only as external modules.
            #expect(!page.text.contains("<script>"))
            #expect(page.text.contains(#"<script type="module" src="/assets/"#))
        }
    }

    @Test("HEAD answers like GET without the body: pages, assets and /health", arguments: pages + ["/assets/pc.js", "/health"])
    func head(path: String) async throws {
        try await withAPI { api, _ in
            let get = try await api.call(.get, path)
            let head = try await api.call(.head, path)
            #expect(head.status == .ok)
            #expect(head.body.readableBytes == 0)
            #expect(head.headers[.contentType] == get.headers[.contentType])
            #expect(head.headers[.cacheControl] == get.headers[.cacheControl])
            #expect(head.headers[.contentSecurityPolicy] == get.headers[.contentSecurityPolicy])
            #expect(head.headers[.contentLength] == String(get.body.readableBytes))
            #expect(try await api.call(.head, "/assets/nope.js").status == .notFound)
        }
    }

    @Test("Assets are served with their types; unknown names and pages under /assets are 404")
    func assets() async throws {
        try await withAPI { api, _ in
            let script = try await api.call(.get, "/assets/pc.js")
            #expect(script.status == .ok)
            #expect(script.headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(script.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            #expect(try await api.call(.get, "/assets/style.css").headers[.contentType] == "text/css; charset=utf-8")
            for missing in ["/assets/nope.js", "/assets/index.html", "/assets/..%2FPackage.swift", "/q/", "/q/a/b"] {
                #expect(try await api.call(.get, missing).status == .notFound, "\(missing)")
            }
        }
    }

    @Test("A public URL with markup is escaped in the page")
    func escapedPublicURL() async throws {
        try await withAPI(configure: { $0.publicURL = #"http://x.example/"><script>"# }) { api, _ in
            let page = try await api.call(.get, "/")
            #expect(!page.text.contains(#""><script>"#))
            #expect(page.text.contains("&quot;&gt;&lt;script&gt;"))
        }
    }

    @Test("The QR images encode the request's url, level M, quiet zone 4, and are never cached")
    func images() async throws {
        try await withAPI { api, _ in
            let login = try await api.newLogin()
            #expect(login.url == testBaseURL + "/q/" + login.id)
            let code = try QRCode.encode(text: login.url, correction: .medium)
            let svg = try await api.call(.get, "/api/v1/qr/\(login.id)/qr.svg")
            #expect(svg.status == .ok)
            #expect(svg.headers[.contentType] == "image/svg+xml")
            #expect(svg.headers[.cacheControl] == "no-store")
            #expect(svg.text == (try code.svg(quietZone: 4)))
            let png = try await api.call(.get, "/api/v1/qr/\(login.id)/qr.png")
            #expect(png.status == .ok)
            #expect(png.headers[.contentType] == "image/png")
            #expect(png.headers[.cacheControl] == "no-store")
            #expect(Array(png.body.readableBytesView) == (try code.png(scale: 8, quietZone: 4)))
        }
    }

    @Test("QR images are 404 for unknown ids", arguments: ["AAAAAAAAAAAAAAAAAAAAAA", "not*valid", String(repeating: "a", count: 100)])
    func unknownImage(id: String) async throws {
        try await withAPI { api, _ in
            for kind in ["svg", "png"] {
                let reply = try await api.call(.get, "/api/v1/qr/\(id)/qr.\(kind)")
                #expect(reply.status == .notFound)
                #expect(reply.code == "not_found")
            }
        }
    }

    @Test("QR images are 404 once the request is final: cancelled, expired, confirmed")
    func finalImage() async throws {
        try await withAPI { api, clock in
            let cancelled = try await api.newLogin()
            #expect(try await api.call(.delete, "/api/v1/qr/\(cancelled.id)", device: cancelled.device, token: cancelled.pollSecret, scheme: "Bearer").status == .ok)
            #expect(try await api.call(.get, "/api/v1/qr/\(cancelled.id)/qr.svg").status == .notFound)

            let phone = try await api.signedInPhone("erin")
            let confirmed = try await api.newLogin()
            let scan = try await api.scan(confirmed, by: phone)
            #expect(try await api.call(.get, "/api/v1/qr/\(confirmed.id)/qr.png").status == .ok, "scanned is not final")
            #expect(try await api.confirm(confirmed, by: phone, scan: scan).status == .ok)
            #expect(try await api.call(.get, "/api/v1/qr/\(confirmed.id)/qr.png").status == .notFound)

            let expiring = try await api.newLogin()
            clock.advance(by: 121)
            #expect(try await api.call(.get, "/api/v1/qr/\(expiring.id)/qr.svg").status == .notFound)
        }
    }
}
