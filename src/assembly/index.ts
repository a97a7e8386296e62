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
//                      also fused with normalisation (fused_rows_g_f32); stats_chans_*: NCHW runs of
//                      interleaved groups, each with its own group's shift and its own sums
//   normalisation.ts   norm_*: forward normalisation (norm_*_f32_wide: float32 values, float64 arithmetic;
//                      norm_rows_f32_mixed: float64 for some groups of an NHWC row); *_act: then an
//                      activation; dpre_*: the same loops making the backward's dy·act'(pre)
//   gradients.ts       grad_*: internal gradients (grad_chans_*: each run with its own group's mean;
//                      grad_*_act: of dy·act'(pre))
//   input-backward.ts  dx_*: input backward (dx_*_f32_wide: float32 values, float64 arithmetic;
//                      dx_rows_f32_mixed: float64 for some groups of an NHWC row)
//   coefficients.ts    prep_norm_*, prep_dx: per-channel coefficients (*_i: interleaved groups, group
//                      g's channels g, g + G, …); sum_units: combining unit partials
//   activation.ts      vectorised SiLU, GELU, tanh-GELU and their slopes, applied inside the
//                      norm_*_act, dpre_* and grad_*_act loops; act_array: the functions over an
//                      array (tests, accuracy measurements)
//   probes.ts          stream_*, flops_probe: roofline probes
//   random.ts          normals: gradcheck's seeded random inputs as float32, float16 or bfloat16
//   scan.ts            scan_blocks: info's per-block statistics (min, max, non-finite counts, mean, M2)
//   compare.ts         compare_blocks: compare's per-block isclose partials (mismatches, max errors, worst)

export {
  stats_run_f32_wide, stats_run_f64, stats_rows_f32_wide, stats_rows_f64,
  stats_rows_f32, stats_chan_f32, stats_rows_g_f32, fused_rows_g_f32, fused_rows_g_f32_act,
  stats_chans_f32, stats_chans_f32_wide, stats_chans_f64,
} from "./statistics";
export { norm_chan_f32, norm_chan_f64, norm_rows_f32, norm_rows_f64, norm_rows_g_f32, norm_chan_f32_wide, norm_rows_f32_mixed } from "./normalisation";
export { norm_chan_f32_act, norm_chan_f64_act, norm_rows_f32_act, norm_rows_f64_act, norm_rows_g_f32_act, norm_chan_f32_wide_act, norm_rows_f32_mixed_act } from "./normalisation";
export { dpre_chan_f32, dpre_chan_f64, dpre_chan_f32_wide, dpre_rows_f32, dpre_rows_f64, dpre_rows_f32_mixed } from "./normalisation";
export {
  grad_run_f32_wide, grad_run_f64, grad_rows_f32_wide, grad_rows_f64,
  grad_run_f32, grad_rows_f32, grad_chan_f32, grad_chan_f32_wide, grad_chan_f64,
  grad_chans_f32, grad_chans_f32_wide, grad_chans_f64,
  grad_chan_f32_act, grad_chan_f64_act, grad_rows_f32_act, grad_rows_f64_act,
} from "./gradients";
export { act_array } from "./activation";
export { dx_chan_f32, dx_chan_f64, dx_rows_f32, dx_rows_f64, dx_rows_g_f32, dx_chan_f32_wide, dx_rows_f32_mixed } from "./input-backward";
export { prep_norm_f32, prep_norm_f64, prep_dx, prep_norm_f32_i, prep_norm_f64_i, prep_dx_i, sum_units } from "./coefficients";
export { stream_copy, stream_add, stream_triad, stream_read, flops_probe } from "./probes";
export { normals } from "./random";
export { scan_blocks } from "./scan";
export { compare_blocks } from "./compare";
