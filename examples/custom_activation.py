"""A custom activation: swish with slope 2, phi(x) = x / (1 + exp(-2 x)).

``fieldgen.activation(name, expr)`` registers an activation from a SymPy-parsable expression in
x (parsed, never eval-ed); its expectations are computed by quadrature like tanh's. The result
is accepted wherever an activation name is.

    .venv/bin/python examples/custom_activation.py
"""

import numpy as np

import fieldgen

if not hasattr(fieldgen, "activation"):
    raise SystemExit(
        "this example needs fieldgen.activation (custom activations), "
        "which this version of fieldgen does not have yet"
    )

swish2 = fieldgen.activation("swish2", "x/(1 + exp(-2*x))")
K = fieldgen.kernel(swish2, r=0.3, sigma_w2=2.0, depth=50, K0=1.0)
print("swish2 kernel K^l at l = 0, 10, 50:", K[[0, 10, 50]])
assert K.shape == (51,) and np.all(np.isfinite(K)) and np.all(K > 0)

# A check that does not depend on the new code path: one layer against direct quadrature,
# K^1 = K^0 + r^2 (sigma_w^2 <phi(h)^2> + sigma_b^2) with h ~ N(0, K^0).
x, w = np.polynomial.hermite_e.hermegauss(80)  # probabilists' Hermite: weight e^{-x^2/2}
phi = x / (1 + np.exp(-2 * x))
expected = 1.0 + 0.3**2 * 2.0 * np.sum(w * phi**2) / np.sqrt(2 * np.pi)
print(f"K^1 = {K[1]:.10f}, direct quadrature {expected:.10f}")
assert abs(K[1] / expected - 1) < 1e-7
