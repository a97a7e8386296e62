/** The PyTorch-made fixtures in fixtures/ (see fixtures/generate.py). */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Layout } from "../../src/core/dims.js";

export interface FixtureCase {
  name: string;
  layout: Layout;
  groups: number;
  eps: number;
  shape: number[];
  dtypes: { x: string; gamma: string | null; beta: string | null; dy: string };
  affine: boolean;
  byteorder: string;
  fortran_order: boolean;
  npy_version: [number, number];
  notes: string;
  torch_native_rel_error: number | null;
  constant_groups?: Array<[number, number]>;
  nonfinite_groups?: Array<[number, number]>;
}

export const fixturesDir = fileURLToPath(new URL("../../fixtures/", import.meta.url));

export const cases: FixtureCase[] = JSON.parse(readFileSync(`${fixturesDir}manifest.json`, "utf8"));

export function casePath(c: FixtureCase, file: string): string {
  return `${fixturesDir}cases/${c.name}/${file}`;
}

export function hasFile(c: FixtureCase, file: string): boolean {
  return existsSync(casePath(c, file));
}

/** The relative tolerance against PyTorch's float64 results, by the input's dtype. */
export function tolerance(dtype: string): number {
  return dtype === "float64" ? 1e-9 : dtype === "float16" ? 4e-3 : 3e-5;
}
