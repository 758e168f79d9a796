import Dispatch

/// Pointers handed to worker threads. Each worker writes a disjoint part, so sharing is safe.
struct SharedPointer<T>: @unchecked Sendable {
  let base: UnsafeMutablePointer<T>
  init(_ base: UnsafeMutablePointer<T>) { self.base = base }
  subscript(i: Int) -> T {
    get { base[i] }
    nonmutating set { base[i] = newValue }
  }
}

/// Splits 0..<count into contiguous chunks and runs `body` on them over `threads` threads.
func parallelChunks(_ count: Int, threads: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
  guard count > 0 else { return }
  let chunks = max(1, min(threads * 4, count / max(1, minimumChunk)))
  if chunks == 1 || threads == 1 {
    body(0..<count)
    return
  }
  let per = (count + chunks - 1) / chunks
  withoutActuallyEscaping(body) { body in
    let box = UncheckedBox(body)
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
      let start = c * per
      let end = min(count, start + per)
      if start < end { box.value(start..<end) }
    }
  }
}

struct UncheckedBox<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
