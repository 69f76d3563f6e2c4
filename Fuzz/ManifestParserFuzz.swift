// libFuzzer target: any text must load as a manifest or be refused with at least one error
// that points inside the file — never crash, never loop. Built and run by scripts/fuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func manifestParserFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    // YAML breaks lines at \r as well as \n (and NEL, LS, PS): count them the way it does.
    let lineCount = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).count
    do {
        _ = try ManifestLoader.parse(text, file: "fuzz.yaml")
    } catch let failure as ValidationFailure {
        precondition(!failure.errors.isEmpty, "refused without an error")
        for diagnostic in failure.diagnostics {
            precondition(diagnostic.line >= 1 && diagnostic.line <= lineCount + 1, "line out of the file: \(diagnostic)")
            precondition(diagnostic.column >= 1, "column before the line: \(diagnostic)")
        }
    } catch {
        preconditionFailure("unexpected error type: \(error)")
    }
    return 0
}
