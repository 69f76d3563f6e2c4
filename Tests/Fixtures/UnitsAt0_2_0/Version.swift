// com.brane.units built at 0.2.0, for the marketplace tests' upgrades: a release whose descriptor
// agrees with its manifest, as a publisher's new build would.
extension Units {
    static let version = "0.2.0"
}
