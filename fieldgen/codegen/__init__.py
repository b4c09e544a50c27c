"""The code generator: SymPy derivations -> Numba modules in generated/.

printer     NumbaPrinter, SymPy's Python printer with _print_<Node> extensions
nodes       statement nodes SymPy's codegen AST lacks (jitted functions, allocations)
mathlib     vectorisable arcsin, the clamped correlation, the Cauchy-Schwarz clamp
quadrature  graded Gauss-Legendre quadrature for expectations without a closed form
builders    derived expressions -> generated functions (CSE, layer loops, path writer)
module      rendering of one module; helpers shared by all modules (generated/shared.py)
targets     the list of generated modules
writer      banner, hashes, atomic writes, diffs
regenerate  `fieldgen regenerate [--check]`
"""
