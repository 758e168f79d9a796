import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// Prints each verification line as it comes and ends with the 'N passed, N failed' line the CI
/// log readers and people look for; a failure makes the command exit non-zero.
struct Tally {
  private(set) var passed = 0, failed = 0

  mutating func record(_ ok: Bool, _ line: String) {
    print(line)
    // Out at once: a rank that the launcher stops must not take its last lines with it.
    fflush(nil)
    if ok { passed += 1 } else { failed += 1 }
  }

  /// Runs one check; an error it throws is a failure printed as `FAIL  <label>: <error>`.
  mutating func check(_ label: String, _ body: () throws -> (ok: Bool, text: String)) {
    do {
      let outcome = try body()
      record(outcome.ok, outcome.text)
    } catch {
      record(false, "FAIL  \(label): \(error)")
    }
  }

  func finish() throws {
    print("\(passed) passed, \(failed) failed")
    if failed > 0 { throw ExitCode(1) }
  }
}
