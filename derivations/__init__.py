"""SymPy derivations of the finite-size field theory of residual networks.

Modules, in the order the theory builds up:
  model         symbols, parameters, blocks and input modes
  expectation   Gaussian expectations as SymPy objects (Price's theorem as their derivative)
  activations   phi for each supported activation
  closed_forms  closed forms of the expectations, derived by integrating Price's theorem
  gauss         the expectations each activation uses: closed form or quadrature node
  action        the action S[C, C~], its cumulant expansion and the saddle-point equations
  meanfield     the mean-field (saddle-point) kernel recursion for each block and input mode
  response      per-layer Jacobian, forward-mode response chi^{L,0}, sensitivity S = dc^L/dc^0
  continuum     continuum flow in tau = r^2 sigma_w^2 l, optimum condition, first-order L0
  saturated     the sign limit of the optimal residual scale

Nothing here is imported by the generated evaluators; ``fieldgen regenerate`` prints these
expressions into ``generated/``.
"""
