/**
 * Loading the WebAssembly kernels (build/kernels.wasm, compiled from src/assembly/index.ts and the
 * files it re-exports by `npm install`) onto one shared memory. The same compiled module is
 * instantiated once per thread.
 */
import { readKernelsFile } from "../io/kernels-file.js";

export interface KernelExports {
  stats_run_f32_wide(p: number, n: number, K: number, out: number): void;
  stats_run_f64(p: number, n: number, K: number, out: number): void;
  grad_run_f32(dy: number, x: number, n: number, mhi: number, out: number): void;
  grad_run_f32_wide(dy: number, x: number, n: number, mean: number, out: number): void;
  grad_run_f64(dy: number, x: number, n: number, mean: number, out: number): void;
  stats_rows_f32(p: number, rows: number, C: number, kc: number, acc: number, tmp: number): void;
  stats_rows_f32_wide(p: number, rows: number, C: number, kc: number, acc: number): void;
  stats_rows_f64(p: number, rows: number, C: number, kc: number, acc: number): void;
  norm_rows_f32(x: number, y: number, rows: number, C: number, coef: number): void;
  norm_rows_g_f32(x: number, y: number, rows: number, C: number, D: number, coef: number): void;
  norm_rows_f64(x: number, y: number, rows: number, C: number, coef: number): void;
  grad_rows_f32(dy: number, x: number, rows: number, C: number, mh: number, acc: number, tmp: number): void;
  grad_rows_f32_wide(dy: number, x: number, rows: number, C: number, meanc: number, acc: number): void;
  grad_rows_f64(dy: number, x: number, rows: number, C: number, meanc: number, acc: number): void;
  dx_rows_f32(dy: number, x: number, dx: number, rows: number, C: number, coef: number): void;
  dx_rows_f64(dy: number, x: number, dx: number, rows: number, C: number, coef: number): void;
  dx_rows_g_f32(dy: number, x: number, dx: number, rows: number, C: number, D: number, coef: number): void;
  norm_chan_f32(x: number, y: number, len: number, nch: number, coef: number, stride: number): void;
  norm_chan_f64(x: number, y: number, len: number, nch: number, coef: number, stride: number): void;
  norm_chan_f32_wide(x: number, y: number, len: number, nch: number, coef: number, stride: number): void;
  norm_rows_f32_mixed(x: number, y: number, rows: number, C: number, G: number, D: number, coef: number, wide: number): void;
  grad_chan_f32(dy: number, x: number, len: number, nch: number, m: number, out: number): void;
  grad_chan_f32_wide(dy: number, x: number, len: number, nch: number, m: number, out: number): void;
  grad_chan_f64(dy: number, x: number, len: number, nch: number, m: number, out: number): void;
  dx_chan_f32(dy: number, x: number, dx: number, len: number, nch: number, coef: number, stride: number): void;
  dx_chan_f64(dy: number, x: number, dx: number, len: number, nch: number, coef: number, stride: number): void;
  dx_chan_f32_wide(dy: number, x: number, dx: number, len: number, nch: number, coef: number, stride: number): void;
  dx_rows_f32_mixed(dy: number, x: number, dx: number, rows: number, C: number, G: number, D: number, coef: number, wide: number): void;
  prep_norm_f32(coef: number, stride: number, G: number, D: number, mean: number, rstd: number, gamma: number, beta: number): void;
  prep_norm_f64(coef: number, stride: number, G: number, D: number, mean: number, rstd: number, gamma: number, beta: number): void;
  prep_dx(coef: number, stride: number, G: number, D: number, mean: number, rstd: number, M: number, gamma: number, ds: number, db: number, f32out: number): void;
  stats_chan_f32(p: number, len: number, nch: number, K: number, out: number): void;
  stats_rows_g_f32(p: number, rows: number, C: number, D: number, kg: number, acc: number, tmp: number): void;
  sum_units(p: number, units: number, stride: number, count: number, out: number): void;
  // interleaved groups (item = sample): per-run shifts and means, strided coefficients
  stats_chans_f32(p: number, len: number, nch: number, kc: number, out: number): void;
  stats_chans_f32_wide(p: number, len: number, nch: number, kc: number, out: number): void;
  stats_chans_f64(p: number, len: number, nch: number, kc: number, out: number): void;
  grad_chans_f32(dy: number, x: number, len: number, nch: number, mc: number, out: number): void;
  grad_chans_f32_wide(dy: number, x: number, len: number, nch: number, mc: number, out: number): void;
  grad_chans_f64(dy: number, x: number, len: number, nch: number, mc: number, out: number): void;
  prep_norm_f32_i(coef: number, stride: number, G: number, D: number, mean: number, rstd: number, gamma: number, beta: number): void;
  prep_norm_f64_i(coef: number, stride: number, G: number, D: number, mean: number, rstd: number, gamma: number, beta: number): void;
  prep_dx_i(coef: number, stride: number, G: number, D: number, mean: number, rstd: number, M: number, gamma: number, ds: number, db: number, f32out: number): void;
  fused_rows_g_f32(x: number, y: number, xn: number, rows: number, C: number, D: number, coef: number, kg: number, acc: number, tmp: number): void;
  // through an activation (act: 1 silu, 2 gelu, 3 gelu-tanh): forward y = act(pre); backward dy ← dy·act'(pre)
  norm_chan_f32_act(x: number, y: number, len: number, nch: number, coef: number, stride: number, act: number): void;
  norm_chan_f64_act(x: number, y: number, len: number, nch: number, coef: number, stride: number, act: number): void;
  norm_rows_f32_act(x: number, y: number, rows: number, C: number, coef: number, act: number): void;
  norm_rows_f64_act(x: number, y: number, rows: number, C: number, coef: number, act: number): void;
  norm_rows_g_f32_act(x: number, y: number, rows: number, C: number, D: number, coef: number, act: number): void;
  norm_chan_f32_wide_act(x: number, y: number, len: number, nch: number, coef: number, stride: number, act: number): void;
  norm_rows_f32_mixed_act(x: number, y: number, rows: number, C: number, G: number, D: number, coef: number, wide: number, act: number): void;
  fused_rows_g_f32_act(x: number, y: number, xn: number, rows: number, C: number, D: number, coef: number, kg: number, acc: number, tmp: number, act: number): void;
  grad_chan_f32_act(dy: number, x: number, len: number, nch: number, m: number, out: number, coef: number, stride: number, act: number): void;
  grad_chan_f64_act(dy: number, x: number, len: number, nch: number, m: number, out: number, coef: number, stride: number, act: number): void;
  grad_rows_f32_act(dy: number, x: number, rows: number, C: number, mh: number, acc: number, tmp: number, coef: number, act: number): void;
  grad_rows_f64_act(dy: number, x: number, rows: number, C: number, meanc: number, acc: number, coef: number, act: number): void;
  dpre_chan_f32(dy: number, x: number, len: number, nch: number, coef: number, stride: number, act: number): void;
  dpre_chan_f64(dy: number, x: number, len: number, nch: number, coef: number, stride: number, act: number): void;
  dpre_chan_f32_wide(dy: number, x: number, len: number, nch: number, coef: number, stride: number, act: number): void;
  dpre_rows_f32(dy: number, x: number, rows: number, C: number, coef: number, act: number): void;
  dpre_rows_f64(dy: number, x: number, rows: number, C: number, coef: number, act: number): void;
  dpre_rows_f32_mixed(dy: number, x: number, rows: number, C: number, G: number, D: number, coef: number, wide: number, act: number): void;
  act_array(p: number, n: number, act: number, f64: number, slope: number): void;
  stream_copy(a: number, c: number, n: number): void;
  stream_add(a: number, b: number, c: number, n: number): void;
  stream_triad(a: number, b: number, c: number, s: number, n: number): void;
  stream_read(a: number, n: number): number;
  flops_probe(iters: number, seed: number, f32: number): number;
  normals(out: number, n: number, state: number, scale: number, offset: number, kind: number, list: number, cap: number): number;
  scan_blocks(p: number, n: number, dtype: number, block: number, out: number): void;
  compare_blocks(a: number, da: number, b: number, db: number, n: number, block: number, atol: number, rtol: number, scratch: number, out: number): void;
}

export const WASM_PAGE = 65536;
/** 4 GiB: the most a 32-bit WebAssembly memory can address. */
export const MAX_PAGES = 65536;

let compiled: WebAssembly.Module | undefined;

export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(readKernelsFile());
  return compiled;
}

/** Use `module`, build/kernels.wasm compiled elsewhere (io/kernels-file.ts: compileKernelsFile), unless one is in use already. */
export function adoptKernelModule(module: WebAssembly.Module): void {
  compiled ??= module;
}

export function createSharedMemory(initialPages = 16): WebAssembly.Memory {
  return new WebAssembly.Memory({ initial: initialPages, maximum: MAX_PAGES, shared: true });
}

export function instantiateKernels(memory: WebAssembly.Memory, module: WebAssembly.Module = kernelModule()): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}
