/// The CUDA sources of the FlashMoE kernel, embedded in the binary at build time.
///
/// EmbedKernelsPlugin runs `embed-kernels` over every file under `Sources/MoEKernels/cuda/`
/// (recursively, hidden files left out) and generates `embeddedFiles` / `embeddedHash`; an added or
/// edited file regenerates them on the next build. Nothing is read from disk at run time, so the
/// kernel travels with a static binary.
public enum KernelSources {
  /// Every file, sorted by name; a name is the path relative to `cuda/` ("flashmoe.cuh",
  /// "detail/gemm.cuh"), as `#include "..."` spells it.
  public static let files: [(name: String, contents: String)] = embeddedFiles

  /// SHA-256 (64 lowercase hex digits) of all names and contents, in order: for each file, the
  /// UInt64 little-endian byte count of its name's UTF-8, that UTF-8, then the same for its contents.
  public static let hash: String = embeddedHash

  /// The contents of the file called `name`, or nil when there is none.
  public static func contents(of name: String) -> String? {
    files.first { $0.name == name }?.contents
  }

  /// Whether the kernel itself (`flashmoe.cuh`) is among the embedded files.
  public static var hasKernel: Bool { contents(of: "flashmoe.cuh") != nil }
}
