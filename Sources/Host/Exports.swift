// Host APIs take and return JSONValue, so everything that imports BraneHost sees it.
@_exported import BraneJSON

/// Brane's release: what `brane --version` says and MCP clients see as the server's version.
public enum BraneRelease {
    public static let version = "0.6.0"
}
