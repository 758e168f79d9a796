import Foundation
import PackagePlugin

/// Embeds the CUDA kernel sources of a target (every file under `<target>/cuda/`, recursively,
/// hidden files and editor backups left out) into a generated Swift file, by running the
/// `embed-kernels` tool at build time.
///
/// The files found are passed to the tool as arguments and declared as the command's inputs, so an
/// edited file re-runs the tool, and an added or removed file changes the command line (the plugin
/// is evaluated on every build), which re-runs it too.
@main
struct EmbedKernelsPlugin: BuildToolPlugin {
  func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
    guard let module = target as? SwiftSourceModuleTarget else {
      throw PluginError(description: "EmbedKernelsPlugin applies to Swift targets only, not to \(target.name)")
    }
    let root = module.directoryURL.appending(path: "cuda")
    let files = Self.kernelFiles(under: root)
    let output = context.pluginWorkDirectoryURL.appending(path: "KernelSources+Embedded.swift")
    return [
      .buildCommand(
        displayName: "Embedding \(files.count) CUDA source file(s) of \(target.name)",
        executable: try context.tool(named: "embed-kernels").url,
        arguments: ["--root", root.path(percentEncoded: false), "--output", output.path(percentEncoded: false)]
          + files.map { $0.path(percentEncoded: false) },
        inputFiles: files,
        outputFiles: [output])
    ]
  }

  struct PluginError: Error, CustomStringConvertible { var description: String }

  /// Regular files under `root` (none when it does not exist), sorted by path.
  static func kernelFiles(under root: URL) -> [URL] {
    let manager = FileManager.default
    var isDirectory: ObjCBool = false
    guard manager.fileExists(atPath: root.path(percentEncoded: false), isDirectory: &isDirectory),
          isDirectory.boolValue,
          let walker = manager.enumerator(
            at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
    else { return [] }
    var files: [URL] = []
    for case let url as URL in walker {
      let name = url.lastPathComponent
      if name.hasSuffix("~") || name.hasPrefix("#") { continue }
      guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true else { continue }
      files.append(url)
    }
    return files.sorted { Array($0.path(percentEncoded: false).utf8).lexicographicallyPrecedes($1.path(percentEncoded: false).utf8) }
  }
}
