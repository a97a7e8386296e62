/**
 * The conventions' part of the API functions: gamma and beta read per channel or per group, and
 * dgamma/dbeta summed per group for a per-group affine (core/conventions.ts has the rules).
 */
import { affineVector, type AffineKind, checkAffineShape, type Convention } from "../core/conventions.js";
import { type Dims, groupOf } from "../core/dims.js";
import type { FloatArray } from "../core/dtype.js";
import { readAll, type TensorSink, type TensorSource } from "../io/tensor.js";

/** gamma or beta from a file as C per-channel values; its shape is checked against the affine kind first. */
export async function readAffine(source: TensorSource, d: Dims, kind: AffineKind, what: string): Promise<Float64Array> {
  checkAffineShape(source.shape, d, kind, what, source.name);
  return affineVector(await readAll(source), d, kind, what, source.name, source.shape);
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
