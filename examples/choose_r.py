"""Choose the residual scale r for my network.

A 300-block erf network with weight variance sigma_w^2 = 2, and inputs whose correlation is 0.9:
which r makes the output correlation most sensitive to the input correlation, how wide is the
good range, and how does the answer move with depth and sigma_w^2?

    .venv/bin/python examples/choose_r.py
"""

import numpy as np

import fieldgen
from fieldgen.scan import depth_window, scan

ACTIVATION, SIGMA_W2, DEPTH, C0 = "erf", 2.0, 300, 0.9

# 1. The mean-field kernel of two inputs at a customary r: how much correlation survives?
K = fieldgen.kernel(ACTIVATION, r=0.2, sigma_w2=SIGMA_W2, depth=DEPTH, K0=[[1.0, C0], [C0, 1.0]])
c_out = K[-1, 0, 1] / np.sqrt(K[-1, 0, 0] * K[-1, 1, 1])
print(f"kernel at r = 0.2: K^L = {K[-1, 0, 0]:.3f}, output correlation c^L = {c_out:.4f}")

# 2. The sensitivity S(r) = dc^L/dc^0 on a grid of r (r broadcasts; S(0) = 1).
r = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
S = fieldgen.sensitivity(ACTIVATION, r=r, sigma_w2=SIGMA_W2, depth=DEPTH, c0=C0)
for ri, si in zip(r, S):
    print(f"  S(r = {ri:4.2f}) = {si:.4f}")

# 3. The optimum: numeric (Brent on the discrete network) and analytic (continuum limit).
best = fieldgen.optimal_r(ACTIVATION, sigma_w2=SIGMA_W2, depth=DEPTH, c0=C0)
approx = fieldgen.optimal_r(ACTIVATION, sigma_w2=SIGMA_W2, depth=DEPTH, c0=C0, method="analytic")
print(
    f"r* = {best.r_star:.4f} (S = {best.S_max:.4f}); "
    f"range of maximal sensitivity [{best.r_lo:.4f}, {best.r_hi:.4f}]"
)
print(f"analytic r* = {approx.r_star:.4f} with tau* = {approx.tau_star:.2f}, L0 = {approx.L0:.2f}")
print(f"0.1-0.3 inside the range: {best.contains(0.1, 0.3)}")
assert best.r_lo < best.r_star < best.r_hi
assert abs(approx.r_star / best.r_star - 1) < 1e-3

# 4. How r* moves: a small scan over depth and sigma_w^2 (without bias r* sigma_w is invariant,
#    so the exponent d ln r*/d ln sigma_w^2 is exactly -1/2).
rows = scan([ACTIVATION], [100, 300], [1.0, 2.0], c0=C0)
for row in rows:
    print(
        f"  depth {row.depth:4d}, sigma_w^2 = {row.sigma_w2}: r* = {row.r_star:.4f}, "
        f"exponent {row.exponent:+.3f}"
    )
assert all(abs(row.exponent + 0.5) < 1e-3 for row in rows)

# 5. The depths at which the customary 0.1-0.3 is inside the range, for this sigma_w^2.
window = depth_window(ACTIVATION, sigma_w2=SIGMA_W2, c0=C0)
print(f"0.1-0.3 is inside the range for depths {window[0]} to {window[1]}")
print(
    f"rule of thumb: r ~ sqrt(tau*/(sigma_w^2 L)) = "
    f"{np.sqrt(approx.tau_star / (SIGMA_W2 * DEPTH)):.3f}"
)
