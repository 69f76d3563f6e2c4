// libFuzzer target: any byte stream, split anywhere, must decode or be rejected — never crash,
// never buffer past the limit. Built and run by scripts/fuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func frameDecoderFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    var decoder = FrameDecoder(limit: 4096)
    for part in [bytes[..<split], bytes[split...]] {
        decoder.append(part)
        do {
            while let frame = try decoder.next() {
                precondition(frame.payload.count <= 4096)
                precondition(frame.encoded().count == Frame.headerSize + frame.payload.count)
            }
        } catch {
            return 0
        }
    }
    return 0
}
