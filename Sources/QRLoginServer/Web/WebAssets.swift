import Foundation

/// The pages, styles and scripts of the web UI, read once from the package resources at
/// startup and served from memory. Only files in this table are ever served, so no request
/// path reaches the file system.
struct WebAssets: Sendable {
    /// One file: its bytes and content type.
    struct File: Sendable {
        var bytes: [UInt8]
        var contentType: String
    }

    /// Files by name, e.g. `pc.js`.
    let files: [String: File]
    /// The OpenAPI document of the whole HTTP API (`Resources/openapi.json`), served at
    /// `/openapi.json`.
    let openAPI: [UInt8]

    /// Reads every file of `Resources/web` in the module's bundle.
    /// - Throws: when the resource folder cannot be listed or a file cannot be read.
    static func load() throws -> WebAssets {
        // The copied `Resources` folder sits in the bundle; Foundation on Linux reports that
        // folder itself as the bundle's resource URL, on Apple platforms its parent.
        let candidates = [Bundle.module.resourceURL, Bundle.module.bundleURL].compactMap { $0 }.flatMap {
            [$0.appendingPathComponent("Resources/web", isDirectory: true), $0.appendingPathComponent("web", isDirectory: true)]
        }
        guard let root = candidates.first(where: { FileManager.default.fileExists(atPath: $0.appendingPathComponent("index.html").path) }) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: candidates.map(\.path).joined(separator: ", ")])
        }
        var files: [String: File] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: root.path) {
            guard let type = contentType(of: name) else { continue }
            let data = try Data(contentsOf: root.appendingPathComponent(name))
            files[name] = File(bytes: Array(data), contentType: type)
        }
        let openAPI = try Data(contentsOf: root.deletingLastPathComponent().appendingPathComponent("openapi.json"))
        return WebAssets(files: files, openAPI: Array(openAPI))
    }

    /// The content type for the file kinds the UI uses; nil for anything else (not served).
    static func contentType(of name: String) -> String? {
        switch name.split(separator: ".").last {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        default: nil
        }
    }

    /// Page `name` with the public base URL filled in (HTML-escaped), so the page's scripts sign
    /// their DPoP proofs for the URL the server checks rather than the browser's idea of it.
    func page(_ name: String, publicBaseURL: String, values: [String: String] = [:]) -> [UInt8]? {
        guard let file = files[name] else { return nil }
        var html = String(decoding: file.bytes, as: UTF8.self).replacingOccurrences(of: "{{publicBaseURL}}", with: Self.escapeHTML(publicBaseURL))
        // Placeholders a page has but this answer does not fill stay empty.
        for placeholder in Self.placeholders {
            html = html.replacingOccurrences(of: "{{\(placeholder)}}", with: Self.escapeHTML(values[placeholder] ?? ""))
        }
        return Array(html.utf8)
    }

    /// The placeholders pages may carry besides `publicBaseURL`: the OpenID Connect login
    /// screen's authorization request, CSRF token and app name.
    static let placeholders = ["authorizeQuery", "csrf", "clientName"]

    /// Escapes text for an HTML attribute value or element content.
    static func escapeHTML(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
