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

/// Logs each request and turns every error into `application/problem+json` with a stable
/// `code`: domain errors map to the statuses of the HTTP contract, framework errors keep their
/// status, and anything else is a 500 that reveals nothing but is logged.
///
/// One middleware with a small async frame, the rest in synchronous helpers: every async frame
/// a request passes through is allocated on its connection's task, and a task keeps the memory
/// of its deepest call until it ends, which for a keep-alive connection or a waiting event
/// stream is as long as the connection lives. This and Hummingbird's `LogRequestsMiddleware` as
/// two layers held 6 KB more per connection (BENCHMARKS.md, "The round before").
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        Self.log(request, to: context.logger)
        do {
            return try await next(request, context)
        } catch {
            return Self.response(for: error, logger: context.logger)
        }
    }

    /// What Hummingbird's `LogRequestsMiddleware(.info)` logged: the method and path.
    @inline(never)
    static func log(_ request: Request, to logger: Logger) {
        guard logger.logLevel <= .info else { return }
        // The path only: queries carry ID tokens (id_token_hint), login hints and states.
        logger.info("Request", metadata: ["hb.request.path": .string(request.uri.path), "hb.request.method": .string(request.method.rawValue)])
    }

    /// The problem response for any error a handler threw.
    @inline(never)
    static func response(for error: any Error, logger: Logger) -> Response {
        problem(for: error, logger: logger).response
    }

    /// The problem answer for any error, as parts: for writers other than Hummingbird's (the
    /// event streams of ``EventStreamHandler``) and for ``response(for:logger:)``.
    static func problem(for error: any Error, logger: Logger) -> ProblemAnswer {
        switch error {
        case let error as QRLoginError:
            return problem(for: error)
        case let error as any StoreUnavailableError where error.isUnavailable:
            logger.warning("store unavailable", metadata: ["qrlogin.error": "\(error)"])
            return problem(for: .storeUnavailable)
        case let error as any HTTPResponseError:
            let status = error.status
            let code: String
            let detail: String
            switch status {
            case .contentTooLarge:
                return problem(for: .bodyTooLarge)
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
            if status.code >= 500 { logger.error("request failed", metadata: ["qrlogin.error": "\(error)"]) }
            return problem(status: status, code: code, detail: detail)
        default:
            logger.error("request failed", metadata: ["qrlogin.error": "\(String(reflecting: error))"])
            return problem(status: .internalServerError, code: "internal_error", detail: "The server failed to handle the request.")
        }
    }

    /// The HTTP status for each domain error: the one place that knows both.
    static func status(for error: QRLoginError) -> HTTPResponse.Status {
        switch error {
        case .invalidInput: .badRequest
        case .usernameTaken, .phoneTaken, .alreadyScanned, .wrongState, .superseded: .conflict
        case .invalidCredentials, .invalidCode, .tooManyAttempts, .missingCredentials, .invalidToken, .invalidProof, .replayedProof, .invalidPollSecret: .unauthorized
        case .notScanner, .invalidTicket, .wrongMatch: .forbidden
        case .notFound, .deviceNotFound, .grantNotFound: .notFound
        case .expired, .ticketExpired: .gone
        case .rateLimited: .tooManyRequests
        case .bodyTooLarge: .contentTooLarge
        case .storeUnavailable: .serviceUnavailable
        }
    }

    static func response(for error: QRLoginError) -> Response {
        problem(for: error).response
    }

    static func problem(for error: QRLoginError) -> ProblemAnswer {
        var answer = problem(status: status(for: error), code: error.code, detail: error.detail)
        switch error {
        case .rateLimited(let seconds):
            answer.headers[.retryAfter] = String(seconds)
        case .storeUnavailable:
            answer.headers[.retryAfter] = "1"
        case .missingCredentials, .invalidToken, .invalidProof, .replayedProof:
            answer.headers[.wwwAuthenticate] = #"DPoP algs="ES256", error="invalid_token""#
        default: break
        }
        return answer
    }

    static func response(status: HTTPResponse.Status, code: String, detail: String) -> Response {
        problem(status: status, code: code, detail: detail).response
    }

    static func problem(status: HTTPResponse.Status, code: String, detail: String) -> ProblemAnswer {
        let problem = Problem(type: "about:blank", title: status.reasonPhrase, status: status.code, detail: detail, code: code)
        let data = (try? JSONEncoder.qrlogin.encode(problem)) ?? Data()
        return ProblemAnswer(status: status, headers: [.contentType: "application/problem+json", .cacheControl: "no-store"], body: ByteBuffer(bytes: data))
    }
}

/// A problem answer's status, headers and `application/problem+json` body.
struct ProblemAnswer: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: ByteBuffer

    var response: Response {
        Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }
}
