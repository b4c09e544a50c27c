"""The code generator: SymPy derivations -> Numba modules in generated/.

  printer     NumbaPrinter, SymPy's Python printer with _print_<Node> extensions
  nodes       statement nodes SymPy's codegen AST lacks (jitted functions, allocations)
  mathlib     vectorisable arcsin/arccos and the clamped correlation
  quadrature  graded Gauss-Legendre quadrature for expectations without a closed form
  builders    derived expressions -> generated functions (CSE, layer loops)
  module      rendering of one module
  targets     the list of generated modules
  writer      banner, hashes, atomic writes, diffs
  regenerate  `fieldgen regenerate [--check]`
"""
