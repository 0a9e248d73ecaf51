import Foundation
import HTTPTypes
import NIOCore
import Synchronization

/// Keeps every answer the HTTP tests receive through ``API`` when `QRLOGIN_RECORD_RESPONSES`
/// names a file: one JSON object per line (method, path, status, content type, body), which
/// scripts/openapi/validate_responses.py checks against the OpenAPI document's schemas.
enum ResponseRecorder {
    private static let file: Mutex<FileHandle?> = Mutex({
        guard let path = ProcessInfo.processInfo.environment["QRLOGIN_RECORD_RESPONSES"], !path.isEmpty else { return nil }
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        let handle = FileHandle(forWritingAtPath: path)
        _ = try? handle?.seekToEnd()
        return handle
    }())

    /// Records `reply` to `method path` (query included), if recording.
    static func record(_ method: HTTPRequest.Method, _ path: String, _ reply: Reply) {
        file.withLock { handle in
            guard let handle else { return }
            let contentType = reply.headers[.contentType] ?? ""
            // Text answers only: images are checked by their own tests.
            let text = contentType.hasPrefix("image/") ? nil : String(decoding: reply.body.readableBytesView.prefix(1 << 16), as: UTF8.self)
            let line: [String: Any] = [
                "method": method.rawValue, "path": path, "status": reply.status.code, "contentType": contentType, "body": text ?? NSNull(),
            ]
            guard var data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) else { return }
            data.append(0x0A)
            handle.write(data)
        }
    }
}
