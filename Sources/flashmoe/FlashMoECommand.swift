import ArgumentParser

@main
struct FlashMoECommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flashmoe",
    abstract: "Run, verify, benchmark and plan a Mixture-of-Experts layer (FlashDMoE design).",
    discussion: """
      Settings from the environment: FLASHMOE_BACKEND (auto|cpu|cuda), FLASHMOE_THREADS (CPU threads).
      Flags override them.
      """,
    subcommands: [Run.self, Bench.self, Verify.self, Soak.self, Plan.self, Info.self, Launch.self],
    defaultSubcommand: Run.self)
}
