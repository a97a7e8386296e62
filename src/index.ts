/**
 * groupnorm: Group Normalization (Wu & He, 2018), exact and memory-bound fast, on typed arrays and
 * on tensor files. The command line (bin/groupnorm.js) is one client of these functions.
 *
 *   groupNorm, groupNormBackward     on Float32Array / Float64Array / float16 or bfloat16 bits (Uint16Array)
 *   forwardFiles, backwardFiles      file to file, streamed in bounded memory
 *   compareFiles, describeFile       the `compare` and `info` commands
 *   gradcheck, roofline              the `gradcheck` and `roofline` commands
 *   verifyFiles                      the `verify` command: your outputs against the float64 reference
 *   createEngine                     an engine of your own for many calls (close() when done)
 *
 * Every function returns a Promise; bad input rejects with an InputError whose message is the line
 * the CLI prints. Results of the file functions are the documents the CLI prints with --json.
 */
export { groupNorm, groupNormBackward } from "./api/arrays.js";
export type { GroupNormBackwardOptions, GroupNormBackwardResult, GroupNormOptions, GroupNormResult, TensorData } from "./api/arrays.js";
export { backwardFiles } from "./api/backward.js";
export type { BackwardFilesOptions, BackwardOutput, BackwardReport } from "./api/backward.js";
export { createEngine, GroupNormEngine } from "./api/engine.js";
export type { EngineOptions, PoolUse } from "./api/engine.js";
export { forwardFiles } from "./api/forward.js";
export type { ForwardFilesOptions, ForwardOutput, ForwardReport } from "./api/forward.js";
export { gradcheck } from "./api/gradcheck.js";
export { verifyFiles } from "./api/verify.js";
export type { OutputReport, VerifyOptions, VerifyReport } from "./api/verify.js";
export type { GradcheckOptions, GradcheckReport } from "./api/gradcheck.js";
export { compareFiles, describeFile } from "./api/inspect.js";
export type { CompareOptions, CompareReport, ContainerInfoReport, InfoReport } from "./api/inspect.js";
export { roofline } from "./api/roofline.js";
export type { RooflineOptions, RooflineResult } from "./api/roofline.js";
export type { Activation } from "./core/activation.js";
export { COMPAT } from "./core/conventions.js";
export type { AffineKind, Compat, CompatDefaults, ConventionOptions, Grouping } from "./core/conventions.js";
export type { Layout } from "./core/dims.js";
export type { Dtype } from "./core/dtype.js";
export { formatError, InputError } from "./errors.js";
export { bf16ArrayToFloat32 as decodeBfloat16, floatArrayToBF16 as encodeBfloat16 } from "./io/bfloat16.js";
export { f16ArrayToFloat32 as decodeFloat16, floatArrayToF16 as encodeFloat16 } from "./io/float16.js";
export { WorkerFailure } from "./kernels/pool/pool.js";
