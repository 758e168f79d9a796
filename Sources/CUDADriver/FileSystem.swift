import Glibc

/// The few file-system questions the search needs, answered with Glibc.
enum FileSystem {
  static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

  static func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
  }

  /// Paths matching a glob(3) pattern, sorted as glob sorts them; [] when nothing matches.
  static func glob(_ pattern: String) -> [String] {
    var matches = glob_t()
    defer { globfree(&matches) }
    guard Glibc.glob(pattern, 0, nil, &matches) == 0 else { return [] }
    var result: [String] = []
    for i in 0..<Int(matches.gl_pathc) {
      if let entry = matches.gl_pathv[i] { result.append(String(cString: entry)) }
    }
    return result
  }

  static func hasGlobCharacters(_ pattern: String) -> Bool {
    pattern.contains { $0 == "*" || $0 == "?" || $0 == "[" }
  }

  /// The files a search pattern names: a glob's matches, or the path itself when it exists.
  static func files(matching pattern: String) -> [String] {
    hasGlobCharacters(pattern) ? glob(pattern) : (exists(pattern) ? [pattern] : [])
  }

  /// The resolved path (symlinks followed), or nil when it does not exist.
  static func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
  }

  static func directory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
  }

  static func fileName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
  }
}
