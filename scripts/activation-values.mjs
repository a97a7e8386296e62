#!/usr/bin/env node
// The kernels' activations (build/kernels.wasm: act_array) on fixed grids, for
// scripts/measure-activations.py, which compares them with mpmath. Usage:
//   node scripts/activation-values.mjs OUTDIR
// writes OUTDIR/{f32,f64}_{grid,exp_grid}.bin (the inputs) and OUTDIR/{f32,f64}_{name}.bin (the
// outputs), raw little-endian float32 / float64.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const out = process.argv[2];
if (!out) {
  console.error("usage: node scripts/activation-values.mjs OUTDIR");
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const module = new WebAssembly.Module(readFileSync(new URL("../build/kernels.wasm", import.meta.url)));
const memory = new WebAssembly.Memory({ initial: 1024, maximum: 65536, shared: true });
const k = new WebAssembly.Instance(module, { env: { memory } }).exports;

/** z on [−20, 20] evenly, and ±10^[−8, 1.6] logarithmically (small arguments and tails). */
function grid() {
  const z = [];
  for (let i = 0; i < 100000; i++) z.push(-20 + (40 * i) / 99999);
  for (let i = 0; i < 10000; i++) {
    const v = 10 ** (-8 + (9.6 * i) / 9999);
    z.push(v, -v);
  }
  return z;
}
/** exp(−z) over its whole clamp range. */
function expGrid(lo, hi) {
  return Array.from({ length: 100000 }, (_, i) => lo + ((hi - lo) * i) / 99999);
}
const NAMES = { silu: 1, gelu: 2, "gelu-tanh": 3 };
for (const [prec, Arr, f64] of [["f32", Float32Array, 0], ["f64", Float64Array, 1]]) {
  const run = (values, act, slope) => {
    const n = values.length - (values.length % 4);
    const at = 1 << 20, v = new Arr(memory.buffer, at, n);
    v.set(values.subarray(0, n));
    k.act_array(at, n, act, f64, slope);
    return Arr.from(v);
  };
  const z = Arr.from(grid().slice(0, 120000));
  writeFileSync(join(out, `${prec}_grid.bin`), z);
  for (const [name, act] of Object.entries(NAMES)) {
    writeFileSync(join(out, `${prec}_${name}.bin`), run(z, act, 0));
    writeFileSync(join(out, `${prec}_${name}_slope.bin`), run(z, act, 1));
  }
  writeFileSync(join(out, `${prec}_phi.bin`), run(z, 5, 0));
  const ez = Arr.from(prec === "f32" ? expGrid(-87.3, 87.3) : expGrid(-708, 708));
  writeFileSync(join(out, `${prec}_exp_grid.bin`), ez);
  writeFileSync(join(out, `${prec}_exp.bin`), run(ez, 4, 0));
}
