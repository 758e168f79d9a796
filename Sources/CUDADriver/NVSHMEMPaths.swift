/// The files of one NVSHMEM installation (a folder with `lib/` and `include/`: pip's
/// `site-packages/nvidia/nvshmem`, or an NVSHMEM_HOME). Finding them loads nothing, so compiling
/// NVSHMEM kernels works on a machine without a GPU.
public struct NVSHMEMPaths: Sendable, Equatable, CustomStringConvertible {
  /// The NVSHMEM folder.
  public let home: String

  public init(home: String) { self.home = home }

  /// The host library, opened with dlopen by `NVSHMEMLibrary`.
  public var hostLibraryPath: String { "\(home)/\(CUDAPaths.nvshmemHostLibrary)" }
  /// The headers folder (nvshmem.h, device/, non_abi/, ...), passed to NVRTC as an include path.
  public var includePath: String { "\(home)/include" }
  /// NVSHMEM's device code as raw LLVM bitcode, for libNVVM / LLVM users. nvJitLink 13.0 does not
  /// read it (nvJitLinkAddFile: "unrecognized input type"); link `deviceLibraryPath` instead.
  public var deviceBitcodePath: String { "\(home)/lib/libnvshmem_device.bc" }
  /// NVSHMEM's device code as a static archive of host objects with embedded device code: what
  /// nvJitLink links (NVJITLINK_INPUT_LIBRARY). It defines the device state
  /// (nvshmemi_device_state_d, nvshmemi_device_lib_version_d, nvshmemi_ibgda_device_state_d) that
  /// nvshmemx_cumodule_init fills in each loaded module.
  public var deviceLibraryPath: String { "\(home)/lib/libnvshmem_device.a" }
  /// The unique-ID bootstrap plugin that libnvshmem_host dlopens for NVSHMEMX_INIT_WITH_UNIQUEID.
  public var bootstrapUIDPluginPath: String { "\(home)/lib/nvshmem_bootstrap_uid.so.3" }

  public var description: String { home }

  /// Finds NVSHMEM: `FLASHMOE_NVSHMEM_HOME` (the only place looked at when set), else
  /// `NVSHMEM_HOME`, else pip's `nvidia/nvshmem` in Python site-packages folders
  /// (`/opt/*/.venv/lib/python3*/site-packages`, the active virtual environment, PATH's prefixes,
  /// the user's and pyenv's).
  /// - Throws: `CUDAError.unavailable` listing every folder looked at.
  public static func find(environment: [String: String] = CUDAPaths.nvshmemEnvironment()) throws -> NVSHMEMPaths {
    NVSHMEMPaths(home: try CUDAPaths.nvshmemHome(environment: environment))
  }

  /// Checks that the files needed to build device code are there (the headers: device code is
  /// compiled header-only, `KernelCompiler.compileNVSHMEM`).
  /// - Throws: `CUDAError.unavailable` naming each missing file.
  public func checkDeviceFiles() throws {
    let needed = ["\(includePath)/nvshmem.h", "\(includePath)/device/nvshmem_defines.h", "\(includePath)/non_abi/nvshmem_version.h"]
    let missing = needed.filter { !FileSystem.exists($0) }
    guard missing.isEmpty else {
      throw CUDAError.unavailable(what: "NVSHMEM device files in \(home)", searched: missing)
    }
  }
}
