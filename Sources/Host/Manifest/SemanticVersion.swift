/// A semver 2.0 version: MAJOR.MINOR.PATCH[-prerelease][+build].
public struct SemanticVersion: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var major: Int, minor: Int, patch: Int
    public var prerelease: [String]
    public var build: String?

    /// Strict semver 2.0: identifiers are ASCII alphanumerics and hyphens only, so a version can
    /// be part of a path (`plugins/<id>/<version>-<digest>`) and never holds `/` or `..`.
    public init?(_ text: String) {
        /// Dot-separated identifiers; in a prerelease a numeric one has no leading zero (semver §9),
        /// or `1.0.0-01` would be another version that orders as `1.0.0-1`.
        func identifiers(_ part: Substring, prerelease: Bool) -> [String]? {
            // A Character separator: a String one is _StringProcessing's split, a third of reading an index.
            let parts = part.split(separator: "." as Character, omittingEmptySubsequences: false)
            let valid = parts.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == UInt8(ascii: "-") } }
                && !(prerelease && parts.contains { $0.count > 1 && $0.first == "0" && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } })
            return valid ? parts.map(String.init) : nil
        }
        guard text.utf8.count <= 128 else { return nil }
        var rest = Substring(text)
        if let plus = rest.firstIndex(of: "+") {
            guard identifiers(rest[rest.index(after: plus)...], prerelease: false) != nil else { return nil }
            build = String(rest[rest.index(after: plus)...])
            rest = rest[..<plus]
        }
        if let dash = rest.firstIndex(of: "-") {
            guard let parts = identifiers(rest[rest.index(after: dash)...], prerelease: true) else { return nil }
            prerelease = parts
            rest = rest[..<dash]
        } else {
            prerelease = []
        }
        let numbers = rest.split(separator: "." as Character, omittingEmptySubsequences: false)
        guard numbers.count == 3,
              numbers.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } && ($0 == "0" || $0.first != "0") }),
              let major = Int(numbers[0]), let minor = Int(numbers[1]), let patch = Int(numbers[2]),
              // Bounded, so a requirement's next version (^, ~) can never overflow.
              [major, minor, patch].allSatisfy({ $0 <= Int(Int32.max) })
        else { return nil }
        (self.major, self.minor, self.patch) = (major, minor, patch)
    }

    public var description: String { precedence + (build.map { "+" + $0 } ?? "") }

    /// The version as semver orders it, build metadata dropped: `1.0.0+b` is `1.0.0`.
    public var precedence: String { "\(major).\(minor).\(patch)" + (prerelease.isEmpty ? "" : "-" + prerelease.joined(separator: ".")) }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        if (lhs.major, lhs.minor, lhs.patch) != (rhs.major, rhs.minor, rhs.patch) {
            return (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
        }
        // A pre-release sorts before its release; identifiers compare numerically when both are numbers.
        if lhs.prerelease.isEmpty || rhs.prerelease.isEmpty { return !lhs.prerelease.isEmpty && rhs.prerelease.isEmpty }
        for (l, r) in zip(lhs.prerelease, rhs.prerelease) where l != r {
            switch (Int(l), Int(r)) {
            case let (x?, y?): return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            case (nil, nil): return l < r
            }
        }
        return lhs.prerelease.count < rhs.prerelease.count
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let version = SemanticVersion(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a semantic version: \(text)"))
        }
        self = version
    }
}
