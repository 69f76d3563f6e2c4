// The version the descriptor reports; it must equal the manifest's (the host refuses a mismatch).
extension Units {
    static let version = "0.1.0"
}
