/**
 * verify: a user's own GroupNorm outputs (candidates) against the float64 reference of the stored
 * inputs, streamed; and, for a candidate that fails, the convention under which it would pass
 * (diagnose.ts). The inputs and the conventions' statistics are prepare.ts's.
 */
import type { Activation } from "../core/activation.js";
import type { TensorSource } from "../io/tensor.js";
import { activate, activationSlope } from "../oracle/activation.js";
import { Checker, type OutputReport } from "./check.js";
import type { GroupIndex } from "./grouping.js";
import { affects, type Convention } from "./conventions.js";
import { diagnoseElementwise, diagnosis, ratio, worthDiagnosing } from "./diagnose.js";
import { actOf, type BackwardCandidate, checkForm, type ForwardCandidate, type Prepared, prepare, slopeOf, through, toleranceFor, type VerifyInputs } from "./prepare.js";
import { affineOf, type BackwardSums, backwardSums, groupAffineMax, preActivationChunk, type Stats, stream, VERIFY_CHUNK } from "./reference.js";
import { allowed, lengthFactor, offsetFactor } from "./tolerance.js";

export type { BackwardCandidate, ForwardCandidate, VerifyInputs } from "./prepare.js";

/**
 * Reference values of a per-group output (mean, rstd or var) under a convention, and their scales.
 * var's relative room is twice rstd's (var = 1/rstd² − eps).
 */
function groupOutput(name: "mean" | "rstd" | "var", s: Stats, c: Convention, g: number): { value: number; scale: number } {
  const f = lengthFactor(s.index.M);
  if (name === "mean") return { value: s.mean[g], scale: f * (Math.abs(s.mean[g]) + Math.sqrt(Math.max(0, s.variance[g]))) };
  if (name === "var") return { value: s.variance[g], scale: 2 * f * Math.abs(s.variance[g]) * offsetFactor(s.mean[g], s.rstd[g]) };
  const v = s.variance[g] + c.eps;
  const value = c.rstdAs === "std" ? Math.sqrt(v) : c.rstdAs === "variance" ? s.variance[g] : c.rstdAs === "varianceEps" ? v : s.rstd[g];
  return { value, scale: f * Math.abs(value) * offsetFactor(s.mean[g], s.rstd[g]) };
}

async function checkGroupOutput(name: "mean" | "rstd" | "var", cand: TensorSource, i: VerifyInputs, p: Prepared): Promise<OutputReport> {
  const s = p.stats.get(p.given)!;
  const ix = s.index;
  const refuse = checkForm(name, cand, i, [ix.N, ix.G], null, "(N, G)");
  if (refuse) return refuse;
  const checker = new Checker(name, cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.groups);
  await stream([cand], (start, [v]) => {
    for (let k = 0; k < v.length; k++) {
      const g = start + k, r = groupOutput(name, s, p.given, g);
      checker.add(g, v[k], r.value, r.scale, g, ix.firstChannel(g % ix.G));
    }
  }, i.breathe);
  const report = checker.report();
  if (worthDiagnosing(report)) {
    // every entry, under each alternative that changes it
    const ratios = new Map(p.alts.filter((c) => affects(c, p.given, name)).map((c) => [c, 0]));
    const tol = toleranceFor(cand.dtype, i);
    const alt = await p.alternatives();
    await stream([cand], (start, [v]) => {
      for (const [c, worst] of ratios) {
        const sc = alt.get(c)!;
        let top = worst;
        for (let k = 0; k < v.length && top !== Infinity; k++) {
          const r = groupOutput(name, sc, c, start + k);
          top = Math.max(top, ratio(v[k], r.value, allowed(tol, r.value, r.scale)));
        }
        ratios.set(c, top);
      }
    }, i.breathe);
    report.diagnosis = diagnosis(name, report, ratios);
  }
  return report;
}

/** Y under a convention as arrays: per-channel scale w and shift b, per-group scale of the tolerance. */
function forwardPlan(s: Stats, conv: Convention, i: VerifyInputs): { w: Float64Array; b: Float64Array; scale: Float64Array } {
  const ix = s.index, w = new Float64Array(ix.C), b = new Float64Array(ix.C);
  for (let c = 0; c < ix.C; c++) [w[c], b[c]] = affineOf(conv, i.gamma, i.beta, c, ix.groupOf[c]);
  const amax = groupAffineMax(ix, conv, i.gamma, i.beta), f = lengthFactor(ix.M), k = slopeOf(actOf(conv, i));
  const scale = new Float64Array(ix.groups);
  for (let gi = 0; gi < ix.groups; gi++) scale[gi] = k * yScale(s, gi, amax.wmax[gi % ix.G], amax.bmax[gi % ix.G], f);
  return { w, b, scale };
}

/** Y's reference over a chunk (a plain function of arrays: the hot loop, kept out of closures). */
function yChunk(len: number, x: Float64Array, gi: Int32Array, ch: Int32Array, mean: Float64Array, rstd: Float64Array, w: Float64Array, b: Float64Array, ref: Float64Array): void {
  for (let k = 0; k < len; k++) {
    const g = gi[k], c = ch[k];
    ref[k] = (x[k] - mean[g]) * rstd[g] * w[c] + b[c];
  }
}

/** act of a chunk of references, in place. */
function activateChunk(len: number, ref: Float64Array, act: Activation): void {
  for (let k = 0; k < len; k++) ref[k] = activate(act, ref[k]);
}

/** dX's reference over a chunk: rstd·(w·dy − A) − (x − mean)·rstd·B with per-group A and B. */
function dxChunk(len: number, dy: Float64Array, x: Float64Array, gi: Int32Array, ch: Int32Array, mean: Float64Array, rstd: Float64Array, w: Float64Array, A: Float64Array, B: Float64Array, ref: Float64Array): void {
  for (let k = 0; k < len; k++) {
    const g = gi[k], r = rstd[g];
    ref[k] = r * (w[ch[k]] * dy[k] - A[g]) - (x[k] - mean[g]) * r * B[g];
  }
}

/**
 * The size of what produced a group's Y: its largest |y|, max|x − mean|·rstd·max|γ| + max|β|, with
 * room for the mean's rounding (the offset factor on x̂, and |mean|·rstd·max|γ|/8 for implementations
 * that fold the mean into a shift, y = x·a + b, whose rounding is that of x·a).
 */
function yScale(s: Stats, gi: number, wmax: number, bmax: number, f: number): number {
  const r = s.rstd[gi], q = offsetFactor(s.mean[gi], r);
  return f * (s.maxdev[gi] * r * wmax * q + (q - 1) * wmax + bmax);
}

/** Y's reference at one value and its group's scale, under a convention. */
function yRef(x: number, gi: number, c: number, s: Stats, conv: Convention, i: VerifyInputs, amax: { wmax: Float64Array; bmax: Float64Array }): { value: number; scale: number } {
  const g = gi % s.index.G;
  const [w, b] = affineOf(conv, i.gamma, i.beta, c, g);
  const r = s.rstd[gi], pre = (x - s.mean[gi]) * r * w + b, act = actOf(conv, i);
  return { value: act ? activate(act, pre) : pre, scale: slopeOf(act) * yScale(s, gi, amax.wmax[g], amax.bmax[g], lengthFactor(s.index.M)) };
}

async function checkY(cand: TensorSource, i: VerifyInputs, p: Prepared): Promise<OutputReport> {
  const refuse = checkForm("Y", cand, i, i.x.shape, i.x.dtype, "X's shape");
  if (refuse) return refuse;
  const s = p.stats.get(p.given)!, ix = s.index;
  const { w, b, scale } = forwardPlan(s, p.given, i);
  const checker = new Checker("Y", cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.groups);
  const gi = new Int32Array(VERIFY_CHUNK), ch = new Int32Array(VERIFY_CHUNK), ref = new Float64Array(VERIFY_CHUNK);
  const { mean, rstd } = s;
  await stream([i.x, cand], (start, [vx, vy]) => {
    ix.walk(start, vx.length, gi, ch);
    yChunk(vx.length, vx, gi, ch, mean, rstd, w, b, ref);
    if (i.activation) activateChunk(vx.length, ref, i.activation);
    checker.addChunk(start, vx.length, vy, ref, scale, gi, ch);
  }, i.breathe);
  const report = checker.report();
  if (worthDiagnosing(report)) {
    const alt = await p.alternatives();
    const amax = new Map([...alt].map(([conv, sc]) => [conv, groupAffineMax(sc.index, conv, i.gamma, i.beta)]));
    const ratios = await diagnoseElementwise("Y", [i.x, cand], checker.failed, i, p, (conv, vals, gIdx, c) => yRef(vals[0], gIdx, c, alt.get(conv)!, conv, i, amax.get(conv)!));
    report.diagnosis = diagnosis("Y", report, ratios);
  }
  return report;
}

export async function verifyForward(i: VerifyInputs): Promise<Partial<Record<ForwardCandidate, OutputReport>>> {
  const p = await prepare(i);
  const out: Partial<Record<ForwardCandidate, OutputReport>> = {};
  if (i.candidates.Y) out.Y = await checkY(i.candidates.Y, i, p);
  if (i.candidates.mean) out.mean = await checkGroupOutput("mean", i.candidates.mean, i, p);
  if (i.candidates.rstd) out.rstd = await checkGroupOutput("rstd", i.candidates.rstd, i, p);
  if (i.candidates.var) out.var = await checkGroupOutput("var", i.candidates.var, i, p);
  return out;
}

/** dy, or through the convention's activation dy·act'(pre), at one value of group gi and channel c. */
function preActivationOf(conv: Convention, dy: number, x: number, gi: number, c: number, s: Stats, i: VerifyInputs): number {
  const act = actOf(conv, i);
  if (!act) return dy;
  const [w, b] = affineOf(conv, i.gamma, i.beta, c, gi % s.index.G);
  return dy * activationSlope(act, (x - s.mean[gi]) * s.rstd[gi] * w + b);
}

/** dX's reference at one value and a bound of its group's largest |dx|, under a convention. */
function dxRef(dy: number, x: number, gi: number, c: number, s: Stats, sums: BackwardSums, conv: Convention, i: VerifyInputs, wmax: Float64Array): { value: number; scale: number } {
  const ix = s.index, g = gi % ix.G, M = ix.M;
  const k = conv.unbiased ? M - 1 : M;
  const r = s.rstd[gi], xhat = (x - s.mean[gi]) * r;
  const w = affineOf(conv, i.gamma, i.beta, c, g)[0];
  const value = r * (w * dy - sums.sgdy[gi] / M - (xhat * sums.sgdyx[gi]) / k);
  const q = offsetFactor(s.mean[gi], r);
  const scale = lengthFactor(M) * q * r * (wmax[g] * sums.dymax[gi] + Math.abs(sums.sgdy[gi]) / M + (s.maxdev[gi] * r * Math.abs(sums.sgdyx[gi])) / k);
  return { value, scale };
}

export async function verifyBackward(i: VerifyInputs): Promise<Partial<Record<BackwardCandidate, OutputReport>>> {
  const p = await prepare(i);
  const dy = i.dy!;
  const out: Partial<Record<BackwardCandidate, OutputReport>> = {};
  const s = p.stats.get(p.given)!, ix = s.index;
  const wanted = (["dX", "dgamma", "dbeta"] as const).filter((n) => i.candidates[n]);
  // the given convention's sums from its channel sums, which the alternatives of its index and mean
  // (and, through an activation, of its pre-activation) share; the others' channel sums only when
  // something fails (a second pass, for all of them; more through an activation)
  const first = await backwardSums(dy, i.x, [{ c: p.given, stats: s }], i.gamma, i.breathe, [], through(i));
  const sums = first.sums[0];
  let altSums: Map<Convention, BackwardSums> | null = null;
  const sumsOfAlternatives = async () => {
    if (altSums) return altSums;
    const list = p.alts.filter((c) => wanted.some((n) => affects(c, p.given, n, !!i.activation)));
    const alt = await p.alternatives();
    const all = await backwardSums(dy, i.x, list.map((c) => ({ c, stats: alt.get(c)! })), i.gamma, i.breathe, first.bases, through(i));
    altSums = new Map(list.map((c, n) => [c, all.sums[n]]));
    return altSums;
  };
  // a per-group affine's dgamma and dbeta: each group's per-channel sums added up (under each convention's grouping)
  const perGroup = !!i.affinePerGroup;
  const entries = (bs: BackwardSums, index: GroupIndex) => (perGroup ? groupedSums(bs, index) : bs);
  for (const name of ["dgamma", "dbeta"] as const) {
    const cand = i.candidates[name];
    if (!cand) continue;
    const refuse = checkForm(name, cand, i, [perGroup ? ix.G : ix.C], null, perGroup ? "(G,): --affine per-group" : "(C,)");
    if (refuse) {
      out[name] = refuse;
      continue;
    }
    const refOf = (bs: BackwardSums, c: number) => (name === "dgamma" ? { value: bs.dgamma[c], scale: bs.absDgamma[c] } : { value: bs.dbeta[c], scale: bs.absDbeta[c] });
    const checker = new Checker(name, cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.G, true);
    const ref = entries(sums, ix);
    await stream([cand], (start, [v]) => {
      for (let k = 0; k < v.length; k++) {
        const c = start + k, r = refOf(ref, c);
        if (perGroup) checker.add(c, v[k], r.value, r.scale, c, ix.firstChannel(c));
        else checker.add(c, v[k], r.value, r.scale, ix.groupOf[c], c);
      }
    }, i.breathe);
    const report = checker.report();
    if (worthDiagnosing(report)) {
      const alts = await sumsOfAlternatives();
      const altStats = await p.alternatives();
      const tol = toleranceFor(cand.dtype, i);
      const values = new Float64Array(cand.size);
      await cand.read(0, cand.size, values);
      const ratios = new Map([...alts].filter(([c]) => affects(c, p.given, name, !!i.activation)).map(([c, sumsOf]) => {
        let top = 0;
        const bs = entries(sumsOf, altStats.get(c)!.index);
        values.forEach((v, ch) => {
          const r = refOf(bs, ch);
          top = Math.max(top, ratio(v, r.value, allowed(tol, r.value, r.scale)));
        });
        return [c, top];
      }));
      report.diagnosis = diagnosis(name, report, ratios);
    }
    out[name] = report;
  }
  const cand = i.candidates.dX;
  if (cand) {
    const refuse = checkForm("dX", cand, i, i.x.shape, i.x.dtype, "X's shape");
    if (refuse) out.dX = refuse;
    else {
      const { wmax } = groupAffineMax(ix, p.given, i.gamma, i.beta);
      const checker = new Checker("dX", cand.name, cand.dtype, cand.shape, toleranceFor(cand.dtype, i), ix.G, ix.groups);
      const gi = new Int32Array(VERIFY_CHUNK), ch = new Int32Array(VERIFY_CHUNK), ref = new Float64Array(VERIFY_CHUNK);
      // dx = rstd·(w·dy − A) − x̂·B per group, A = Σγ·dy/M, B = rstd·Σγ·dy·x̂/M: per-group constants first
      const M = ix.M, { w, b } = forwardPlan(s, p.given, i);
      const A = sums.sgdy.map((v) => v / M), B = sums.sgdyx.map((v, g) => (s.rstd[g] * v) / M);
      const scale = new Float64Array(ix.groups).map((_, g) => dxRef(0, s.mean[g], g, 0, s, sums, p.given, i, wmax).scale);
      const { mean, rstd } = s;
      // through an activation, dx is GroupNorm's backward of dy·act'(pre)
      const dpre = i.activation ? new Float64Array(VERIFY_CHUNK) : null;
      await stream([dy, i.x, cand], (start, [vdy, vx, vc]) => {
        ix.walk(start, vx.length, gi, ch);
        if (dpre) preActivationChunk(vx.length, vdy, vx, gi, ch, mean, rstd, w, b, i.activation!, dpre);
        dxChunk(vx.length, dpre ?? vdy, vx, gi, ch, mean, rstd, w, A, B, ref);
        checker.addChunk(start, vx.length, vc, ref, scale, gi, ch);
      }, i.breathe);
      const report = checker.report();
      if (worthDiagnosing(report)) {
        const alts = await sumsOfAlternatives();
        const alt = await p.alternatives();
        const wmaxOf = new Map([...alt].map(([conv, sc]) => [conv, groupAffineMax(sc.index, conv, i.gamma, i.beta).wmax]));
        const ratios = await diagnoseElementwise("dX", [dy, i.x, cand], checker.failed, i, p, (conv, values, gIdx, c) =>
          dxRef(preActivationOf(conv, values[0], values[1], gIdx, c, alt.get(conv)!, i), values[1], gIdx, c, alt.get(conv)!, alts.get(conv)!, conv, i, wmaxOf.get(conv)!));
        report.diagnosis = diagnosis("dX", report, ratios);
      }
      out.dX = report;
    }
  }
  // in the order the backward produces them
  return Object.fromEntries((["dX", "dgamma", "dbeta"] as const).filter((k) => out[k]).map((k) => [k, out[k]]));
}

/** dgamma and dbeta (values and scales) summed over each group's channels, for a per-group affine. */
function groupedSums(bs: BackwardSums, index: GroupIndex): BackwardSums {
  const sum = (v: Float64Array) => {
    const out = new Float64Array(index.G);
    for (let c = 0; c < index.C; c++) out[index.groupOf[c]] += v[c];
    return out;
  };
  return { ...bs, dgamma: sum(bs.dgamma), dbeta: sum(bs.dbeta), absDgamma: sum(bs.absDgamma), absDbeta: sum(bs.absDbeta) };
}
