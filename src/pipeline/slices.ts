/** Cutting a tensor into slices of whole samples that fit the memory budget. */
import type { Engine } from "../kernels/engine.js";
import type { Precision } from "../kernels/plan.js";

export interface Phases {
  read: number;
  compute: number;
  write: number;
  total: number;
}

/** Default budget for tensors in the arena (the rest of the process stays well under 1 GiB). */
export const DEFAULT_MEMORY = 512 * 1024 * 1024;

export function elementBytes(p: Precision): number {
  return p === "f32" ? 4 : 8;
}

/** Samples per slice: as many as fit the budget, at least one. */
export function planSlices(N: number, bytesPerSample: number, budget: number): { size: number } {
  if (N === 0) return { size: 1 };
  const fit = bytesPerSample > 0 ? Math.floor(budget / bytesPerSample) : N;
  return { size: Math.max(1, Math.min(N, fit)) };
}

export function viewOf(engine: Engine, p: Precision, ptr: number, count: number): Float32Array | Float64Array {
  return p === "f32" ? engine.arena.f32(ptr, count) : engine.arena.f64(ptr, count);
}
