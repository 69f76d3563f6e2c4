import COpenSSL

/// An OpenSSL call failed; carries OpenSSL's own reason so the user sees more than "failed".
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let reason: String

    init(_ operation: String) {
        self.operation = operation
        let code = ERR_get_error()
        var buffer = [CChar](repeating: 0, count: 256)
        if code != 0 { ERR_error_string_n(code, &buffer, buffer.count) }
        reason = code == 0 ? "no detail from OpenSSL" : String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        ERR_clear_error()
    }

    public var description: String { "\(operation) failed: \(reason)" }
}
