import Foundation
import QRLoginCore

/// Field rules for client input. Every rule throws ``QRLoginError/invalidInput(_:)`` naming the
/// field, before anything is written.
enum Validate {
    static let maxNameLength = 64
    static let maxUsernameLength = 64
    static let minPasswordLength = 8
    static let maxPasswordLength = 1024

    static func username(_ value: String) throws(QRLoginError) -> String {
        guard !value.isEmpty, value.count <= maxUsernameLength else {
            throw .invalidInput("username must be 1 to \(maxUsernameLength) characters")
        }
        let allowed = value.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "._-".unicodeScalars.contains(scalar))
        }
        guard allowed else { throw .invalidInput("username may contain only letters, digits, '.', '_' and '-'") }
        return value
    }

    static func password(_ value: String) throws(QRLoginError) -> String {
        guard value.count >= minPasswordLength, value.utf8.count <= maxPasswordLength else {
            throw .invalidInput("password must be \(minPasswordLength) to \(maxPasswordLength) characters")
        }
        return value
    }

    /// A display or device name: trimmed, 1 to 64 characters, no control characters.
    static func name(_ value: String, field: String) throws(QRLoginError) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= maxNameLength else {
            throw .invalidInput("\(field) must be 1 to \(maxNameLength) characters")
        }
        guard !trimmed.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) else {
            throw .invalidInput("\(field) must not contain control characters")
        }
        return trimmed
    }

    /// A phone number in E.164 form: `+` and 7 to 15 digits.
    static func phone(_ value: String) throws(QRLoginError) -> String {
        let digits = value.dropFirst()
        guard value.first == "+", (7...15).contains(digits.count), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), digits.first != "0" else {
            throw .invalidInput("phone must be in E.164 form, e.g. +15551234567")
        }
        return value
    }

    static func code(_ value: String) throws(QRLoginError) -> String {
        guard value.count == 6, value.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw .invalidInput("code must be 6 digits")
        }
        return value
    }

    static func deviceType(_ value: String) throws(QRLoginError) -> DeviceType {
        guard let type = DeviceType(rawValue: value) else {
            throw .invalidInput("device.type must be one of \(DeviceType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return type
    }

    /// A login request id or device id as issued: base64url, bounded.
    static func identifier(_ value: String) throws(QRLoginError) -> String {
        guard (1...64).contains(value.utf8.count), Base64URL.decode(value) != nil else { throw .notFound }
        return value
    }

    /// A string that must be one of our prefixed secrets.
    static func secret(_ value: String, prefix: String) -> Bool {
        value.hasPrefix(prefix) && value.utf8.count == prefix.utf8.count + 43
    }
}
