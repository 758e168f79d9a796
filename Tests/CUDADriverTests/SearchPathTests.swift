import TestSupport
import Testing
@testable import CUDADriver

@Suite("library and header search")
struct SearchPathTests {
  @Test("FLASHMOE_NVRTC pointing nowhere: the error names that path")
  func nvrtcOverride() {
    let path = "/nonexistent/flashmoe/libnvrtc.so.13"
    do {
      _ = try NVRTC.load(environment: ["FLASHMOE_NVRTC": path])
      Issue.record("loaded NVRTC from a path that does not exist")
    } catch let CUDAError.unavailable(what, searched) {
      #expect(what.contains("FLASHMOE_NVRTC"))
      #expect(searched.count == 1)
      #expect(searched.first?.hasPrefix(path) == true)
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test("FLASHMOE_LIBCUDA pointing nowhere: the error names that path")
  func libcudaOverride() {
    let path = "/nonexistent/flashmoe/libcuda.so.1"
    do {
      _ = try Driver.load(environment: ["FLASHMOE_LIBCUDA": path])
      Issue.record("loaded libcuda from a path that does not exist")
    } catch let error as CUDAError {
      guard case let .unavailable(what, searched) = error else { Issue.record("unexpected \(error)"); return }
      #expect(what.contains("FLASHMOE_LIBCUDA"))
      #expect(searched.first?.hasPrefix(path) == true)
      #expect(error.description.contains(path))
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test("nvdisasm: FLASHMOE_NVDISASM is the only place when set; else CUDA_HOME, the toolkit, then pip's nvidia/cu13/bin")
  func nvdisasmSearch() {
    #expect(CUDAPaths.nvdisasmFilePatterns(environment: ["FLASHMOE_NVDISASM": "/x/nvdisasm", "CUDA_HOME": "/c"]) == ["/x/nvdisasm"])
    #expect(CUDAPaths.nvdisasm(environment: ["FLASHMOE_NVDISASM": "/nonexistent/flashmoe/nvdisasm"]) == nil)
    let patterns = CUDAPaths.nvdisasmFilePatterns(environment: ["CUDA_HOME": "/c", "HOME": "/h"])
    #expect(patterns.first == "/c/bin/nvdisasm")
    #expect(patterns.contains("/usr/local/cuda/bin/nvdisasm"))
    #expect(patterns.contains("/h/.local/lib/python3*/site-packages/nvidia/cu13/bin/nvdisasm"))
    #expect(patterns.firstIndex(of: "/usr/local/cuda/bin/nvdisasm")! < patterns.firstIndex { $0.contains("site-packages") }!)
  }

  @Test("FLASHMOE_CUDA_INCLUDE pointing nowhere: the error names that folder")
  func includeOverride() {
    let folder = "/nonexistent/flashmoe/include"
    #expect {
      _ = try CUDAPaths.includeDirectory(environment: ["FLASHMOE_CUDA_INCLUDE": folder])
    } throws: { error in
      guard case let CUDAError.unavailable(_, searched) = error else { return false }
      return searched == [folder]
    }
  }

  @Test("a failed NVRTC search lists every place tried, in order")
  func nvrtcSearchListsEverything() {
    let patterns = ["/nonexistent/a/libnvrtc.so.13", "/nonexistent/*/lib/libnvrtc.so.13"]
    do {
      _ = try NVRTC.load(patterns: patterns, loaderName: "libnvrtc-flashmoe-missing.so.13", include: .success("/x"))
      Issue.record("found a library that does not exist")
    } catch let error as CUDAError {
      guard case let .unavailable(_, searched) = error else { Issue.record("unexpected \(error)"); return }
      #expect(searched.count == 3)
      #expect(Array(searched.prefix(2)) == patterns)
      #expect(searched.last?.hasPrefix("libnvrtc-flashmoe-missing.so.13 on the loader path") == true)
      for pattern in patterns { #expect(error.description.contains(pattern)) }
    } catch {
      Issue.record("unexpected error \(error)")
    }
  }

  @Test("a failed header search lists every folder tried")
  func headerSearchListsEverything() {
    let patterns = ["/nonexistent/cuda/include", "/nonexistent/*/site-packages/nvidia/cu13/include"]
    #expect {
      _ = try CUDAPaths.includeDirectory(patterns: patterns)
    } throws: { error in
      guard case let CUDAError.unavailable(_, searched) = error else { return false }
      return searched == patterns
    }
  }

  @Test("NVRTC search order: CUDA_HOME, /usr/local/cuda, cuda-13.0, then pip wheels")
  func nvrtcOrder() throws {
    let env = ["CUDA_HOME": "/opt/fake-cuda", "HOME": "/home/someone", "VIRTUAL_ENV": "/venv"]
    let patterns = CUDAPaths.nvrtcFilePatterns(environment: env)
    #expect(Array(patterns.prefix(5)) == [
      "/opt/fake-cuda/lib64/libnvrtc.so.13",
      "/opt/fake-cuda/targets/x86_64-linux/lib/libnvrtc.so.13",
      "/usr/local/cuda/lib64/libnvrtc.so.13",
      "/usr/local/cuda/targets/x86_64-linux/lib/libnvrtc.so.13",
      "/usr/local/cuda-13.0/targets/x86_64-linux/lib/libnvrtc.so.13",
    ])
    for expected in [
      "/venv/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13",
      "/usr/local/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13",
      "/usr/lib/python3*/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.13",
      "/home/someone/.local/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13",
      "/root/.pyenv/versions/*/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13",
      "/opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13",
    ] {
      #expect(patterns.contains(expected), "missing \(expected)")
    }
    #expect(Set(patterns).count == patterns.count)
  }

  @Test("header search order: CUDA_HOME, /usr/local/cuda, then pip wheels")
  func headerOrder() {
    let patterns = CUDAPaths.includeFolderPatterns(environment: ["CUDA_HOME": "/opt/fake-cuda"])
    #expect(Array(patterns.prefix(2)) == ["/opt/fake-cuda/include", "/usr/local/cuda/include"])
    #expect(patterns.contains("/usr/local/lib/python3*/site-packages/nvidia/cu13/include"))
    #expect(patterns.contains("/usr/local/lib/python3*/site-packages/nvidia/cuda_runtime/include"))
  }

  @Test("a site-packages folder from PATH")
  func pathDerivedSitePackages() {
    let patterns = CUDAPaths.sitePackagesPatterns(environment: ["PATH": "/opt/py/bin:/usr/bin:/sbin"])
    #expect(patterns.first == "/opt/py/lib/python3*/site-packages")
    #expect(patterns.contains("/usr/lib/python3*/site-packages"))
  }

  @Test("error descriptions")
  func descriptions() {
    let driver = CUDAError.driver(code: 2, name: "CUDA_ERROR_OUT_OF_MEMORY", message: "out of memory", call: "cuMemAlloc(64 bytes)")
    #expect(driver.description == "cuMemAlloc(64 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (2): out of memory")
    let missing = CUDAError.unavailable(what: "NVRTC", searched: ["/a", "/b"])
    #expect(missing.description == "NVRTC not found; searched:\n  - /a\n  - /b")
    let nvrtc = CUDAError.nvrtc(code: 6, message: "NVRTC_ERROR_COMPILATION", call: "nvrtcCompileProgram(x.cu)", log: "x.cu(1): error\n")
    #expect(nvrtc.description == "nvrtcCompileProgram(x.cu) failed: NVRTC_ERROR_COMPILATION (6)\nx.cu(1): error")
  }

  @Test("without a GPU, Driver.shared() throws a CUDAError", .enabled(if: !Gate.hasGPU))
  func noGPU() {
    #expect(throws: CUDAError.self) { _ = try Driver.shared().device(0) }
  }
}
