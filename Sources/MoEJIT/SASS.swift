import CUDADriver
import Foundation

/// A cubin's SASS, as `nvdisasm -c` prints it (CI reads it for WGMMAHazards; nvdisasm is found by
/// `CUDAPaths.nvdisasm`).
public enum SASS {
  public struct DisassemblyError: Error, CustomStringConvertible {
    public let description: String
  }

  /// Runs `nvdisasm -c` on `cubin` (written to a temporary file, removed after).
  public static func disassemble(_ cubin: [UInt8], nvdisasm: String) throws -> String {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("flashmoe-\(UUID().uuidString).cubin")
    try Data(cubin).write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: nvdisasm)
    process.arguments = ["-c", file.path]
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    // Read before waiting: a full pipe would block nvdisasm.
    let text = output.fileHandleForReading.readDataToEndOfFile()
    let message = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw DisassemblyError(
        description: "\(nvdisasm) -c exited with \(process.terminationStatus): \(String(decoding: message, as: UTF8.self))")
    }
    return String(decoding: text, as: UTF8.self)
  }
}
