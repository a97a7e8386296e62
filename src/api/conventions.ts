/**
 * The conventions' part of the API functions: gamma and beta read per channel or per group, and
 * dgamma/dbeta summed per group for a per-group affine (core/conventions.ts has the rules).
 */
import { affineVector, type AffineKind, checkAffineShape, type Convention } from "../core/conventions.js";
import { type Dims, groupOf } from "../core/dims.js";
import type { FloatArray } from "../core/dtype.js";
import { readAll, type TensorSink, type TensorSource } from "../io/tensor.js";
import type { HostPart } from "../pipeline/budget.js";

/** gamma or beta from a file as C per-channel values; its shape is checked against the affine kind first. */
export async function readAffine(source: TensorSource, d: Dims, kind: AffineKind, what: string): Promise<Float64Array> {
  checkAffineShape(source.shape, d, kind, what, source.name);
  return affineVector(await readAll(source), d, kind, what, source.name, source.shape);
}

/**
 * gamma or beta as a streamed run's side, checked from its header and not read: a (C,) file as it
 * is, a (G,) one (affine per group) as the C per-channel values the pipeline takes (PerGroupSource),
 * so that the run's plan counts the C values it holds before anything is read.
 */
export function affineSide(source: TensorSource, d: Dims, kind: AffineKind, what: string): TensorSource {
  checkAffineShape(source.shape, d, kind, what, source.name);
  return kind === "per-group" ? new PerGroupSource(source, d) : source;
}

/** Groups read at a time by PerGroupSource (a fixed buffer, whatever G is). */
const GROUPS_AT_ONCE = 4096;

/** A (G,) vector seen as (C,): channel c has its group's value. Reads its groups a buffer at a time. */
class PerGroupSource implements TensorSource {
  readonly name: string;
  readonly dtype;
  readonly shape: readonly number[];
  readonly size: number;

  constructor(
    private readonly inner: TensorSource,
    private readonly d: Dims,
  ) {
    this.name = inner.name;
    this.dtype = inner.dtype;
    this.shape = [d.C];
    this.size = d.C;
  }

  async read(start: number, count: number, out: FloatArray, outOffset = 0): Promise<void> {
    const { G, D } = this.d, end = start + count;
    const buf = new Float64Array(Math.min(GROUPS_AT_ONCE, G));
    for (let g0 = 0; g0 < G; g0 += buf.length) {
      const n = Math.min(buf.length, G - g0);
      await this.inner.read(g0, n, buf);
      for (let g = g0; g < g0 + n; g++) {
        for (let k = 0; k < D; k++) {
          const c = this.d.interleaved ? g + k * G : g * D + k;
          if (c >= start && c < end) out[outOffset + c - start] = buf[g - g0];
        }
      }
    }
  }

  /** The inner source is closed by whoever opened it. */
  async close(): Promise<void> {}
}

/**
 * What a per-group affine's dgamma/dbeta hold besides the run's per-channel sums (GroupSumSink: G
 * float64 each), for the run's memory plan; none for a per-channel affine. `file`: X's.
 */
export function groupSumsHeld(d: Dims, c: Pick<Convention, "affine">, outputs: string[], file: string): HostPart[] {
  if (c.affine !== "per-group" || outputs.length === 0) return [];
  const names = outputs.join(" and ");
  return [{ what: `the per-group ${names} sums, G = ${d.G} float64 values${outputs.length > 1 ? " each" : ""}`, file, bytes: 8 * d.G * outputs.length }];
}

/**
 * A sink of G values fed the C per-channel values of dgamma or dbeta (in any number of writes):
 * it writes each group's sum, in channel order, once it has them all.
 */
export class GroupSumSink implements TensorSink {
  readonly dtype;
  readonly shape;
  private readonly sums: Float64Array;
  private at = 0;

  constructor(
    private readonly inner: TensorSink,
    private readonly d: Dims,
  ) {
    this.dtype = inner.dtype;
    this.shape = inner.shape;
    this.sums = new Float64Array(d.G);
  }

  async write(values: FloatArray): Promise<void> {
    for (let k = 0; k < values.length; k++) this.sums[groupOf(this.d, this.at++)] += values[k];
    if (this.at === this.d.C) await this.inner.write(this.sums);
  }
}

/** The shape of dgamma and dbeta under an affine kind. */
export function affineShape(d: Dims, c: Pick<Convention, "affine">): number[] {
  return [c.affine === "per-group" ? d.G : d.C];
}
