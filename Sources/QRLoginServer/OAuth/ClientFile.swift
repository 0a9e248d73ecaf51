import Foundation
import QRLoginCore
import QRLoginOAuth

/// Loads a JSON file of clients (``ClientFileDocument``) into the store at start: each client
/// is registered, or replaces the stored client with its id. Every client is checked before any
/// is written, so a bad file changes nothing.
enum ClientFile {
    /// Reads `path` and registers its clients. Returns how many.
    /// - Throws: ``ClientFileError`` naming the file and what is wrong with it.
    static func load(path: String, into store: any Store, clock: any NowClock) async throws -> Int {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ClientFileError(message: "cannot read the client file \(path): \(error.localizedDescription)")
        }
        let document: ClientFileDocument
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            document = try decoder.decode(ClientFileDocument.self, from: data)
        } catch {
            throw ClientFileError(message: "the client file \(path) is not a JSON object {\"clients\": [...]} of clients: \(error)")
        }
        var clients: [OAuthClient] = []
        for entry in document.clients {
            let client: OAuthClient
            do {
                client = try entry.client(createdAt: clock.now)
            } catch {
                throw ClientFileError(message: "the client file \(path): \(error.description)")
            }
            guard !clients.contains(where: { $0.id == client.id }) else {
                throw ClientFileError(message: "the client file \(path): client '\(client.id)' appears twice")
            }
            clients.append(client)
        }
        for client in clients { try await store.upsertClient(client) }
        return clients.count
    }
}

/// A client file that cannot be used; `serve` stops with the message.
struct ClientFileError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
