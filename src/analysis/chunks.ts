/** Flat indices to multi-indices, in C or Fortran order (where compare reports its worst entry). */

/** Flat Fortran-order index (first axis fastest) → multi-index. */
export function unravelFortran(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = 0; d < shape.length; d++) {
    out[d] = shape[d] === 0 ? 0 : index % shape[d];
    index = shape[d] === 0 ? 0 : Math.floor(index / shape[d]);
  }
  return out;
}

/** Flat C-order index → multi-index. */
export function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = shape[d] === 0 ? 0 : index % shape[d];
    index = shape[d] === 0 ? 0 : Math.floor(index / shape[d]);
  }
  return out;
}
