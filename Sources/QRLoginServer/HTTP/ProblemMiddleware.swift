import Foundation
import HTTPTypes
import Hummingbird
import Logging
import QRLoginCore

/// An RFC 9457 problem document.
struct Problem: Codable, Sendable {
    var type: String
    var title: String
    var status: Int
    var detail: String
    var code: String
}

/// Turns every error into `application/problem+json` with a stable `code`: domain errors map to
/// the statuses of the HTTP contract, framework errors keep their status, and anything else is
/// a 500 that reveals nothing but is logged.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as QRLoginError {
            return Self.response(for: error)
        } catch let error as any HTTPResponseError {
            let status = error.status
            let code: String
            let detail: String
            switch status {
            case .contentTooLarge:
                return Self.response(for: .bodyTooLarge)
            case .notFound:
                code = "not_found"; detail = "No such resource."
            case .methodNotAllowed:
                code = "method_not_allowed"; detail = "This method is not allowed here."
            case .badRequest:
                code = "invalid_request"; detail = (error as? HTTPError)?.body ?? "The request is malformed."
            default:
                code = status.code >= 500 ? "internal_error" : "http_\(status.code)"
                detail = status.reasonPhrase
            }
            if status.code >= 500 { context.logger.error("request failed", metadata: ["qrlogin.error": "\(error)"]) }
            return Self.response(status: status, code: code, detail: detail)
        } catch {
            context.logger.error("request failed", metadata: ["qrlogin.error": "\(String(reflecting: error))"])
            return Self.response(status: .internalServerError, code: "internal_error", detail: "The server failed to handle the request.")
        }
    }

    /// The HTTP status for each domain error: the one place that knows both.
    static func status(for error: QRLoginError) -> HTTPResponse.Status {
        switch error {
        case .invalidInput: .badRequest
        case .usernameTaken, .phoneTaken, .alreadyScanned, .wrongState, .superseded: .conflict
        case .invalidCredentials, .invalidCode, .tooManyAttempts, .missingCredentials, .invalidToken, .invalidProof, .replayedProof, .invalidPollSecret: .unauthorized
        case .notScanner, .invalidTicket, .wrongMatch: .forbidden
        case .notFound, .deviceNotFound: .notFound
        case .expired, .ticketExpired: .gone
        case .rateLimited: .tooManyRequests
        case .bodyTooLarge: .contentTooLarge
        }
    }

    static func response(for error: QRLoginError) -> Response {
        var response = response(status: status(for: error), code: error.code, detail: error.detail)
        switch error {
        case .rateLimited(let seconds):
            response.headers[.retryAfter] = String(seconds)
        case .missingCredentials, .invalidToken, .invalidProof, .replayedProof:
            response.headers[.wwwAuthenticate] = #"DPoP algs="ES256", error="invalid_token""#
        default: break
        }
        return response
    }

    static func response(status: HTTPResponse.Status, code: String, detail: String) -> Response {
        let problem = Problem(type: "about:blank", title: status.reasonPhrase, status: status.code, detail: detail, code: code)
        let data = (try? JSONEncoder.qrlogin.encode(problem)) ?? Data()
        return Response(
            status: status,
            headers: [.contentType: "application/problem+json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }
}
