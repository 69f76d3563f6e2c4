// Host APIs take and return JSONValue, so everything that imports BraneHost sees it.
@_exported import BraneJSON
