// libFuzzer target: the safetensors reader (header length, JSON header, offsets, dtypes, loads).
// Compiled together with Sources/MoEFiles (same module) by scripts/fuzz.sh, so internal API is visible.
#if canImport(Glibc)
import Glibc
#endif
import MoECore

private let input = FuzzInputFile(target: "safetensors", suffix: "safetensors")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  // The whole file path: length prefix, header, data section, loads.
  input.write(data, size)
  if let file = try? SafetensorsFile(path: input.path) {
    for name in file.names {
      guard let info = file.tensors[name] else { fatalError("names and tensors disagree") }
      _ = try? file.load(name)
      _ = try? file.load(name, shape: info.shape)
    }
  }
  // The header parser alone, on the raw bytes (reaches deeper JSON without a valid length prefix).
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  _ = try? SafetensorsHeader(bytes: bytes, dataSize: size, file: "fuzz")
  _ = try? JSON.parse(bytes)
  return 0
}
