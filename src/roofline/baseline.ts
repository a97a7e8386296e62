/**
 * --baseline: this run's figures beside an earlier run's `roofline --json` document, the ratio per
 * figure, and which differences exceed the two runs' spread. Earlier documents without spreads
 * (before they were reported) still compare, with the spread unknown where they lack it.
 */
import { InputError } from "../errors.js";
import type { Spread } from "./spread.js";

/** One figure of a run: higher is better (GB/s, GFLOP/s). */
export interface Figure {
  figure: string;
  unit: "GB/s" | "GFLOP/s";
  best: number;
  median: number | null;
  p90: number | null;
  runs: number | null;
  /** What must match for the figures to be like for like (threads, shape, …), as text. */
  context: string;
}

export interface FigureComparison {
  figure: string;
  unit: Figure["unit"];
  current: { best: number; median: number | null; p90: number | null };
  baseline: { best: number; median: number | null; p90: number | null };
  /** current / baseline, of the medians when both have them, else of the best runs. */
  ratio: number;
  ratio_best: number;
  /** Whether the runs' ranges (90th percentile to best) do not overlap; null when either lacks a spread. */
  exceeds_spread: boolean | null;
  /** False when the two were measured on different terms (threads, tensor): see notes. */
  comparable: boolean;
}

export interface BaselineComparison {
  path: string;
  cpu: string;
  threads: number | null;
  notes: string[];
  figures: FigureComparison[];
  /** Names of the figures whose difference exceeds the spread. */
  exceeding: string[];
}

type Json = Record<string, unknown>;
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const obj = (v: unknown): Json | null => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : null);

function fromSpread(figure: string, unit: Figure["unit"], best: unknown, spread: unknown, context: string): Figure | null {
  const b = num(best);
  if (b === null) return null;
  const s = obj(spread) as Partial<Spread> | null;
  return { figure, unit, best: b, median: num(s?.median), p90: num(s?.p90), runs: num(s?.runs), context };
}

/** The comparable figures of a roofline document (this run's report, or an earlier run's JSON). */
export function figuresOf(doc: Json): Figure[] {
  const out: Figure[] = [];
  const push = (f: Figure | null) => f && out.push(f);
  const host = obj(doc.host) ?? {};
  const threads = num(host.threads);
  const t = `${threads ?? "?"} threads`;
  const a = obj(doc.attainable) ?? {};
  const as = obj(a.spread) ?? {};
  for (const p of ["copy", "add", "triad", "read"]) push(fromSpread(`${p} probe`, "GB/s", a[`${p}_gbps`], as[p], t));
  push(fromSpread("compute", "GFLOP/s", doc.compute_gflops, doc.compute_spread, t));
  const kernels = (Array.isArray(doc.kernels) ? doc.kernels : []).map(obj).filter((k): k is Json => k !== null);
  const tensor = kernels[0] ? `${String(kernels[0].dtype)} ${Array.isArray(kernels[0].shape) ? kernels[0].shape.join("×") : "?"} G=${String(kernels[0].groups)} ${String(kernels[0].layout)}` : "?";
  for (const k of kernels) {
    const f = fromSpread(String(k.name), "GB/s", k.gbps, k.spread, `${t}, ${tensor}`);
    if (f && f.median === null) {
      // earlier documents: best and median seconds
      const bytes = num(k.bytes), med = num(k.median_seconds);
      if (bytes && med) f.median = bytes / med / 1e9;
    }
    push(f);
  }
  for (const r of Array.isArray(doc.cache_roofs) ? doc.cache_roofs : []) {
    const rr = obj(r);
    if (rr) push(fromSpread(`${String(rr.level)} roof`, "GB/s", rr.gbps, rr.spread, t));
  }
  const sc = obj(doc.scaling);
  for (const p of Array.isArray(sc?.points) ? sc.points : []) {
    const pp = obj(p);
    if (!pp) continue;
    const n = num(pp.threads);
    for (const f of ["copy", "add", "forward", "backward"]) {
      const r = obj(pp[f]);
      push(fromSpread(`${f} at ${n} thread${n === 1 ? "" : "s"}`, "GB/s", r?.gbps, r?.spread, f === "copy" || f === "add" ? `${n} threads` : `${n} threads, ${tensor}`));
    }
  }
  return out;
}

/** Check that a parsed JSON value is a roofline document, or say what it is. */
export function checkBaselineDocument(v: unknown, path: string): Json {
  const d = obj(v);
  if (!d || d.command !== "roofline") {
    throw new InputError(`is not a 'groupnorm roofline --json' document${d && typeof d.command === "string" ? ` (it is from '${d.command}')` : ""}: save one with 'groupnorm roofline --json > earlier.json'`, path);
  }
  if (!obj(d.attainable) || !Array.isArray(d.kernels)) throw new InputError("is a roofline document without its attainable and kernels figures", path);
  return d;
}

/** Parse the text of an earlier `roofline --json` (InputError naming the file when it is not one). */
export function parseBaseline(text: string, path: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`is not JSON (${(e as Error).message.replace(/\s+/g, " ")}): --baseline takes an earlier 'groupnorm roofline --json' document`, path);
  }
  return checkBaselineDocument(v, path);
}

const range = (f: Figure): [number, number] | null => {
  if (f.runs !== null && f.runs < 2) return null;
  const low = f.p90 ?? f.median;
  return low === null ? null : [Math.min(low, f.best), Math.max(low, f.best)];
};

/** Side by side: each figure both runs have, with its ratio and whether the difference exceeds their spread. */
export function compareRuns(current: Json, baseline: Json, path: string): BaselineComparison {
  const now = figuresOf(current), before = figuresOf(baseline);
  const notes: string[] = [];
  const ch = obj(current.host) ?? {}, bh = obj(baseline.host) ?? {};
  if (ch.cpu !== bh.cpu) notes.push(`measured on another CPU ('${String(bh.cpu)}', this is '${String(ch.cpu)}')`);
  if (ch.threads !== bh.threads) notes.push(`ran ${String(bh.threads)} threads, this run ${String(ch.threads)}: the probe and kernel figures are not like for like`);
  const ck = obj((current.kernels as unknown[] | undefined)?.[0]), bk = obj((baseline.kernels as unknown[] | undefined)?.[0]);
  const tensor = (k: Json | null) => (k ? `${String(k.dtype)} ${Array.isArray(k.shape) ? k.shape.join("×") : "?"} G=${String(k.groups)} ${String(k.layout)}` : "?");
  if (tensor(ck) !== tensor(bk)) notes.push(`timed the kernels on ${tensor(bk)}, this run on ${tensor(ck)}`);
  const figures: FigureComparison[] = [];
  for (const c of now) {
    const b = before.find((x) => x.figure === c.figure);
    if (!b) continue;
    const rc = range(c), rb = range(b);
    const medians = c.median !== null && b.median !== null;
    figures.push({
      figure: c.figure,
      unit: c.unit,
      current: { best: c.best, median: c.median, p90: c.p90 },
      baseline: { best: b.best, median: b.median, p90: b.p90 },
      ratio: medians ? c.median! / b.median! : c.best / b.best,
      ratio_best: c.best / b.best,
      exceeds_spread: rc && rb ? rc[1] < rb[0] || rb[1] < rc[0] : null,
      comparable: c.context === b.context,
    });
  }
  if (figures.length === 0) notes.push("has no figure in common with this run");
  return {
    path,
    cpu: String(bh.cpu ?? "?"),
    threads: num(bh.threads),
    notes,
    figures,
    exceeding: figures.filter((f) => f.exceeds_spread === true).map((f) => f.figure),
  };
}

/** The report with the comparison added, and its notes among the warnings. */
export function withBaseline<R extends { baseline: BaselineComparison | null; warnings: string[] }>(report: R, earlier: Json, path: string): R {
  const baseline = compareRuns(report as unknown as Json, earlier, path);
  return { ...report, baseline, warnings: [...report.warnings, ...baseline.notes.map((n) => `baseline ${path}: ${n}`)] };
}
