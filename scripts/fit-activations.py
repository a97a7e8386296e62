#!/usr/bin/python3
"""Fit the polynomial coefficients of the activation kernels (src/assembly/activation.ts).

Run with Debian's Python, which has mpmath and NumPy:  /usr/bin/python3 scripts/fit-activations.py

Prints the coefficients the kernels use, as decimal literals that round to the same float32 or
float64 values, and the fit's own error (the kernels' measured errors, with their rounding, are in
docs/activations.md). Deterministic: the grids are fixed.

exp(-a): a = r' - n*ln2 with n = round(-a*log2(e)), |r'| <= ln2/2, and
    exp(-a) = 2^n * (1 - r'*q(r')),   q(r) ~ (1 - exp(-r))/r,
  q of degree 4 (float32, minimax of the relative error of 1 - r*q by Lawson's iteration) or 10
  (float64, Chebyshev interpolation, whose error is already far below 2^-53).
Phi(-|z|) (the tail of the normal distribution, Q), for GELU:
    Q(z) = u * exp(-z*z/2) * P(u - c),   u = 1/(1 + p*|z|),   c the middle of u's range,
  P of degree 9 with p = 1/4 on |z| <= 13.3 (float32: beyond it exp(-z*z/2) is below float32) or
  degree 21 with p = 3/16 on |z| <= 37.7 (float64), fitted for the relative error of Q. (In u - c
  the terms fall off, so Horner's rounding stays near one ulp.)
"""
import mpmath as mp
import numpy as np

mp.mp.dps = 50
LN2 = mp.log(2)


def lawson(A, target, weight, iters=2000):
    """Minimax fit of A@c ~ target in the error metric weight*(A@c - target) (Lawson's algorithm)."""
    w = np.full(len(target), 1.0 / len(target))
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(A * (weight * sw)[:, None], target * weight * sw, rcond=None)
        e = np.abs((A @ c - target) * weight) + 1e-300
        w = w * e
        w /= w.sum()
    return c, float(np.max(np.abs((A @ c - target) * weight)))


def q_target(r):
    return (1 - mp.exp(-r)) / r if r != 0 else mp.mpf(1)


def fit_exp32():
    rs = np.linspace(-float(LN2) / 2, float(LN2) / 2, 8001)
    q = np.array([float(q_target(mp.mpf(r))) for r in rs])
    e = np.exp(-rs)
    A = np.vander(rs, 5, increasing=True)
    c, err = lawson(A, q, rs / e)
    c = c.astype(np.float32).astype(np.float64)
    err = float(np.max(np.abs((A @ c - q) * rs / e)))
    return c, err


def fit_exp64():
    c, err = mp.chebyfit(q_target, [-LN2 / 2, LN2 / 2], 11, error=True)
    return [float(v) for v in reversed(c)], float(err * LN2 / 2)


def P_target(p):
    def P(u):
        z = (1 / u - 1) / p
        return mp.ncdf(-z) / (u * mp.exp(-z * z / 2))
    return P


def fit_phi32():
    p = mp.mpf(1) / 4
    zmax = 13.3
    P = P_target(p)
    umin = 1 / (1 + p * zmax)
    mid = float(np.float32((umin + 1) / 2))
    us = np.linspace(float(umin), 1.0, 6001)
    t = np.array([float(P(mp.mpf(u))) for u in us])
    A = np.vander(us - mid, 10, increasing=True)
    c, err = lawson(A, t, 1 / t)
    c = c.astype(np.float32).astype(np.float64)
    err = float(np.max(np.abs((A @ c - t) / t)))
    return float(p), mid, c, err


def fit_phi64():
    p = mp.mpf(3) / 16
    zmax = mp.mpf("37.7")
    P = P_target(p)
    umin = 1 / (1 + p * zmax)
    mid = mp.mpf(float((umin + 1) / 2))
    c, err = mp.chebyfit(lambda v: P(v + mid), [umin - mid, 1 - mid], 22, error=True)
    return float(p), float(mid), [float(v) for v in reversed(c)], float(err / P(umin))


def lit32(v):
    return np.format_float_positional(np.float32(v), unique=True, trim="-") if abs(v) >= 1e-4 else np.format_float_scientific(np.float32(v), unique=True, trim="-")


def lit64(v):
    return repr(float(v))


if __name__ == "__main__":
    c, err = fit_exp32()
    print(f"// exp f32: q(r) degree 4, fit error {err:.2e}")
    print("const EQ32 = [" + ", ".join(lit32(v) for v in c) + "];")
    c, err = fit_exp64()
    print(f"// exp f64: q(r) degree 10, fit error {err:.2e}")
    print("const EQ64 = [" + ", ".join(lit64(v) for v in c) + "];")
    p, mid, c, err = fit_phi32()
    print(f"// Q f32: p = {p}, c = {lit32(mid)}, P(u - c) degree 9, fit error {err:.2e}")
    print("const QP32 = [" + ", ".join(lit32(v) for v in c) + "];")
    p, mid, c, err = fit_phi64()
    print(f"// Q f64: p = {p}, c = {lit64(mid)}, P(u - c) degree 21, fit error {err:.2e}")
    print("const QP64 = [" + ", ".join(lit64(v) for v in c) + "];")
