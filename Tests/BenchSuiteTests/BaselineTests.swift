import BenchSuite
import Foundation
import MoECore
import Testing

@Suite struct BaselineLineTests {
  static let good = "torch gpus=2 tokens/gpu=8192 experts=32 H=2048 D=2048 k=2 dtype=bf16 impl=grouped median_ms=3.164 Mtokens/s=5.18"

  @Test func goodLine() throws {
    let line = try #require(try BaselineLine.parse(Self.good[...]))
    #expect(line == BaselineLine(gpus: 2, tokensPerGPU: 8192, experts: 32, hidden: 2048, ffn: 2048, topK: 2, dtype: "bf16", impl: "grouped", medianMs: 3.164))
    // The optional sizes may be absent.
    let short = try #require(try BaselineLine.parse("torch gpus=1 tokens/gpu=4096 experts=8 dtype=fp32 impl=loop median_ms=12.5\r"))
    #expect(short.hidden == nil && short.medianMs == 12.5 && short.impl == "loop")
  }

  /// Lines that are not result lines are skipped, whatever they hold.
  @Test(arguments: ["", "   ", "Traceback (most recent call last):", "torchrun gpus=2", "NCCL INFO median_ms=1", "[rank0]: torch gpus=2", "\u{1B}[0m"])
  func otherLinesAreSkipped(line: String) throws {
    #expect(try BaselineLine.parse(line[...]) == nil)
  }

  /// A result line without a field, or with a value that is not one, is an error naming the field.
  @Test(arguments: [
    ("torch tokens/gpu=8192 experts=32 dtype=bf16 impl=loop median_ms=1", "gpus", nil),
    ("torch gpus=2 experts=32 dtype=bf16 impl=loop median_ms=1", "tokens/gpu", nil),
    ("torch gpus=2 tokens/gpu=8192 experts=32 impl=loop median_ms=1", "dtype", nil),
    ("torch gpus=2 tokens/gpu=8192 experts=32 dtype=bf16 median_ms=1", "impl", nil),
    ("torch gpus=2 tokens/gpu=8192 experts=32 dtype=bf16 impl=loop", "median_ms", nil),
    ("torch gpus=2 tokens/gpu=8192 experts=32 dtype=bf16 impl=loop median_ms=", "median_ms", nil),
    ("torch gpus=two tokens/gpu=8192 experts=32 dtype=bf16 impl=loop median_ms=1", "gpus", "two"),
    ("torch gpus=2 tokens/gpu=0 experts=32 dtype=bf16 impl=loop median_ms=1", "tokens/gpu", "0"),
    ("torch gpus=2 tokens/gpu=8192 experts=32 dtype=bf16 impl=loop median_ms=nan", "median_ms", "nan"),
    ("torch gpus=2 tokens/gpu=8192 experts=32 dtype=bf16 impl=loop median_ms=-1", "median_ms", "-1"),
    ("torch gpus=2 tokens/gpu=8192 experts=32 H=x dtype=bf16 impl=loop median_ms=1", "H", "x"),
  ] as [(String, String, String?)])
  func brokenResultLines(line: String, field: String, value: String?) {
    #expect { try BaselineLine.parse(line[...]) } throws: { error in
      let problem = error as? BaselineLine.Problem
      return problem?.field == field && problem?.value == value && problem?.description.contains(field) == true
    }
  }

  /// The fastest impl for the point wins; lines of other sizes or dtypes do not count.
  @Test func bestPicksTheFastestMatchingImpl() {
    let point = SuitePoint(dtype: .bf16, gpus: 2, tokensPerGPU: 8192, experts: 32)
    let output = """
      [W init] some warning
      torch gpus=2 tokens/gpu=8192 experts=32 H=2048 D=2048 k=2 dtype=bf16 impl=loop median_ms=9.5 Mtokens/s=1.7
      torch gpus=2 tokens/gpu=8192 experts=32 H=2048 D=2048 k=2 dtype=fp32 impl=loop median_ms=1.0 Mtokens/s=16
      torch gpus=2 tokens/gpu=4096 experts=32 H=2048 D=2048 k=2 dtype=bf16 impl=grouped median_ms=1.5 Mtokens/s=5
      torch gpus=2 tokens/gpu=8192 experts=32 H=1024 D=2048 k=2 dtype=bf16 impl=grouped median_ms=1.1 Mtokens/s=5
      torch gpus=2 tokens/gpu=8192 experts=32 H=2048 D=2048 k=2 dtype=bf16 impl=grouped median_ms=3.164 Mtokens/s=5.18
      """
    #expect(BaselineLine.best(in: output, for: point, grid: .paper) == .measured(BaselineTiming(medianMs: 3.164, impl: "grouped")))
  }

  @Test func bestSaysWhyNothingMatched() {
    let point = SuitePoint(dtype: .bf16, gpus: 1, tokensPerGPU: 4096, experts: 8)
    guard case .missing(let none) = BaselineLine.best(in: "hello\n", for: point, grid: .paper) else { Issue.record(); return }
    #expect(none.contains("no result line"))
    guard case .missing(let other) = BaselineLine.best(in: Self.good, for: point, grid: .paper) else { Issue.record(); return }
    #expect(other.contains("1 result line(s), none for bf16 P=1 T=4096 E=8"))
    guard case .missing(let broken) = BaselineLine.best(in: "torch gpus=1\n", for: point, grid: .paper) else { Issue.record(); return }
    #expect(broken.contains("no tokens/gpu="))
  }
}

/// The baseline as a subprocess, with /bin/sh standing in for python (no python or GPU needed).
@Suite struct BaselineRunTests {
  static let point = SuitePoint(dtype: .fp32, gpus: 2, tokensPerGPU: 4096, experts: 16)

  func baseline(_ script: String, dir: String, timeout: Double = 30) throws -> Baseline {
    let path = dir + "/torch_moe.sh"
    try script.write(toFile: path, atomically: true, encoding: .utf8)
    return Baseline(python: "/bin/sh", script: path, grid: .small, warmup: 3, runs: 5, tf32: true, timeoutSeconds: timeout)
  }

  /// Every size and the protocol are passed; --tf32 only for fp32.
  @Test func arguments() throws {
    let b = Baseline(python: "python3", script: "t.py", grid: .paper, warmup: 32, runs: 32, tf32: true, timeoutSeconds: 1)
    #expect(b.arguments(for: Self.point) == [
      "python3", "t.py", "--gpus", "2", "--tokens", "4096", "--experts", "16", "--hidden", "2048", "--ffn", "2048",
      "--topk", "2", "--dtype", "fp32", "--warmup", "32", "--iters", "32", "--tf32",
    ])
    var bf16 = Self.point
    bf16.dtype = .bf16
    #expect(!b.arguments(for: bf16).contains("--tf32"))
  }

  /// The script's output is read back through the pipe: it echoes its own arguments into result
  /// lines, so the timing proves the command line arrived.
  @Test func readsTheResultLines() throws {
    try withTemporaryDirectory { dir in
      let b = try baseline("""
        echo "starting $*" >&2
        echo "torch gpus=$2 tokens/gpu=$4 experts=$6 H=$8 D=${10} k=${12} dtype=${14} impl=loop median_ms=7.25"
        echo "torch gpus=$2 tokens/gpu=$4 experts=$6 H=$8 D=${10} k=${12} dtype=${14} impl=grouped median_ms=6.5"
        """, dir: dir)
      #expect(b.run(Self.point) == .measured(BaselineTiming(medianMs: 6.5, impl: "grouped")))
    }
  }

  /// A crash is `missing`, naming the command and ending with the traceback's last lines.
  @Test func failureIsMissingWithTheCommandAndItsError() throws {
    try withTemporaryDirectory { dir in
      let b = try baseline("""
        echo "Traceback (most recent call last):" >&2
        echo "ModuleNotFoundError: No module named 'torch'" >&2
        exit 1
        """, dir: dir)
      guard case .missing(let why) = b.run(Self.point) else { Issue.record("expected missing"); return }
      #expect(why.contains("/bin/sh \(dir)/torch_moe.sh --gpus 2"))
      #expect(why.contains("exit status 1"))
      #expect(why.contains("No module named 'torch'"))
    }
  }

  @Test func noInterpreterIsMissing() throws {
    let b = Baseline(python: "/no/such/python3", script: "t.py", grid: .small, warmup: 1, runs: 1, tf32: false, timeoutSeconds: 5)
    guard case .missing(let why) = b.run(Self.point) else { Issue.record("expected missing"); return }
    #expect(why.contains("could not start /no/such/python3"))
  }

  /// Past the timeout the script and the processes it started are killed (by id), and the run
  /// returns about when the deadline passed.
  @Test func timeoutKillsTheProcessTree() throws {
    try withTemporaryDirectory { dir in
      let b = try baseline("""
        sleep 60 &
        echo $! > \(dir)/child.pid
        echo "torch gpus=1"
        wait
        """, dir: dir, timeout: 1)
      let clock = ContinuousClock()
      let start = clock.now
      let outcome = b.run(Self.point)
      #expect(clock.now - start < .seconds(10))
      guard case .missing(let why) = outcome else { Issue.record("expected missing"); return }
      #expect(why.contains("did not finish within 1 s"))
      let pid = try #require(Int32(try String(contentsOfFile: dir + "/child.pid", encoding: .utf8).filter(\.isNumber)))
      // The grandchild is gone (or a zombie about to be reaped by init): signal 0 fails or its state is Z.
      var gone = kill(pid, 0) != 0
      for _ in 0..<50 where !gone {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        gone = stat.isEmpty || stat.contains(") Z ")
        if !gone { usleep(20_000) }
      }
      #expect(gone, "sleep \(pid) survived the timeout")
    }
  }

  @Test func quoting() {
    #expect(Subprocess.quoted(["python3", "/a b/t.py", "--x", "it's", ""]) == "python3 '/a b/t.py' --x 'it'\\''s' ''")
  }
}

@Suite struct BaselineGPUTests {
  /// The baseline sees the GPUs FlashMoE used: nothing to set for 0…P−1; otherwise our indices,
  /// mapped through an inherited CUDA_VISIBLE_DEVICES.
  @Test(arguments: [
    ([0, 1, 2, 3], 2, nil, nil),
    ([0, 1], 1, "5,6", nil),
    ([2, 3], 2, nil, "2,3"),
    ([2, 3], 1, nil, "2"),
    ([1, 0], 2, nil, "1,0"),
    ([2, 3], 2, "4, 5,6,7", "6,7"),
    ([2, 3], 2, "", "2,3"),
  ] as [([Int], Int, String?, String?)])
  func visibleDevices(indices: [Int], gpus: Int, inherited: String?, expected: String?) {
    let b = Baseline(python: "p", script: "s", grid: .paper, warmup: 1, runs: 1, tf32: false, timeoutSeconds: 1, gpuIndices: indices)
    let point = SuitePoint(dtype: .bf16, gpus: gpus, tokensPerGPU: 4096, experts: 32)
    #expect(b.environment(for: point, inherited: inherited)["CUDA_VISIBLE_DEVICES"] == expected)
  }

  /// The child gets the overrides and keeps the rest of our environment.
  @Test func childEnvironment() throws {
    let result = try Subprocess.run(
      ["/bin/sh", "-c", "echo \"$CUDA_VISIBLE_DEVICES|$HOME\""], environment: ["CUDA_VISIBLE_DEVICES": "6,7"], timeoutSeconds: 10)
    #expect(result.succeeded)
    #expect(result.standardOutput == "6,7|\(ProcessInfo.processInfo.environment["HOME"] ?? "")\n")
  }
}
