#if canImport(Glibc)
import Glibc
#endif

/// A process and everything it started, found through /proc (Linux): a timed-out baseline is
/// stopped by the ids of its own processes, never by name.
enum ProcessTree {
  /// SIGKILL to `root` and all its descendants, found before any is killed (a killed parent's
  /// children would be re-parented and lost).
  static func kill(root: pid_t) {
    for pid in [root] + descendants(of: root) { _ = Glibc.kill(pid, SIGKILL) }
  }

  static func descendants(of root: pid_t) -> [pid_t] {
    var children: [pid_t: [pid_t]] = [:]
    for (pid, parent) in parents() { children[parent, default: []].append(pid) }
    var found: [pid_t] = []
    var queue = [root]
    while let next = queue.popLast() {
      for child in children[next] ?? [] where !found.contains(child) {
        found.append(child)
        queue.append(child)
      }
    }
    return found
  }

  /// Every process's parent, from the 4th field of /proc/PID/stat (after the parenthesised name,
  /// which may itself hold spaces and parentheses).
  static func parents() -> [(pid_t, pid_t)] {
    guard let dir = opendir("/proc") else { return [] }
    defer { closedir(dir) }
    var result: [(pid_t, pid_t)] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
        String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
      }
      guard let pid = pid_t(name), let stat = readSmallFile("/proc/\(name)/stat"),
        let close = stat.lastIndex(of: UInt8(ascii: ")"))
      else { continue }
      let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
      if fields.count > 1, let parent = pid_t(String(decoding: fields[1], as: UTF8.self)) {
        result.append((pid, parent))
      }
    }
    return result
  }

  private static func readSmallFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return n > 0 ? Array(buffer[0..<n]) : nil
  }
}
