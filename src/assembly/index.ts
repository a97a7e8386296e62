// GroupNorm hot loops in WebAssembly SIMD (AssemblyScript): the entry of build/kernels.wasm, whose
// exports are the module's exports.
//
// Every function takes byte offsets into the one shared memory and plain numbers; nothing here
// allocates. The orchestration (which run, which shift, how partial sums combine) lives in
// src/kernels/plan.ts; these loops only stream.
//
// Vocabulary, as in PyTorch's cpu/group_norm_kernel.cpp:
//   NCHW "run": the HxW contiguous values of one (n, c), or a fixed-size block of it.
//   NHWC "rows": `rows` consecutive spatial positions of one sample, each holding C channels.
//   stats:      shifted sums S1 = Σ(x − K), S2 = Σ(x − K)² in float64, K a value of the group.
//   internal gradients: ds = Σ dy·(x − mean), db = Σ dy, in float64.
//   input backward: dx = A·dy + B·(x − mean) + C0 with per-channel A and per-group B, C0.
//
// f32 normalisation subtracts the float64 mean as two floats (mhi + mlo): x − mhi is exact for
// values near the mean (Sterbenz), so ill-conditioned groups keep all their digits.
//
// The files, one step each (f32, f64 and *_wide variants of a step together):
//   common.ts          shared @inline helpers (hi2, lo2, hsum, hsum32, zero) and STRIP
//   statistics.ts      stats_*: S1, S2 of NCHW runs and NHWC rows; the NHWC per-group strip loop,
//                      also fused with normalisation (fused_rows_g_f32)
//   normalisation.ts   norm_*: forward normalisation (norm_*_f32_wide: float32 values, float64 arithmetic;
//                      norm_rows_f32_mixed: float64 for some groups of an NHWC row)
//   gradients.ts       grad_*: internal gradients
//   input-backward.ts  dx_*: input backward (dx_*_f32_wide: float32 values, float64 arithmetic;
//                      dx_rows_f32_mixed: float64 for some groups of an NHWC row)
//   coefficients.ts    prep_norm_*, prep_dx: per-channel coefficients; sum_units: combining unit
//                      partials
//   probes.ts          stream_*, flops_probe: roofline probes
//   scan.ts            scan_blocks: info's per-block statistics (min, max, non-finite counts, mean, M2)
//   compare.ts         compare_blocks: compare's per-block isclose partials (mismatches, max errors, worst)

export {
  stats_run_f32_wide, stats_run_f64, stats_rows_f32_wide, stats_rows_f64,
  stats_rows_f32, stats_chan_f32, stats_rows_g_f32, fused_rows_g_f32,
} from "./statistics";
export { norm_chan_f32, norm_chan_f64, norm_rows_f32, norm_rows_f64, norm_rows_g_f32, norm_chan_f32_wide, norm_rows_f32_mixed } from "./normalisation";
export {
  grad_run_f32_wide, grad_run_f64, grad_rows_f32_wide, grad_rows_f64,
  grad_run_f32, grad_rows_f32, grad_chan_f32, grad_chan_f32_wide, grad_chan_f64,
} from "./gradients";
export { dx_chan_f32, dx_chan_f64, dx_rows_f32, dx_rows_f64, dx_rows_g_f32, dx_chan_f32_wide, dx_rows_f32_mixed } from "./input-backward";
export { prep_norm_f32, prep_norm_f64, prep_dx, sum_units } from "./coefficients";
export { stream_copy, stream_add, stream_triad, stream_read, flops_probe } from "./probes";
export { scan_blocks } from "./scan";
export { compare_blocks } from "./compare";
