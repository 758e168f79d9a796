import Glibc
import Testing
import MoEKernels

@Suite("Embedded kernel sources")
struct KernelSourcesTests {
  /// Sources/MoEKernels/cuda of this checkout.
  static let cudaFolder: String = {
    let file = #filePath
    let tests = file[..<file.firstRange(of: "/Tests/MoEJITTests/")!.lowerBound]
    return tests + "/Sources/MoEKernels/cuda"
  }()

  /// Regular, non-hidden files under `folder`, as paths relative to it.
  static func files(under folder: String, prefix: String = "") -> [String] {
    guard let dir = opendir(folder) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
      }
      if name.hasPrefix(".") || name.hasSuffix("~") || name.hasPrefix("#") { continue }
      var info = stat()
      guard stat(folder + "/" + name, &info) == 0 else { continue }
      if (info.st_mode & S_IFMT) == S_IFDIR {
        names += files(under: folder + "/" + name, prefix: prefix + name + "/")
      } else if (info.st_mode & S_IFMT) == S_IFREG {
        names.append(prefix + name)
      }
    }
    return names
  }

  @Test("names are sorted and unique")
  func sortedNames() {
    let names = KernelSources.files.map(\.name)
    #expect(names == names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
    #expect(Set(names).count == names.count)
  }

  @Test("every file of Sources/MoEKernels/cuda is embedded byte for byte (the build regenerated them)")
  func matchesDisk() throws {
    let onDisk = Self.files(under: Self.cudaFolder).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    #expect(KernelSources.files.map(\.name) == onDisk)
    for name in onDisk {
      let bytes = try #require(readFile(Self.cudaFolder + "/" + name))
      let embedded = try #require(KernelSources.contents(of: name))
      #expect(Array(embedded.utf8) == bytes, "\(name) differs from its embedded copy")
    }
    #expect(KernelSources.hasKernel == onDisk.contains("flashmoe.cuh"))
  }
}
