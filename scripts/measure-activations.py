#!/usr/bin/python3
"""The accuracy of the kernels' activations (src/assembly/activation.ts), against mpmath at 30 digits.

    /usr/bin/python3 scripts/measure-activations.py      (after npm run build)

Runs scripts/activation-values.mjs for the kernels' values on fixed grids and prints, per function
and precision, the largest error in units in the last place of the result where |result| >= 1e-3
(the bulk; near a zero of the slope, ulps say nothing; exp: everywhere), and the largest absolute
error over the whole grid divided by max(1, |z|), in units of the dtype's epsilon (the measure a
tolerance uses).
The grid: 100,000 even points on [-20, 20] and 20,000 at +-10^[-8, 1.6]; exp(-z) on its whole clamp
range. docs/activations.md records the output.
"""
import os
import subprocess
import sys
import tempfile

import mpmath as mp
import numpy as np

mp.mp.dps = 30
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SQ = mp.sqrt(2 / mp.pi)


def silu(z):
    return z / (1 + mp.exp(-z))


def silu_slope(z):
    s = 1 / (1 + mp.exp(-z))
    return s * (1 + z * (1 - s))


def gelu(z):
    return z * mp.ncdf(z)


def gelu_slope(z):
    return mp.ncdf(z) + z * mp.npdf(z)


def tanh_u(z):
    return SQ * (z + mp.mpf("0.044715") * z ** 3)


def gelu_tanh(z):
    # z·σ(2u), the same function as z/2·(1 + tanh(u)) without its cancellation
    return z / (1 + mp.exp(-2 * tanh_u(z)))


def gelu_tanh_slope(z):
    s = 1 / (1 + mp.exp(-2 * tanh_u(z)))
    return s + z * s * (1 - s) * 2 * SQ * (1 + 3 * mp.mpf("0.044715") * z * z)


FUNCS = {
    "exp": (lambda z: mp.exp(-z), "exp(-z)"),
    "phi": (mp.ncdf, "Phi(z)"),
    "silu": (silu, "silu"),
    "silu_slope": (silu_slope, "silu'"),
    "gelu": (gelu, "gelu"),
    "gelu_slope": (gelu_slope, "gelu'"),
    "gelu-tanh": (gelu_tanh, "gelu-tanh"),
    "gelu-tanh_slope": (gelu_tanh_slope, "gelu-tanh'"),
}
EPS = {"f32": 2.0 ** -23, "f64": 2.0 ** -52}


def ulp(v, prec):
    a = abs(v)
    if prec == "f32":
        e = max(-126, int(np.floor(np.log2(a)))) if a > 0 else -126
        return 2.0 ** (e - 23)
    e = max(-1022, int(np.floor(np.log2(a)))) if a > 0 else -1022
    return 2.0 ** (e - 52)


def measure(d, prec, name):
    dt = np.float32 if prec == "f32" else np.float64
    grid = "exp_grid" if name == "exp" else "grid"
    z = np.fromfile(os.path.join(d, f"{prec}_{grid}.bin"), dtype=dt)
    v = np.fromfile(os.path.join(d, f"{prec}_{name}.bin"), dtype=dt)
    n = len(v)
    f = FUNCS[name][0]
    worst_ulp, worst_abs, at_ulp, at_abs = 0.0, 0.0, None, None
    for zi, vi in zip(z[:n].astype(np.float64), v.astype(np.float64)):
        r = f(mp.mpf(float(zi)))
        err = abs(mp.mpf(float(vi)) - r)
        rf = float(r)
        if abs(rf) >= 1e-3 or name == "exp":
            u = float(err) / ulp(rf, prec)
            if u > worst_ulp:
                worst_ulp, at_ulp = u, float(zi)
        a = float(err) / max(1.0, abs(float(zi))) / EPS[prec]
        if a > worst_abs:
            worst_abs, at_abs = a, float(zi)
    return worst_ulp, at_ulp, worst_abs, at_abs


def main():
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["node", os.path.join(ROOT, "scripts/activation-values.mjs"), d], check=True)
        print("| function | dtype | max ulp (|f| >= 1e-3) | at z | max |error| / max(1, |z|) | at z |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name in FUNCS:
            for prec in ("f32", "f64"):
                u, zu, a, za = measure(d, prec, name)
                absolute = "" if name == "exp" else f"{a:.2f} eps | {za:.4g}"
                print(f"| {FUNCS[name][1]} | {'float32' if prec == 'f32' else 'float64'} | {u:.2f} | {zu:.4g} | {absolute or '— | —'} |")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
