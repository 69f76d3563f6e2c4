/// The one grammar of a plugin id — reverse-DNS, lowercase: `com.example.my-tool` — checked
/// before an id from a manifest, an index or the command line is used for anything, above all
/// before it becomes part of a path (`plugins/<id>/`, `locks/<id>.lock`, `staging/<id>@…`).
/// No `/`, no `..`, no leading dot or dash, no `@` (the staging separator), at most 128 bytes.
public enum PluginID {
    public static let maximumLength = 128

    /// Why `text` is not a plugin id, or nil when it is one.
    public static func problem(_ text: String) -> String? {
        let labels = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        let valid = text.utf8.count <= maximumLength && labels.count >= 2
            && labels.allSatisfy { label in
                guard let first = label.first, first != UInt8(ascii: "-") else { return false }
                return label.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "-") }
            }
        return valid ? nil : "expected a reverse-DNS id such as com.example.my-tool (lowercase letters, digits, dots, dashes; at most \(maximumLength) bytes), found \"\(UntrustedText.sanitized(text, limit: 160))\""
    }
}
