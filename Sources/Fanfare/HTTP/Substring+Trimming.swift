extension Substring {
    /// Without leading and trailing spaces. Works on the UTF-8 bytes: a space is one byte,
    /// so both ends stay on character boundaries.
    func trimmingWhitespace() -> String {
        let bytes = self.utf8
        guard let first = bytes.firstIndex(where: { $0 != UInt8(ascii: " ") }),
            let last = bytes.lastIndex(where: { $0 != UInt8(ascii: " ") })
        else { return "" }
        return String(self[first..<bytes.index(after: last)])
    }
}
