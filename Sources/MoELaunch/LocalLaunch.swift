#if canImport(Glibc)
import Glibc
#endif

/// `flashmoe launch`'s plan: N copies of one program on this machine, each told its rank the way
/// torchrun would, plus the job token and rendezvous address that LaunchEnvironment reads back.
public enum LocalLaunch {
  /// One command per rank, all with the same arguments; rank r gets RANK = LOCAL_RANK = r.
  public static func commands(
    executable: String, arguments: [String], worldSize: Int, rendezvous: RendezvousAddress, token: String
  ) -> [ChildCommand] {
    (0..<worldSize).map { rank in
      ChildCommand(
        executable: executable, arguments: arguments,
        environment: [
          "RANK": "\(rank)", "WORLD_SIZE": "\(worldSize)", "LOCAL_RANK": "\(rank)", "LOCAL_WORLD_SIZE": "\(worldSize)",
          LaunchEnvironment.tokenVariable: token, LaunchEnvironment.rendezvousVariable: rendezvous.description,
        ])
    }
  }

  /// This process's executable (the /proc/self/exe link's target), so the ranks run the very
  /// binary the user started, whatever PATH says.
  public static func ownExecutable() -> String? {
    var buffer = [CChar](repeating: 0, count: 4097)
    let n = readlink("/proc/self/exe", &buffer, 4096)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
