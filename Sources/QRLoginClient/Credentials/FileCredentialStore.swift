import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps a profile's key (`key.pem`) and session (`session.json`) in a directory that only the
/// user can read: the directory is mode 0700, the files 0600, written atomically (a new file
/// created with mode 0600, then renamed over the old one).
public struct FileCredentialStore: CredentialStore {
    /// The profile directory.
    public let directory: URL

    /// A store in `directory`, created on first write.
    public init(directory: URL) {
        self.directory = directory
    }

    /// The store of profile `profile` under `$XDG_CONFIG_HOME/qrlogin/` (or `~/.config/qrlogin/`).
    /// - Throws: ``FileCredentialStoreError/invalidProfile(_:)`` for names other than letters,
    ///   digits, `.`, `_` and `-` (and not starting with `.`).
    public init(profile: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard !profile.isEmpty, profile.count <= 64, !profile.hasPrefix("."),
              profile.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) })
        else { throw FileCredentialStoreError.invalidProfile(profile) }
        self.init(directory: Self.configRoot(environment: environment).appendingPathComponent(profile, isDirectory: true))
    }

    /// `$XDG_CONFIG_HOME/qrlogin`, or `$HOME/.config/qrlogin`.
    public static func configRoot(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("qrlogin", isDirectory: true)
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(".config/qrlogin", isDirectory: true)
    }

    var keyFile: URL { directory.appendingPathComponent("key.pem") }
    var sessionFile: URL { directory.appendingPathComponent("session.json") }

    /// Reads `key.pem`, or nil when there is none.
    public func loadKey() throws -> P256.Signing.PrivateKey? {
        guard let text = try read(keyFile) else { return nil }
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: String(decoding: text, as: UTF8.self))
        } catch {
            throw FileCredentialStoreError.unreadable(keyFile.path, "not a P-256 private key in PEM")
        }
    }

    /// Writes `key.pem` with mode 0600.
    public func saveKey(_ key: P256.Signing.PrivateKey) throws {
        try write(Data(key.pemRepresentation.utf8), to: keyFile)
    }

    /// Reads `session.json`, or nil when there is none.
    public func loadSession() throws -> StoredSession? {
        guard let data = try read(sessionFile) else { return nil }
        do {
            return try JSONDecoder.qrlogin.decode(StoredSession.self, from: data)
        } catch {
            throw FileCredentialStoreError.unreadable(sessionFile.path, "not a saved session")
        }
    }

    /// Writes `session.json` with mode 0600.
    public func saveSession(_ session: StoredSession) throws {
        let encoder = JSONEncoder.qrlogin
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try write(try encoder.encode(session), to: sessionFile)
    }

    /// Deletes `session.json` if present.
    public func deleteSession() throws {
        if unlink(sessionFile.path) != 0, errno != ENOENT {
            throw FileCredentialStoreError.unwritable(sessionFile.path, String(cString: strerror(errno)))
        }
    }

    /// Reads another small file of the profile (e.g. a tool's state), or nil.
    /// - Throws: ``FileCredentialStoreError/unreadable(_:_:)``.
    public func loadFile(named name: String) throws -> Data? {
        try read(directory.appendingPathComponent(name))
    }

    /// Writes another small file of the profile, with the same modes as the credentials.
    /// - Throws: ``FileCredentialStoreError/unwritable(_:_:)``.
    public func saveFile(named name: String, _ data: Data) throws {
        try write(data, to: directory.appendingPathComponent(name))
    }

    /// Deletes another file of the profile if present.
    public func deleteFile(named name: String) {
        unlink(directory.appendingPathComponent(name).path)
    }

    private func read(_ file: URL) throws -> Data? {
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        do {
            return try Data(contentsOf: file)
        } catch {
            throw FileCredentialStoreError.unreadable(file.path, "\(error.localizedDescription)")
        }
    }

    private func makeDirectory() throws {
        let path = directory.path
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw FileCredentialStoreError.unwritable(path, error.localizedDescription)
            }
        }
        // An existing directory may be looser; tighten it.
        if chmod(path, 0o700) != 0 { throw FileCredentialStoreError.unwritable(path, String(cString: strerror(errno))) }
    }

    private func write(_ data: Data, to file: URL) throws {
        try makeDirectory()
        let temporary = file.path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw FileCredentialStoreError.unwritable(file.path, String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
        } catch {
            unlink(temporary)
            throw FileCredentialStoreError.unwritable(file.path, error.localizedDescription)
        }
        guard rename(temporary, file.path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temporary)
            throw FileCredentialStoreError.unwritable(file.path, why)
        }
    }
}

/// Why a ``FileCredentialStore`` failed.
public enum FileCredentialStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A profile name with characters other than letters, digits, `.`, `_`, `-`.
    case invalidProfile(String)
    /// A file exists but cannot be read or parsed.
    case unreadable(String, String)
    /// A file or directory cannot be written.
    case unwritable(String, String)

    /// A readable message.
    public var description: String {
        switch self {
        case .invalidProfile(let name): "invalid profile name \"\(name)\": use letters, digits, '.', '_' and '-'"
        case .unreadable(let path, let why): "cannot read \(path): \(why)"
        case .unwritable(let path, let why): "cannot write \(path): \(why)"
        }
    }
}
