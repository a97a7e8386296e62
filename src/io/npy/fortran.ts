/** Fortran (column-major) order: reordering a whole array into C order while streaming it. */
import type { FloatArray } from "../../core/dtype.js";
import { CHUNK_BYTES } from "./format.js";
import type { NpyHeader } from "./header.js";

/**
 * Stream the whole Fortran-order array (file order, through `read(start, count, tmp)`) and scatter
 * it in C order into dst[dstOffset ...].
 */
export async function transposeFortran(
  h: Pick<NpyHeader, "shape" | "size" | "dtype" | "itemSize">,
  read: (start: number, count: number, tmp: FloatArray) => Promise<void>,
  dst: FloatArray,
  dstOffset: number,
): Promise<void> {
  const { shape, size, dtype, itemSize } = h;
  const nd = shape.length;
  // C-order strides; the file is in Fortran order (axis 0 varies fastest).
  const cs = new Array<number>(nd);
  cs[nd - 1] = 1;
  for (let k = nd - 2; k >= 0; k--) cs[k] = cs[k + 1]! * shape[k + 1]!;
  const idx = new Array<number>(nd).fill(0);
  const n0 = shape[0]!;
  const s0 = cs[0]!;
  let cOff = dstOffset;
  const chunk = Math.max(1, Math.min(size, Math.floor(CHUNK_BYTES / itemSize)));
  const tmp: FloatArray = dtype === "float64" ? new Float64Array(chunk) : new Float32Array(chunk);
  for (let done = 0; done < size; ) {
    const n = Math.min(chunk, size - done);
    await read(done, n, tmp);
    let i = 0;
    while (i < n) {
      const run = Math.min(n0 - idx[0]!, n - i);
      let c = cOff;
      for (let j = 0; j < run; j++, c += s0) dst[c] = tmp[i + j]!;
      i += run;
      cOff = c;
      idx[0]! += run;
      if (idx[0] === n0) {
        cOff -= n0 * s0;
        idx[0] = 0;
        for (let k = 1; k < nd; k++) {
          idx[k]!++;
          cOff += cs[k]!;
          if (idx[k]! < shape[k]!) break;
          cOff -= shape[k]! * cs[k]!;
          idx[k] = 0;
        }
      }
    }
    done += n;
  }
}
