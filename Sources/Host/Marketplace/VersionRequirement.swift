/// Which versions an install accepts: `1.2.3` (exactly), `^1.2` (compatible: <2.0.0),
/// `~1.2.3` (patch updates: <1.3.0), `1.2` or `1` (any with that prefix), `*`, and
/// comparisons (`>=1.0 <2.0`, comma or space separated, all must hold).
public struct VersionRequirement: Sendable, CustomStringConvertible {
    private var bounds: [(op: String, version: SemanticVersion)] = []
    public let description: String

    public static let any = try! VersionRequirement("*")

    public init(_ text: String) throws {
        description = text
        let terms = text.split(whereSeparator: { $0 == " " || $0 == "," })
        for term in terms where term != "*" {
            let op = ["^", "~", ">=", "<=", ">", "<", "="].first { term.hasPrefix($0) } ?? ""
            let rest = term.dropFirst(op.count)
            let exact = SemanticVersion(String(rest))
            let parts = exact != nil ? ["", "", ""] : rest.split(separator: ".", omittingEmptySubsequences: false)
            guard let full = exact ?? ((1...2).contains(parts.count) && parts.allSatisfy({ Int($0) != nil })
                      ? SemanticVersion((parts + Array(repeating: "0", count: 3 - parts.count)).joined(separator: ".")) : nil)
            else {
                throw MarketplaceError(.usage, "\"\(UntrustedText.sanitized(text, limit: 120))\" is not a version requirement; use 1.2.3, ^1.2, ~1.2.3, >=1.0 <2.0 or *")
            }
            // The bound above a version; none past the largest number a version may hold (Int32.max).
            func next(_ major: Int, _ minor: Int, _ patch: Int) throws -> SemanticVersion {
                guard let version = SemanticVersion("\(major).\(minor).\(patch)") else {
                    throw MarketplaceError(.usage, "\"\(UntrustedText.sanitized(text, limit: 120))\": version numbers go up to \(Int32.max)")
                }
                return version
            }
            switch op {
            case "^":
                let upper = full.major > 0 ? try next(full.major + 1, 0, 0)
                    : full.minor > 0 || parts.count < 3 ? try next(0, full.minor + 1, 0) : try next(0, 0, full.patch + 1)
                bounds += [(">=", full), ("<", upper)]
            case "~":
                bounds += [(">=", full), ("<", parts.count == 1 ? try next(full.major + 1, 0, 0) : try next(full.major, full.minor + 1, 0))]
            case "", "=":
                switch parts.count {
                case 3: bounds.append(("=", full))
                case 2: bounds += [(">=", full), ("<", try next(full.major, full.minor + 1, 0))]
                default: bounds += [(">=", full), ("<", try next(full.major + 1, 0, 0))]
                }
            default:
                bounds.append((op, full))
            }
        }
    }

    public func accepts(_ version: SemanticVersion) -> Bool {
        // Pre-releases only when asked for by an exact bound, as npm and Cargo do.
        if !version.prerelease.isEmpty && !bounds.contains(where: { $0.op == "=" && $0.version == version }) { return false }
        return bounds.allSatisfy { bound in
            switch bound.op {
            case "=": version == bound.version
            case ">=": version >= bound.version
            case "<=": version <= bound.version
            case ">": version > bound.version
            default: version < bound.version
            }
        }
    }
}
