import Glibc
import Testing
@testable import MoECUDA

/// The bound on NVSHMEM's host barrier (which has none): a call that does not return in time
/// leaves its caller free within the bound; one that returns, or throws, is passed through.
@Suite("bounded call")
struct BoundedCallTests {
  struct Failure: Error, Equatable { let code: Int }

  @Test("a call that returns in time gives its result")
  func returnsInTime() throws {
    #expect(try BoundedCall.run(timeout: .seconds(5)) { 6 * 7 } == 42)
  }

  @Test("a call that throws in time rethrows")
  func throwsInTime() {
    #expect(throws: Failure(code: 3)) { _ = try BoundedCall.run(timeout: .seconds(5)) { () throws -> Int in throw Failure(code: 3) } }
  }

  @Test("a blocked call leaves the caller free within the bound")
  func blockedCallTimesOut() throws {
    let clock = ContinuousClock()
    let start = clock.now
    let result = try BoundedCall.run(timeout: .milliseconds(200)) { () -> Int in
      usleep(3_000_000)
      return 1
    }
    let elapsed = clock.now - start
    #expect(result == nil)
    #expect(elapsed >= .milliseconds(200) && elapsed < .milliseconds(1500), "\(elapsed)")
  }
}
