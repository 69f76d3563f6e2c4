/// Why the marketplace refused or failed something. `reason` lets scripts and tests tell refusals
/// apart; `message` is the sentence a person reads.
public struct MarketplaceError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Reason: String, Sendable, Codable {
        case badSignature, rollback, expired, sizeMismatch, digestMismatch, tooLarge
        case unsafeArchive, invalidManifest, incompatible, yanked, notFound, busy
        case fetchFailed, invalidIndex, usage, io
        /// An installed plugin's files differ from its receipt: it does not start.
        case tampered
    }
    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { message }
}
