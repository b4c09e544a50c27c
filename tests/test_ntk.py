"""The neural tangent kernel against the empirical NTK of finite networks.

The empirical NTK of one network is computed exactly: Theta_hat^l(a, b) (an N x N matrix over
output neurons) follows from the chain rule, Theta_hat^l = J_a Theta_hat^{l-1} J_b^T + (the
gradients of layer l's own parameters), with J the exact layer Jacobian; its diagonal mean is one
sample of the NTK of an output neuron. A finite-difference test checks this against J J^T of the
explicit parameter Jacobian of a tiny network.
"""

import numpy as np
import pytest
import sympy as sp
from helpers import extrapolate_in_inverse_width, mean_and_se, seed_of
from scipy.special import erf, ndtr

import fieldgen

SQRT_PI = np.sqrt(np.pi)
PHI = {
    "erf": (erf, lambda x: 2 / SQRT_PI * np.exp(-x * x)),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
    # A preset whose derivative SymPy writes with a rescaled argument, Heaviside(99 x/100).
    "leaky_relu": (lambda x: np.maximum(x, x / 100), lambda x: np.where(x > 0, 1.0, 0.01)),
    # A long closed form (its averages are not simplified when derived).
    "gelu": (
        lambda x: x * ndtr(x),
        lambda x: ndtr(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi),
    ),
}


def forward(activation, block, r, sigma_w2, sigma_b2, h0, weights, biases):
    """Pre-activations of every layer, (L+1, n_inputs, N), and the fields z of the reduced block."""
    phi, _ = PHI[activation]
    hs, zs = [h0], []
    for w, beta in zip(weights, biases):
        N = h0.shape[1]
        W = np.sqrt(sigma_w2) * w / np.sqrt(N)
        b = np.sqrt(sigma_b2) * beta
        h = hs[-1]
        if block == "full":
            hs.append(h + r * (phi(h) @ W.T + b))
        else:
            z = h @ W.T + b
            zs.append(z)
            hs.append(h + r * phi(z))
    return hs, zs


def empirical_ntk(
    activation, block, r, sigma_w2, sigma_b2, h0, theta0, weights, biases, identity_path=True
):
    """Exact NTK matrices Theta_hat^L(a, b) (n_inputs, n_inputs, N, N) of one network."""
    _, dphi = PHI[activation]
    phi = PHI[activation][0]
    hs, zs = forward(activation, block, r, sigma_w2, sigma_b2, h0, weights, biases)
    n, N = h0.shape
    theta = theta0
    eye = np.eye(N) if identity_path else np.zeros((N, N))
    for l, w in enumerate(weights):
        W = np.sqrt(sigma_w2) * w / np.sqrt(N)
        h = hs[l]
        if block == "full":
            J = eye + r * W[None] * dphi(h)[:, None, :]  # (n, N, N)
            g = phi(h)
            direct = r * r * (sigma_w2 * g @ g.T / N + sigma_b2)  # (n, n)
            direct = direct[:, :, None, None] * np.eye(N)
        else:
            d = dphi(zs[l])  # (n, N)
            J = eye + r * d[:, :, None] * W[None]
            outer = r * r * (sigma_w2 * h @ h.T / N + sigma_b2)
            direct = outer[:, :, None, None] * (
                d[:, None, :, None] * d[None, :, :, None] * np.eye(N)
            )
        theta = J[:, None] @ theta @ np.swapaxes(J, 1, 2)[None] + direct
    return theta


def sample_ntk(
    activation,
    block,
    r,
    sigma_w2,
    sigma_b2,
    depth,
    x,
    width,
    samples,
    seed,
    input="layer",
    identity_path=True,
):
    """(samples, n, n): mean over output neurons of Theta_hat^depth, one network each."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    out = np.empty((samples, n, n))
    for s in range(samples):
        if input == "layer":
            w0 = rng.standard_normal((width, d))
            beta0 = rng.standard_normal(width)
            h0 = np.sqrt(sigma_w2) * x @ w0.T / np.sqrt(d) + np.sqrt(sigma_b2) * beta0
            k0 = sigma_w2 * x @ x.T / d + sigma_b2
            theta0 = k0[:, :, None, None] * np.eye(width)
        else:  # x holds a Cholesky factor of K0: h0 ~ N(0, K0) per neuron, no input parameters
            h0 = x @ rng.standard_normal((d, width))
            theta0 = np.zeros((n, n, width, width))
        weights = [rng.standard_normal((width, width)) for _ in range(depth)]
        biases = [rng.standard_normal(width) for _ in range(depth)]
        theta = empirical_ntk(
            activation, block, r, sigma_w2, sigma_b2, h0, theta0, weights, biases, identity_path
        )
        out[s] = np.einsum("abkk->ab", theta) / width
    return out


def test_exact_ntk_matches_finite_difference_jacobian():
    """The chain-rule NTK of a tiny network equals J J^T of its finite-difference Jacobian."""
    rng = np.random.default_rng(1)
    N, depth, r, sw2, sb2 = 4, 2, 0.7, 1.3, 0.2
    x = rng.standard_normal((2, 3))
    for activation, block in (("erf", "full"), ("erf", "reduced")):
        params = [rng.standard_normal((N, 3)), rng.standard_normal(N)]
        for _ in range(depth):
            params += [rng.standard_normal((N, N)), rng.standard_normal(N)]
        flat = np.concatenate([p.ravel() for p in params])

        def output(v):
            ps, at = [], 0
            for p in params:
                ps.append(v[at : at + p.size].reshape(p.shape))
                at += p.size
            h0 = np.sqrt(sw2) * x @ ps[0].T / np.sqrt(3) + np.sqrt(sb2) * ps[1]
            hs, _ = forward(activation, block, r, sw2, sb2, h0, ps[2::2], ps[3::2])
            return hs[-1]  # (2, N)

        eps = 1e-6
        jac = np.stack(
            [
                (output(flat + eps * e) - output(flat - eps * e)) / (2 * eps)
                for e in np.eye(flat.size)
            ],
            axis=-1,
        )  # (2, N, P)
        fd = np.einsum("akp,bmp->abkm", jac, jac)
        k0 = sw2 * x @ x.T / 3 + sb2
        theta0 = k0[:, :, None, None] * np.eye(N)
        h0 = np.sqrt(sw2) * x @ params[0].T / np.sqrt(3) + np.sqrt(sb2) * params[1]
        exact = empirical_ntk(
            activation, block, r, sw2, sb2, h0, theta0, params[2::2], params[3::2]
        )
        np.testing.assert_allclose(exact, fd, rtol=1e-6, atol=1e-7)


def test_derived_neuron_gradients_match_finite_differences():
    """The derivation's one-neuron derivatives (the chain rule it averages) by finite differences."""
    from fieldgen.derivations import model, ntk

    values = {
        model.r: 0.6,
        model.sigma_w2: 1.4,
        model.sigma_b2: 0.3,
        model.width: 7,
        ntk._h[0]: 0.2,
        ntk._u[0]: -0.4,
        ntk._rest[0]: 0.5,
        ntk._w: 0.8,
        ntk._beta: -0.3,
    }
    for block in ("full", "reduced"):
        F, z = ntk.neuron(block, "erf", 0)
        grads = ntk.gradients(block, "erf")
        zval = float(z.subs(values))
        for var, d in (
            (ntk._w, grads.d_weight[0]),
            (ntk._beta, grads.d_bias[0]),
            (ntk._h[0], grads.d_identity[0]),
            (ntk._u[0], grads.d_below[0]),
        ):
            f = sp.lambdify(var, F.subs({k: v for k, v in values.items() if k != var}))
            eps = 1e-6
            fd = (f(values[var] + eps) - f(values[var] - eps)) / (2 * eps)
            derived = float(d.subs({ntk._z[0]: zval}).subs(values))
            assert fd == pytest.approx(derived, rel=1e-7, abs=1e-9), (block, var)


def _theory_without_identity(activation, block, r, sigma_w2, sigma_b2, depth, K0, theta0):
    """The NTK recursion with the identity path's contribution dropped (negative control)."""
    from fieldgen.derivations import closed_forms, model, ntk

    lm = ntk.layer_map(block, activation, 2, identity_path=False)
    f = sp.lambdify(
        lm.state,
        [
            closed_forms.close(u).subs(
                {model.r: r, model.sigma_w2: sigma_w2, model.sigma_b2: sigma_b2}
            )
            for u in lm.update
        ],
        modules=[{"Correlation": lambda a, b, c: min(1.0, max(-1.0, c / np.sqrt(a * b)))}, "math"],
    )
    n = K0.shape[0]
    out = np.empty((n, n))
    for a in range(n):
        for b in range(a, n):
            state = (
                [K0[a, a], K0[b, b], K0[a, b]]
                + [0.0] * (len(lm.kernel_map.state) - 3)
                + [theta0[a, a], theta0[b, b], theta0[a, b]]
            )
            for _ in range(depth):
                state = [float(v) for v in f(*state)]
            out[a, b] = out[b, a] = state[-1]
    return out


CASES = [
    ("erf", "full", 0.6, 1.5, 0.1, "layer"),
    ("relu", "reduced", 0.5, 1.2, 0.2, "kernel"),
    ("leaky_relu", "reduced", 0.5, 1.2, 0.2, "kernel"),
    ("gelu", "full", 0.6, 1.5, 0.1, "layer"),
]


@pytest.mark.parametrize("activation,block,r,sigma_w2,sigma_b2,input", CASES)
def test_ntk_matches_empirical_ntk_of_finite_networks(
    activation, block, r, sigma_w2, sigma_b2, input
):
    """Mean of the exact empirical NTK at N = 16, 32, 64, extrapolated linearly in 1/N, within
    4 standard errors of the theory; the theory without the identity path is rejected."""
    depth, widths, samples = 4, (16, 32, 64), 150
    rng = np.random.default_rng(seed_of(activation, block))
    x = rng.standard_normal((3, 4))
    if input == "layer":
        K0 = x @ x.T / x.shape[1]
        sim_x = x
        theta0 = sigma_w2 * K0 + sigma_b2
        k_start = theta0
    else:
        K0 = x @ x.T / x.shape[1]
        sim_x = np.linalg.cholesky(K0)
        theta0 = np.zeros_like(K0)
        k_start = K0
    kw = dict(r=r, sigma_w2=sigma_w2, sigma_b2=sigma_b2, depth=depth, block=block, input=input)
    theory = fieldgen.ntk(activation, K0=K0, **kw)[-1]
    wrong = _theory_without_identity(
        activation, block, r, sigma_w2, sigma_b2, depth, k_start, theta0
    )
    means, errors = [], []
    for N in widths:
        m, se = mean_and_se(
            sample_ntk(
                activation,
                block,
                r,
                sigma_w2,
                sigma_b2,
                depth,
                sim_x,
                N,
                samples,
                seed_of(activation, block, N),
                input=input,
            )
        )
        means.append(m)
        errors.append(se)
    means, errors = np.array(means), np.array(errors)
    iu = np.triu_indices(3)
    for a, b in zip(*iu):
        limit, se = extrapolate_in_inverse_width(widths, means[:, a, b], errors[:, a, b])
        assert abs(limit - theory[a, b]) < 4 * se, (a, b, limit, se, theory[a, b])
    z_wrong = max(
        abs(extrapolate_in_inverse_width(widths, means[:, a, b], errors[:, a, b])[0] - wrong[a, b])
        / extrapolate_in_inverse_width(widths, means[:, a, b], errors[:, a, b])[1]
        for a, b in zip(*iu)
    )
    assert z_wrong > 4, z_wrong


def test_ntk_shapes_and_one_input_consistency():
    G = np.array([[1.0, 0.4, 0.1], [0.4, 1.3, -0.2], [0.1, -0.2, 0.8]])
    kw = dict(r=0.3, sigma_w2=1.0, depth=10)
    T = fieldgen.ntk("erf", K0=G, **kw)
    assert T.shape == (11, 3, 3)
    assert fieldgen.ntk("erf", K0=G[1, 1], **kw) == pytest.approx(T[:, 1, 1], rel=1e-14)
    np.testing.assert_allclose(fieldgen.ntk("erf", K0=G[:2, :2], **kw), T[:, :2, :2], rtol=1e-14)
    assert np.all(T[0] == 0)  # input="kernel": no trainable input layer
    TL = fieldgen.ntk("erf", K0=G, input="layer", layers=[0, 10], **kw)
    np.testing.assert_allclose(TL[0], 1.0 * G)  # Theta^0 = K^0 = sigma_w2 G + sigma_b2
    grid = fieldgen.ntk("relu", K0=G, r=[0.1, 0.2], sigma_w2=1.0, depth=3)
    assert grid.shape == (2, 4, 3, 3)


def test_linear_full_block_ntk_closed_form():
    """phi = identity: Theta^l = (1 + g) Theta^{l-1} + r^2 (sigma_w2 K^{l-1} + sigma_b2), g = r^2 sigma_w2,
    and K^l = (1 + g) K^{l-1} + r^2 sigma_b2: an exact limit."""
    r, sw2, sb2, L, k0 = 0.4, 1.2, 0.3, 6, 0.7
    g = r * r * sw2
    K, T = k0, 0.0
    for _ in range(L):
        K, T = (1 + g) * K + r * r * sb2, (1 + g) * T + r * r * (sw2 * K + sb2)
    got = fieldgen.ntk("linear", r=r, sigma_w2=sw2, sigma_b2=sb2, depth=L, K0=k0)
    assert got[-1] == pytest.approx(T, rel=1e-13)
