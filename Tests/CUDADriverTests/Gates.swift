import CUDADriver
import TestSupport
import Glibc


/// The options every test compilation uses.
func options(_ arch: String, _ extra: [String] = []) -> [String] {
  ["--gpu-architecture=\(arch)", "--ptxas-options=-v", "-std=c++17"] + extra
}
