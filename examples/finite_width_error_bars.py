"""Finite-width error bars on a kernel: the one-loop theory against simulated networks.

At width N the empirical kernel Khat^l of a network is random: its mean is K^l + shift/N and its
standard deviation sqrt(C[l, l]/N), with the mean-field kernel K (``kernel``), the one-loop mean
shift (``kernel_mean_shift``) and covariance (``kernel_covariance``), both multiplied by N. This
script draws real networks and checks that the prediction holds.

    .venv/bin/python examples/finite_width_error_bars.py
"""

import numpy as np

import fieldgen

net = dict(r=0.5, sigma_w2=1.5, depth=8, K0=1.0, sigma_b2=0.1)
WIDTH, SAMPLES = 128, 3000

K = fieldgen.kernel("erf", **net)
C = fieldgen.kernel_covariance("erf", **net)  # N Cov(Khat^l, Khat^l'), (L+1, L+1)
shift = fieldgen.kernel_mean_shift("erf", **net)  # N (E Khat^l - K^l), (L+1,)
mean_theory = K + shift / WIDTH
std_theory = np.sqrt(np.diag(C) / WIDTH)

Khat = fieldgen.simulate("erf", width=WIDTH, samples=SAMPLES, seed=1, method="walk", **net)
mean_sim = Khat.mean(axis=0)
std_sim = Khat.std(axis=0, ddof=1)

print(f"erf, width {WIDTH}, {SAMPLES} networks; per layer: theory vs simulation")
print(" l   K^l + shift/N     mean(Khat)    sd theory   sd simulated")
for l in range(net["depth"] + 1):
    print(
        f"{l:2d}  {mean_theory[l]:12.5f}  {mean_sim[l]:12.5f}  {std_theory[l]:10.5f}"
        f"  {std_sim[l]:10.5f}"
    )

# The standard deviation agrees to a few percent (its own sampling error is ~1/sqrt(2 S), plus
# the O(1/N) next order); the mean within four standard errors of the simulated mean.
L = net["depth"]
assert abs(std_sim[L] / std_theory[L] - 1) < 0.08
assert abs(mean_sim[L] - mean_theory[L]) < 4 * std_sim[L] / np.sqrt(SAMPLES)

# Two inputs: the same with 2x2 groups, C[l, m, a, b, c, d] = N Cov(Khat^l_ab, Khat^m_cd).
pair = dict(net, K0=[[1.0, 0.5], [0.5, 1.0]])
C2 = fieldgen.kernel_covariance("erf", **pair)
print(
    "two inputs: N Var(Khat^L_12) =",
    round(float(C2[L, L, 0, 1, 0, 1]), 4),
    "; covariance shape",
    C2.shape,
)
