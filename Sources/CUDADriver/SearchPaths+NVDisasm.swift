/// Where nvdisasm (NVIDIA's SASS disassembler, a command-line tool) is looked for: CI reads every
/// kernel variant's SASS with it (MoEJIT.WGMMAHazards). Nothing at run time needs it.
extension CUDAPaths {
  /// `FLASHMOE_NVDISASM` when set (the only place then), else the CUDA toolkit's `bin`, then pip's
  /// `nvidia/cu13/bin` (nvidia-cuda-nvdisasm 13.x) in the Python site-packages folders.
  public static func nvdisasmFilePatterns(environment: [String: String]) -> [String] {
    if let path = environment.nonEmpty("FLASHMOE_NVDISASM") { return [path] }
    var patterns: [String] = []
    if let home = environment.nonEmpty("CUDA_HOME") { patterns.append("\(home)/bin/nvdisasm") }
    patterns += ["/usr/local/cuda/bin/nvdisasm", "/usr/local/cuda-13.0/bin/nvdisasm"]
    for site in sitePackagesPatterns(environment: environment) {
      patterns.append("\(site)/nvidia/cu13/bin/nvdisasm")
      patterns.append("\(site)/nvidia/cuda_nvdisasm/bin/nvdisasm")
    }
    return unique(patterns)
  }

  /// The first nvdisasm of `nvdisasmFilePatterns` that exists, or nil.
  public static func nvdisasm(environment: [String: String]? = nil) -> String? {
    var environment = environment ?? CUDAEnvironment.current()
    if environment["FLASHMOE_NVDISASM"] == nil, let value = CUDAEnvironment.value("FLASHMOE_NVDISASM") {
      environment["FLASHMOE_NVDISASM"] = value
    }
    return nvdisasmFilePatterns(environment: environment).lazy.compactMap { FileSystem.files(matching: $0).first }.first
  }
}
