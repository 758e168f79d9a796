/// One place in a kernel's SASS where an instruction other than HGMMA reads or writes an
/// accumulator register of a wgmma group that has not been waited for.
public struct WGMMAHazard: Sendable, Equatable, CustomStringConvertible {
  /// 1-based line of the disassembly.
  public let line: Int
  public let instruction: String
  /// The in-flight accumulator registers the instruction names (R numbers).
  public let registers: [Int]

  public var description: String { "line \(line): \(instruction) (in-flight accumulators \(registers.map { "R\($0)" }.joined(separator: ", ")))" }
}

/// Reads `nvdisasm -c` output for wgmma accumulator hazards. PTX forbids touching a wgmma's
/// accumulators before `wgmma.wait_group` retires it, and ptxas is meant to serialise rather than
/// emit such code, but NVRTC 13.0's ptxas, given PTX that obeyed the rule, hoisted the epilogue's
/// F2FP conversions above the last WARPGROUP.DEPBAR of a tile GEMM whose k loop was unrolled by two:
/// the layer was wrong on an H200 (relative L2 error 0.13, fifth session) with no advisory in the
/// log. This reads the SASS the way the hardware runs it: along every path of the control-flow
/// graph (loops included), HGMMA puts its accumulators in flight, `WARPGROUP.DEPBAR.LE gsb0, K`
/// retires all but the last K committed groups (a group ends at the HGMMA marked `gsb0`), and any
/// other instruction naming an in-flight register is a hazard.
public enum WGMMAHazards {
  public static func find(inSASS sass: String) -> [WGMMAHazard] {
    let program = Program(sass)
    guard !program.instructions.isEmpty else { return [] }
    // Forward dataflow to a fixed point: the state before each instruction joins its predecessors'.
    var before = [InFlight?](repeating: nil, count: program.instructions.count)
    for entry in program.entries { before[entry] = InFlight() }
    var work = program.entries
    while let index = work.popLast() {
      guard let state = before[index] else { continue }
      let after = state.after(program.instructions[index])
      for next in program.successors[index] {
        let joined = before[next].map { $0.joined(with: after) } ?? after
        if joined != before[next] {
          before[next] = joined
          work.append(next)
        }
      }
    }
    var hazards: [WGMMAHazard] = []
    for (index, instruction) in program.instructions.enumerated() where instruction.accumulators == nil {
      guard let state = before[index] else { continue }
      let inFlight = state.all.intersection(instruction.registers)
      if !inFlight.isEmpty {
        hazards.append(WGMMAHazard(line: instruction.line, instruction: instruction.text, registers: inFlight.members))
      }
    }
    return hazards
  }

  /// One SASS instruction with what the analysis needs of it.
  struct Instruction {
    let line: Int
    let text: String
    /// HGMMA: the accumulator registers it writes; nil for every other instruction.
    let accumulators: RegisterSet?
    /// HGMMA marked `gsb0`: the last of its group.
    let endsGroup: Bool
    /// `WARPGROUP.DEPBAR.LE gsb0, K`: K.
    let waitKeeps: Int?
    /// Registers the operands name (with the widths of `.64` / `.128` forms).
    let registers: RegisterSet
    let target: String?
    let conditional: Bool
    let endsFlow: Bool
  }

  /// The instructions in order, label positions, and each instruction's successors.
  struct Program {
    var instructions: [Instruction] = []
    var successors: [[Int]] = []
    var entries: [Int] = []

    init(_ sass: String) {
      var labels: [String: Int] = [:]
      var functionStarts: [Int] = []
      for (number, raw) in sass.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let line = raw.trimmingWhitespace()
        if line.hasSuffix(":"), !line.hasPrefix("/*") {
          let name = String(line.dropLast())
          labels[name] = instructions.count
          if name.hasPrefix(".text.") { functionStarts.append(instructions.count) }
          continue
        }
        guard let close = line.range(of: "*/"), line.hasPrefix("/*") else { continue }
        var text = line[close.upperBound...].trimmingWhitespace()
        if text.hasSuffix(";") { text = String(text.dropLast()).trimmingWhitespace() }
        guard !text.isEmpty else { continue }
        instructions.append(Self.parse(text, line: number + 1))
      }
      entries = functionStarts.isEmpty ? [0] : functionStarts.filter { $0 < instructions.count }
      successors = instructions.indices.map { index in
        let instruction = instructions[index]
        var next: [Int] = []
        if let target = instruction.target, let position = labels[target], position < instructions.count {
          next.append(position)
        }
        if !instruction.endsFlow || instruction.conditional, index + 1 < instructions.count {
          next.append(index + 1)
        }
        return next
      }
    }

    static func parse(_ text: String, line: Int) -> Instruction {
      var body = Substring(text)
      var conditional = false
      if body.hasPrefix("@") {
        conditional = true
        body = body.drop { $0 != " " }.dropFirst()
      }
      let opcode = String(body.prefix { $0 != " " })
      let operands = body.dropFirst(opcode.count)
      let isHGMMA = opcode.hasPrefix("HGMMA")
      var accumulators: RegisterSet?
      if isHGMMA, let first = Self.registerNames(in: operands).first {
        // HGMMA.64xNxK.F32.*: an m64nN tile of fp32 accumulators is N/2 registers a thread
        // (N/4 for .F16 accumulators).
        let n = opcode.split(separator: ".").dropFirst().first.flatMap { shape in
          shape.split(separator: "x").dropFirst().first.flatMap { Int($0) }
        } ?? 0
        let count = opcode.contains(".F16.") && !opcode.contains(".F32.") ? n / 4 : n / 2
        accumulators = RegisterSet(first.number..<first.number + max(count, 1))
      }
      var waitKeeps: Int?
      if opcode == "WARPGROUP.DEPBAR.LE", let hex = operands.split(separator: ",").last?.trimmingWhitespace(),
         hex.hasPrefix("0x") {
        waitKeeps = Int(hex.dropFirst(2), radix: 16)
      }
      // Widths the operands do not spell: the opcode's .64 / .128 (data operands, not addresses),
      // fp64 (D*), and the 64-bit destinations of CS2R and of .WIDE multiplies (whose addend is
      // 64-bit too).
      let width = opcode.contains(".128") ? 4 : opcode.contains(".64") || opcode.hasPrefix("D") ? 2 : 1
      let names = Self.registerNames(in: operands)
      var registers = RegisterSet()
      for (k, name) in names.enumerated() {
        var span = name.pair ? 2 : (name.inBrackets ? 1 : width)
        if k == 0 && opcode.hasPrefix("CS2R") { span = 2 }
        if (k == 0 || k == names.count - 1) && opcode.contains(".WIDE") && !name.inBrackets { span = 2 }
        registers.insert(name.number..<name.number + span)
      }
      var target: String?
      let branches = opcode.hasPrefix("BRA") || opcode.hasPrefix("BRX") || opcode.hasPrefix("JMP")
      var predicateOperand = false
      if branches, let open = operands.range(of: "`("), let close = operands[open.upperBound...].range(of: ")") {
        target = String(operands[open.upperBound..<close.lowerBound])
        // `BRA.U !UP0, `(...)`: a predicate among the operands makes the branch conditional too.
        predicateOperand = operands[..<open.lowerBound].contains(",")
      }
      let divergent = opcode.hasPrefix("BRA.DIV") || predicateOperand
      let endsFlow = (branches && !divergent) || opcode.hasPrefix("EXIT") || opcode.hasPrefix("RET")
      return Instruction(
        line: line, text: text, accumulators: accumulators, endsGroup: isHGMMA && operands.contains("gsb0"),
        waitKeeps: waitKeeps, registers: registers, target: target, conditional: conditional || divergent,
        endsFlow: endsFlow)
    }

    /// `R<n>` operands (not `RZ`, not uniform `UR<n>`), whether written `R<n>.64`, and whether inside
    /// an address's brackets (where `.128` of the opcode says nothing of the register's width).
    static func registerNames(in operands: Substring) -> [(number: Int, pair: Bool, inBrackets: Bool)] {
      var names: [(Int, Bool, Bool)] = []
      let characters = Array(operands)
      var depth = 0
      var i = 0
      while i < characters.count {
        let c = characters[i]
        if c == "[" { depth += 1 } else if c == "]" { depth = max(depth - 1, 0) }
        let boundary = i == 0 || !(characters[i - 1].isLetter || characters[i - 1].isNumber || characters[i - 1] == "_")
        if c == "R", boundary, i + 1 < characters.count, characters[i + 1].isNumber {
          var j = i + 1
          var value = 0
          while j < characters.count, let digit = characters[j].wholeNumberValue, characters[j].isASCII {
            value = value * 10 + digit
            j += 1
          }
          let pair = j + 2 < characters.count && characters[j] == "." && characters[j + 1] == "6" && characters[j + 2] == "4"
          names.append((value, pair, depth > 0))
          i = j
          continue
        }
        i += 1
      }
      return names
    }
  }

  /// The groups in flight before an instruction: committed groups, most recent last, and the one
  /// still being issued.
  struct InFlight: Equatable {
    var groups: [RegisterSet] = []
    var open = RegisterSet()

    var all: RegisterSet { groups.reduce(open) { $0.union($1) } }

    func after(_ instruction: Instruction) -> InFlight {
      var next = self
      if let accumulators = instruction.accumulators {
        next.open = next.open.union(accumulators)
        if instruction.endsGroup {
          next.groups.append(next.open)
          next.open = RegisterSet()
        }
      } else if let keep = instruction.waitKeeps {
        next.groups = Array(next.groups.suffix(keep))
      }
      return next
    }

    /// Two paths meet: groups aligned from the most recent, each the union.
    func joined(with other: InFlight) -> InFlight {
      let count = max(groups.count, other.groups.count)
      var merged: [RegisterSet] = []
      for k in (0..<count).reversed() {
        let a = k < groups.count ? groups[groups.count - 1 - k] : RegisterSet()
        let b = k < other.groups.count ? other.groups[other.groups.count - 1 - k] : RegisterSet()
        merged.append(a.union(b))
      }
      return InFlight(groups: merged, open: open.union(other.open))
    }
  }

  /// A set of the 256 general registers R0...R255.
  struct RegisterSet: Equatable {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    init() {}
    init(_ range: Range<Int>) { insert(range) }

    static func == (a: RegisterSet, b: RegisterSet) -> Bool { a.words == b.words }

    mutating func insert(_ range: Range<Int>) {
      for r in range where r >= 0 && r < 256 {
        let bit = UInt64(1) << UInt64(r % 64)
        switch r / 64 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
      }
    }

    func union(_ o: RegisterSet) -> RegisterSet {
      var s = self
      s.words = (words.0 | o.words.0, words.1 | o.words.1, words.2 | o.words.2, words.3 | o.words.3)
      return s
    }

    func intersection(_ o: RegisterSet) -> RegisterSet {
      var s = self
      s.words = (words.0 & o.words.0, words.1 & o.words.1, words.2 & o.words.2, words.3 & o.words.3)
      return s
    }

    var isEmpty: Bool { words == (0, 0, 0, 0) }

    var members: [Int] {
      let all = [words.0, words.1, words.2, words.3]
      return (0..<256).filter { all[$0 / 64] & (UInt64(1) << UInt64($0 % 64)) != 0 }
    }
  }
}

extension StringProtocol {
  fileprivate func trimmingWhitespace() -> String {
    String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
  }
}
