import ArgumentParser
import Foundation

/// Secrets given as a value or as a file.
enum Secret {
    /// `value`, else the contents of `file` without its trailing newline, else `nil`.
    static func read(_ value: String?, file: String?, option: String) throws -> String? {
        if let value { return value }
        guard let file else { return nil }
        do {
            var text = try String(contentsOfFile: file, encoding: .utf8)
            while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
            return text
        } catch {
            throw ValidationError("cannot read --\(option) from \(file): \(error.localizedDescription)")
        }
    }
}
