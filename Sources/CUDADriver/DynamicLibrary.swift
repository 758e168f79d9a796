import Glibc
internal import CCUDA

/// A library opened with dlopen. Never closed: the CUDA layer keeps its libraries for the life of
/// the process.
struct DynamicLibrary: @unchecked Sendable {
  let handle: UnsafeMutableRawPointer
  /// The path (or soname) it was opened by, made absolute with dladdr where possible.
  let path: String

  /// dlopen; on failure the error carries dlerror's text.
  static func open(_ pathOrName: String, global: Bool = false) -> Result<DynamicLibrary, DLError> {
    let flags = RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL)
    guard let handle = dlopen(pathOrName, flags) else {
      return .failure(DLError(message: lastError() ?? "dlopen failed"))
    }
    return .success(DynamicLibrary(handle: handle, path: pathOrName))
  }

  struct DLError: Error { let message: String }

  /// Opens the first file that one of `patterns` (paths or globs, in order) names and `open`
  /// accepts; nil when none does. Appends to `searched` each pattern that named no file and each
  /// file that failed to open, with dlerror's text.
  static func openFirst<T>(
    _ patterns: [String], searched: inout [String], open: (String) -> Result<T, DLError>
  ) -> T? {
    for pattern in patterns {
      let files = FileSystem.files(matching: pattern)
      if files.isEmpty { searched.append(pattern); continue }
      for file in files {
        switch open(file) {
        case .success(let opened): return opened
        case .failure(let error): searched.append("\(file) (\(error.message))")
        }
      }
    }
    return nil
  }

  static func lastError() -> String? {
    guard let message = dlerror() else { return nil }
    return String(cString: message)
  }

  /// The raw address of a symbol, or nil.
  func address(_ name: String) -> UnsafeMutableRawPointer? {
    _ = dlerror()
    return dlsym(handle, name)
  }

  /// A symbol as a C function type, trying `names` in order (versioned names first).
  func function<F>(_ names: String..., as type: F.Type) throws -> F {
    for name in names {
      if let raw = address(name) { return unsafeBitCast(raw, to: F.self) }
    }
    throw CUDAError.unavailable(what: "symbol \(names.joined(separator: " or ")) in \(path)", searched: [path])
  }

  /// A symbol that older libraries may lack.
  func optionalFunction<F>(_ name: String, as type: F.Type) -> F? {
    address(name).map { unsafeBitCast($0, to: F.self) }
  }

  /// The file a loaded symbol lives in (dladdr), used to name a library opened by soname.
  func fileContaining(symbol name: String) -> String? {
    guard let raw = address(name), let process = dlopen(nil, RTLD_NOW), let symbol = dlsym(process, "dladdr")
    else { return nil }
    let dladdr = unsafeBitCast(symbol, to: PFN_dladdr.self)
    var info = FlashMoEDlInfo()
    guard dladdr(raw, &info) != 0, let file = info.dli_fname else { return nil }
    return String(cString: file)
  }
}

/// The result of loading a library once per process (each type's `shared()`): any error becomes a
/// `CUDAError`, so that every later call reports the same one.
func loadOnce<T>(_ what: String, _ load: () throws -> T) -> Result<T, CUDAError> {
  do { return .success(try load()) }
  catch let error as CUDAError { return .failure(error) }
  catch { return .failure(.unavailable(what: "\(what) (\(error))", searched: [])) }
}
