/**
 * The activations in float64, from their textbook definitions: the reference of the fused kernels
 * (tests, verify, gradcheck). Independent of the kernels' polynomials (src/assembly/activation.ts):
 * Φ comes from erfc by its power series and continued fraction, with Math.exp and Math.tanh.
 *
 *   silu(z)      = z·σ(z),                           silu'(z)      = σ(z)·(1 + z·(1 − σ(z)))
 *   gelu(z)      = z·Φ(z),                           gelu'(z)      = Φ(z) + z·φ(z)
 *   gelu-tanh(z) = z/2·(1 + tanh(u)),                gelu-tanh'(z) = (1 + tanh(u))/2 + z/2·(1 − tanh²(u))·u'
 *                  u = √(2/π)·(z + 0.044715·z³),                     u' = √(2/π)·(1 + 3·0.044715·z²)
 */
import type { Activation } from "../core/activation.js";

const SQRT_2_PI = Math.sqrt(2 / Math.PI);
const KAPPA = 0.044715;

/** exp(−z²/2) without z²'s rounding: z = h + l with h of 24 bits, so that h²/2 is exact. */
function expHalfSquare(z: number): number {
  const h = Math.fround(z), l = z - h;
  return Math.exp(-0.5 * h * h) * Math.exp(-0.5 * l * (z + h));
}

/**
 * erfc(x) for x = |z|/√2: below 1.5 as 1 − erf(x) with erf(x) = 2/√π·e^(−x²)·Σ 2ⁿx^(2n+1)/(1·3···(2n+1))
 * (positive terms, no cancellation in the sum; absolute error ~1e-16), above by its continued
 * fraction e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) (modified Lentz, at most ~90 terms).
 */
function erfcPositive(x: number, z: number): number {
  if (x < 1.5) {
    let term = x, sum = x;
    for (let n = 1; n < 200 && term > 1e-17 * sum; n++) {
      term *= (2 * x * x) / (2 * n + 1);
      sum += term;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
  }
  const tiny = 1e-300;
  let f = x, C = x, D = 0;
  for (let i = 1; i < 500; i++) {
    const a = i / 2;
    D = x + a * D;
    D = D === 0 ? 1 / tiny : 1 / D;
    C = x + a / C;
    if (C === 0) C = tiny;
    const delta = C * D;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-17) break;
  }
  return expHalfSquare(z) / (Math.sqrt(Math.PI) * f);
}

/** The standard normal distribution function Φ(z) = erfc(−z/√2)/2. */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  if (z === -Infinity) return 0;
  if (z === Infinity) return 1;
  const x = Math.abs(z) / Math.SQRT2;
  return z <= 0 ? 0.5 * erfcPositive(x, z) : 1 - 0.5 * erfcPositive(x, z);
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** act(z) in float64. */
export function activate(a: Activation, z: number): number {
  if (a === "silu") return z * sigmoid(z);
  if (a === "gelu") return z * normalCdf(z);
  return 0.5 * z * (1 + Math.tanh(SQRT_2_PI * (z + KAPPA * z * z * z)));
}

/** act'(z) in float64. */
export function activationSlope(a: Activation, z: number): number {
  if (a === "silu") {
    const s = sigmoid(z);
    return s * (1 + z * (1 - s));
  }
  if (a === "gelu") return normalCdf(z) + (z * expHalfSquare(z)) / Math.sqrt(2 * Math.PI);
  const t = Math.tanh(SQRT_2_PI * (z + KAPPA * z * z * z));
  return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * SQRT_2_PI * (1 + 3 * KAPPA * z * z);
}

/**
 * Bounds of |act'| and |act''| over all z, for tolerances: an error δ in the pre-activation moves
 * act by at most SLOPE·δ and act' by at most CURVATURE·δ. (silu' peaks at 1.0998, gelu' at 1.1289,
 * tanh-gelu' at 1.1289; the curvatures at 0.5, 0.798 and 0.798.)
 */
export const SLOPE: Record<Activation, number> = { silu: 1.1, gelu: 1.13, "gelu-tanh": 1.13 };
export const CURVATURE: Record<Activation, number> = { silu: 0.5, gelu: 0.8, "gelu-tanh": 0.8 };
