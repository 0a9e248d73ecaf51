import Foundation
import Testing

/// Every public declaration of the storage layer carries a `///` comment, and the comment of a
/// throwing method says what it throws (or that it never does).
@Suite("Doc comments")
struct DocCommentTests {
    static let files = ["Storage/MemoryStore.swift", "Storage/Store.swift"]

    @Test(arguments: files)
    func everyPublicDeclarationIsDocumented(file: String) throws {
        let undocumented = try DocComments.publicDeclarations(in: file).filter { $0.doc.isEmpty }
        #expect(undocumented.isEmpty, "\(file): no /// comment on \(undocumented.map(\.line))")
    }

    @Test(arguments: files)
    func throwingMethodsSayWhatTheyThrow(file: String) throws {
        let silent = try DocComments.publicDeclarations(in: file).filter { declaration in
            declaration.line.contains(" func ") && declaration.line.contains(" throws")
                && !declaration.doc.lowercased().contains("throw")
        }
        #expect(silent.isEmpty, "\(file): doc says nothing about errors for \(silent.map(\.line))")
    }

    @Test func finderSeesAnUndocumentedDeclaration() {
        let source = """
        /// Documented.
        public struct A {
            /// Documented, with an attribute in between.
            @inlinable
            public func f() throws {}

            public func g() {}
        }
        """
        let found = DocComments.publicDeclarations(inSource: source)
        #expect(found.map(\.line) == ["public struct A {", "public func f() throws {}", "public func g() {}"])
        #expect(found.map(\.doc.isEmpty) == [false, false, true])
        #expect(found[1].doc.contains("attribute"))
    }
}

/// Finds public declarations in QRLoginCore sources and the `///` lines just above them.
enum DocComments {
    struct Declaration {
        var line: String
        var doc: String
    }

    static func publicDeclarations(in file: String) throws -> [Declaration] {
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.appendingPathComponent("Sources/QRLoginCore").appendingPathComponent(file)
        return publicDeclarations(inSource: try String(contentsOf: url, encoding: .utf8))
    }

    static func publicDeclarations(inSource source: String) -> [Declaration] {
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var found: [Declaration] = []
        for (index, line) in lines.enumerated() where line.hasPrefix("public ") {
            var above = index - 1
            while above >= 0, lines[above].hasPrefix("@") { above -= 1 }
            var doc: [String] = []
            while above >= 0, lines[above].hasPrefix("///") {
                doc.insert(lines[above], at: 0)
                above -= 1
            }
            found.append(Declaration(line: line, doc: doc.joined(separator: "\n")))
        }
        return found
    }
}
