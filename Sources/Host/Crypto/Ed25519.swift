import COpenSSL
import Foundation

/// An Ed25519 key pair or public key held by OpenSSL; PEM in and out (PKCS#8 / SubjectPublicKeyInfo,
/// so `openssl pkey` reads the same files).
public final class Ed25519Key: @unchecked Sendable {
    private let key: OpaquePointer
    public let hasPrivateKey: Bool

    private init(_ key: OpaquePointer, hasPrivateKey: Bool) {
        self.key = key
        self.hasPrivateKey = hasPrivateKey
    }

    deinit { EVP_PKEY_free(key) }

    public static func generate() throws -> Ed25519Key {
        let seed = try secureRandomBytes(32)
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, seed.count) else {
            throw CryptoError("generating an Ed25519 key")
        }
        return Ed25519Key(key, hasPrivateKey: true)
    }

    /// Reads a private key (`-----BEGIN PRIVATE KEY-----`) or a public key (`-----BEGIN PUBLIC KEY-----`).
    public init(pem: String) throws {
        let bytes = Array(pem.utf8)
        let isPrivate = pem.contains("PRIVATE KEY-----")
        let parsed: OpaquePointer? = bytes.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return isPrivate ? PEM_read_bio_PrivateKey(bio, nil, nil, nil) : PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let parsed else { throw CryptoError("reading a PEM key") }
        guard EVP_PKEY_get_base_id(parsed) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(parsed)
            throw CryptoError("reading a PEM key (not an Ed25519 key)")
        }
        key = parsed
        hasPrivateKey = isPrivate
    }

    public var publicKeyPEM: String { pem { PEM_write_bio_PUBKEY($0, key) } }
    public var privateKeyPEM: String { pem { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) } }

    /// The raw 32-byte public key.
    public var rawPublicKey: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 32)
        var length = bytes.count
        EVP_PKEY_get_raw_public_key(key, &bytes, &length)
        return bytes
    }

    /// A short, stable name for the key: the first 16 hex digits of SHA-256 over the raw public key.
    public var keyID: String { String(SHA256.hash(rawPublicKey).prefix(16)) }

    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        precondition(hasPrivateKey, "signing needs a private key")
        guard let context = EVP_MD_CTX_new() else { throw CryptoError("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(context) }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = signature.count
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1,
              EVP_DigestSign(context, &signature, &length, message, message.count) == 1 else {
            throw CryptoError("Ed25519 signing")
        }
        return Array(signature.prefix(length))
    }

    public func verify(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else { return false }
        let valid = EVP_DigestVerify(context, signature, signature.count, message, message.count) == 1
        ERR_clear_error()
        return valid
    }

    private func pem(_ write: (OpaquePointer) -> Int32) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { return "" }
        var data: UnsafeMutablePointer<CChar>?
        let length = brane_bio_mem_data(bio, &data)
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }
}
