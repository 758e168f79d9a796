// libFuzzer target: the safetensors reader (header length, JSON header, offsets, dtypes, loads).
// Compiled together with Sources/MoEFiles (same module) by scripts/fuzz.sh, so internal API is visible.
#if canImport(Glibc)
import Glibc
#endif
import MoECore

private let fuzzPath: String = {
  let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
  return "\(dir)/flashmoe-fuzz-safetensors-\(getpid()).safetensors"
}()

private func writeFile(_ data: UnsafePointer<UInt8>, _ size: Int) {
  let fd = open(fuzzPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  guard fd >= 0 else { fatalError("cannot create \(fuzzPath)") }
  var done = 0
  while done < size {
    let n = write(fd, data + done, size - done)
    guard n > 0 else { fatalError("cannot write \(fuzzPath)") }
    done += n
  }
  close(fd)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  // The whole file path: length prefix, header, data section, loads.
  writeFile(data, size)
  if let file = try? SafetensorsFile(path: fuzzPath) {
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
