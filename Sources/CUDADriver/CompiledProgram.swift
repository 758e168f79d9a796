/// The result of `NVRTC.compile`.
public struct CompiledProgram: Sendable {
  /// The program name given to NVRTC (used in diagnostics).
  public let name: String
  /// The cubin (empty when compiled for a virtual architecture, compute_XX).
  public let cubin: [UInt8]
  /// The PTX, when NVRTC produced it.
  public let ptx: String?
  /// The whole program log: warnings and, with `--ptxas-options=-v`, ptxas's report.
  public let log: String
  /// Name expression → lowered (mangled) name, for the `nameExpressions` passed to compile.
  public let loweredNames: [String: String]
  /// ptxas's report parsed from `log` (empty without `--ptxas-options=-v`).
  public let resources: PTXASReport

  public init(name: String, cubin: [UInt8], ptx: String?, log: String, loweredNames: [String: String] = [:]) {
    self.name = name
    self.cubin = cubin
    self.ptx = ptx
    self.log = log
    self.loweredNames = loweredNames
    self.resources = PTXASReport(parsing: log)
  }
}
