/**
 * Panels (2) and (3) of the roofline SVG (svg.ts): copy bandwidth against the working set of all
 * threads with the cache capacities they reach, and GB/s against threads with the host's domains.
 */
import type { CacheLevel } from "./host.js";
import { cacheReach } from "./host.js";
import type { RooflineReport } from "./report.js";
import { bytesLabel } from "./sizes.js";
import { CELL, COLORS, dashAttr, esc, fmt, frame, linAxis, line, logAxis, logTicks, niceStep, Placer, PLOT, plotBounds, polyline, SMALL, text, textWidth, tickLabel, type Anchor, type Axis, type LegendEntry, type Panel } from "./svg-draw.js";

// ------------------------------------------------------------------ panel 2: sweep

function log2Ticks(lo: number, hi: number, p0: number, p1: number, label: (v: number) => string, size: number): Array<[number, string]> {
  const X = logAxis(lo, hi, p0, p1, 2);
  for (const stride of [2, 4, 8, 16, 32, 64, 256, 1024]) {
    const out: Array<[number, string]> = [];
    for (let v = 2 ** Math.ceil(Math.log2(lo)); v <= hi * 1.0001; v *= stride) out.push([v, label(v)]);
    const fits = out.every(([v, s], i) => i === 0 || X.map(v) - X.map(out[i - 1][0]) > (textWidth(s, size) + textWidth(out[i - 1][1], size)) / 2 + 10);
    if (fits) return out;
  }
  return [[lo, label(lo)], [hi, label(hi)]];
}

/** A label along a vertical line at px, reading upwards, left or right of it, hung from the top or standing on the bottom. */
function vlabel(o: string[], P: Placer, s: string, px: number, color: string, key: string, prefer: "top" | "bottom"): void {
  const top = CELL.mt + 5, bottom = CELL.mt + PLOT.h - 5, mid = CELL.mt + PLOT.h / 2;
  const ends: Array<[number, Anchor]> = prefer === "top" ? [[top, "end"], [mid, "middle"], [bottom, "start"]] : [[bottom, "start"], [mid, "middle"], [top, "end"]];
  for (const [y, anchor] of ends) {
    for (const x of [px - 4, px + 4 + 0.8 * SMALL]) {
      if (P.along(s, SMALL, x, y, -90, anchor)) {
        o.push(`<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" transform="rotate(-90 ${x.toFixed(1)} ${y.toFixed(1)})" text-anchor="${anchor}" font-size="${SMALL}" fill="${color}" data-label="${key}">${esc(s)}</text>`);
        return;
      }
    }
  }
}

export function sweepPanel(r: RooflineReport, caches: CacheLevel[]): { panel: Panel; axes: { X: Axis; Y: Axis } | null } {
  const o: string[] = [];
  const legend: LegendEntry[] = [];
  const pts = r.sweep ?? [];
  if (pts.length === 0) {
    o.push(`<rect x="${CELL.ml}" y="${CELL.mt}" width="${PLOT.w}" height="${PLOT.h}" fill="none" stroke="#333"/>`);
    o.push(text(CELL.ml + PLOT.w / 2, CELL.mt + PLOT.h / 2, "no sweep measured (--sweep)", `text-anchor="middle"`));
    return { panel: { body: o, legend }, axes: null };
  }
  const threads = r.host.threads;
  const ws = r.kernels.map((k) => k.working_set_bytes);
  const xlo = pts[0].bytes, xhi = Math.max(pts[pts.length - 1].bytes, ...ws) * 1.6;
  const gb = pts.map((p) => p.gbps).concat([r.attainable.copy_gbps]);
  const ylo = Math.min(...gb) / 1.6, yhi = Math.max(...gb) * 1.6;
  const X = logAxis(xlo, xhi, CELL.ml, CELL.ml + PLOT.w, 2), Y = logAxis(ylo, yhi, CELL.mt + PLOT.h, CELL.mt);
  const xt = log2Ticks(xlo, xhi, CELL.ml, CELL.ml + PLOT.w, bytesLabel, SMALL);
  const yt: Array<[number, string]> = logTicks(ylo, yhi).map((v) => [v, tickLabel(v)]);
  o.push(...frame(`Copy bandwidth against working set (${threads} thread${threads > 1 ? "s" : ""})`, X, Y, "working set of all threads: both arrays of the copy (log)", "bandwidth (GB/s, log)", xt, yt, "clip-sweep", "sweep"));
  const P = new Placer(plotBounds());
  const top = CELL.mt, bottom = CELL.mt + PLOT.h;
  // cache capacities the threads reach
  for (const c of caches) {
    const reach = cacheReach(c, threads);
    if (reach < xlo || reach > xhi) continue;
    const px = X.map(reach);
    o.push(line(px, top, px, bottom, `stroke="${COLORS.cache}" stroke-dasharray="4,4" data-key="cache-L${c.level}" data-bytes="${reach}"`));
    P.line(px, top, px, bottom);
  }
  // the sweep itself
  const path: Array<[number, number]> = pts.map((p) => [X.map(p.bytes), Y.map(p.gbps)]);
  o.push(polyline(path, `stroke="${COLORS.sweep}" stroke-width="2.2" data-key="sweep"`));
  P.polyline(path);
  for (const [px, py] of path) {
    o.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3" fill="${COLORS.sweep}" data-key="sweep-point"/>`);
    P.box({ x0: px - 4, y0: py - 4, x1: px + 4, y1: py + 4 });
  }
  legend.push({ key: "sweep", swatch: "line", color: COLORS.sweep, text: `copy on ${threads} thread${threads > 1 ? "s" : ""}, best of ${pts[0].spread.runs} per working set` });
  // plateaus (the roofs of panel 1) and the copy probe
  for (const c of r.cache_roofs ?? []) {
    const from = Math.max(xlo, c.from_bytes || xlo), to = Math.min(xhi, c.to_bytes ?? pts[pts.length - 1].bytes);
    const y = Y.map(c.gbps);
    o.push(line(X.map(from), y, X.map(to), y, `stroke="${COLORS[c.level]}" stroke-width="5" stroke-opacity="0.55" stroke-linecap="round" data-key="plateau-${c.level}" data-gbps="${c.gbps}"`));
    P.line(X.map(from), y, X.map(to), y);
    const range = c.to_bytes === null ? `of ≥ ${bytesLabel(c.from_bytes)}` : c.to_bytes === c.from_bytes ? `at ${bytesLabel(c.to_bytes)}` : `in ${bytesLabel(c.from_bytes)}–${bytesLabel(c.to_bytes)}`;
    legend.push({ key: `plateau-${c.level}`, swatch: "band", color: COLORS[c.level], text: `${c.level} plateau ${fmt(c.gbps)} GB/s: best point ${range}${c.level === "DRAM" ? "" : `, the ${c.level} roof`}` });
  }
  const dramFrom = r.cache_roofs?.find((c) => c.level === "DRAM")?.from_bytes ?? pts[pts.length - 1].bytes;
  const cy = Y.map(r.attainable.copy_gbps);
  const cx0 = X.map(Math.max(xlo, dramFrom / 2)), cx1 = CELL.ml + PLOT.w;
  o.push(line(cx0, cy, cx1, cy, `stroke="${COLORS.copy}" stroke-width="1.6" stroke-dasharray="8,4" data-key="copy-probe" data-gbps="${r.attainable.copy_gbps}"`));
  P.line(cx0, cy, cx1, cy);
  legend.push({ key: "copy-probe", swatch: "line", color: COLORS.copy, dash: "8,4", text: `copy probe ${fmt(r.attainable.copy_gbps)} GB/s: the roofline's DRAM copy roof` });
  // the kernels' working sets
  for (const k of r.kernels) {
    const px = X.map(k.working_set_bytes);
    const color = k.name === "forward" ? COLORS.forward : COLORS.backward, dash = k.name === "forward" ? "" : "6,3";
    o.push(line(px, top, px, bottom, `stroke="${color}" stroke-width="2"${dashAttr(dash)} data-key="ws-${k.name}" data-bytes="${k.working_set_bytes}"`));
    P.line(px, top, px, bottom);
    legend.push({ key: `ws-${k.name}`, swatch: "vline", color, dash, text: `GroupNorm ${k.name}'s working set ${bytesLabel(k.working_set_bytes)} (${k.name === "forward" ? "X, Y written over it" : "dY and X, dX written over dY"})` });
  }
  // labels: along the cache lines (reading upwards), then the working sets and the probe
  for (const c of caches) {
    const reach = cacheReach(c, threads);
    if (reach < xlo || reach > xhi) continue;
    const n = Math.min(c.instances, threads);
    vlabel(o, P, `L${c.level} ${n > 1 ? `${n}×${bytesLabel(c.bytes)}` : bytesLabel(c.bytes)}`, X.map(reach), COLORS.cache, `cache-L${c.level}`, "top");
  }
  const shown = caches.find((c) => cacheReach(c, threads) >= xlo && cacheReach(c, threads) <= xhi);
  if (shown) legend.push({ key: `cache-L${shown.level}`, swatch: "vline", color: COLORS.cache, dash: "4,4", text: `cache capacity the ${threads > 1 ? `${threads} threads reach, one instance per thread (spread over cores)` : "thread reaches"}` });
  for (const k of r.kernels) vlabel(o, P, `${k.name} ${bytesLabel(k.working_set_bytes)}`, X.map(k.working_set_bytes), k.name === "forward" ? COLORS.forward : COLORS.backward, `ws-${k.name}`, "bottom");
  const pl = `copy probe ${fmt(r.attainable.copy_gbps)}`;
  const pa = P.place(pl, SMALL, [[cx1 - 4, cy - 6, "end"], [cx1 - 4, cy + 16, "end"], [cx0, cy - 6, "start"], [cx0, cy + 16, "start"]]);
  if (pa) o.push(text(pa.x, pa.y, pl, `text-anchor="${pa.anchor}" font-size="${SMALL}" fill="${COLORS.copy}" data-label="copy-probe"`));
  return { panel: { body: o, legend }, axes: { X, Y } };
}

// ------------------------------------------------------------------ panel 3: scaling

export function scalingPanel(r: RooflineReport, caches: CacheLevel[]): { panel: Panel; axes: { X: Axis; Y: Axis } } | null {
  const s = r.scaling;
  if (!s || s.points.length === 0) return null;
  const o: string[] = [];
  const legend: LegendEntry[] = [];
  const figs = ["copy", "add", "forward", "backward"] as const;
  const tmax = Math.max(...s.counts), tmin = Math.min(...s.counts);
  const ymax = Math.max(...s.points.flatMap((p) => figs.map((f) => p[f].gbps)));
  const step = niceStep(ymax * 1.1, 5);
  const yhi = Math.ceil((ymax * 1.12) / step) * step;
  const X = tmax > tmin ? logAxis(tmin, tmax, CELL.ml + 14, CELL.ml + PLOT.w - 14, 2) : linAxis(tmin - 1, tmin + 1, CELL.ml, CELL.ml + PLOT.w);
  const Y = linAxis(0, yhi, CELL.mt + PLOT.h, CELL.mt);
  // x ticks at the measured counts, those that fit
  const xt: Array<[number, string]> = [];
  for (const t of s.counts) {
    const last = xt[xt.length - 1];
    if (!last || X.map(t) - X.map(last[0]) > textWidth(String(t), SMALL) + 8) xt.push([t, String(t)]);
  }
  const yt: Array<[number, string]> = [];
  for (let v = 0; v <= yhi + 1e-9; v += step) yt.push([v, tickLabel(v)]);
  o.push(...frame("Thread scaling", X, Y, "threads (log₂)", "bandwidth (GB/s)", xt, yt, "clip-scaling", "scaling"));
  const P = new Placer(plotBounds());
  const top = CELL.mt, bottom = CELL.mt + PLOT.h;
  // the host's thread domains
  const h = r.host;
  const llc = caches[caches.length - 1]?.shared_by_cores;
  const domains: Array<[number, string]> = [];
  if (llc && llc > 1) domains.push([llc, `LLC ${llc}`]);
  if (h.numa_nodes.length > 1) domains.push([h.numa_nodes[0].cpus / Math.max(1, h.smt), `node ${h.numa_nodes[0].cpus / Math.max(1, h.smt)}`]);
  if (h.sockets > 1) domains.push([h.physical_cores / h.sockets, `socket ${h.physical_cores / h.sockets}`]);
  if (h.smt > 1) domains.push([h.physical_cores, `cores ${h.physical_cores}`]);
  const drawn = new Set<number>();
  for (const [t, label] of domains) {
    if (!(t > tmin && t < tmax) || drawn.has(t)) continue;
    drawn.add(t);
    const px = X.map(t);
    o.push(line(px, top, px, bottom, `stroke="${COLORS.domain}" stroke-dasharray="3,3" data-key="domain-${t}" data-threads="${t}"`));
    P.line(px, top, px, bottom);
    vlabel(o, P, label, px, "#666", `domain-${t}`, "top");
  }
  if (drawn.size) legend.push({ key: `domain-${[...drawn][0]}`, swatch: "vline", color: COLORS.domain, dash: "3,3", text: "the host's thread domains: cores per last-level cache, per NUMA node, per socket; SMT past 'cores'" });
  // linear scaling of copy from its first point
  const c1 = s.points[0].copy.gbps / s.points[0].threads;
  const tIdeal = Math.min(tmax, yhi / c1);
  if (tIdeal > tmin) {
    const ideal: Array<[number, number]> = [[X.map(tmin), Y.map(c1 * tmin)], [X.map(tIdeal), Y.map(c1 * tIdeal)]];
    o.push(polyline(ideal, `stroke="#bbbbbb" stroke-width="1.5" stroke-dasharray="2,3" data-key="scaling-ideal"`));
    P.polyline(ideal);
    legend.push({ key: "scaling-ideal", swatch: "line", color: "#bbbbbb", dash: "2,3", text: `linear scaling of copy from ${s.points[0].threads} thread${s.points[0].threads > 1 ? "s" : ""}` });
  }
  const colors = { copy: COLORS.copy, add: COLORS.add, forward: COLORS.forward, backward: COLORS.backward };
  const dashes = { copy: "", add: "9,4", forward: "", backward: "6,3" };
  for (const f of figs) {
    const pts: Array<[number, number]> = s.points.map((p) => [X.map(p.threads), Y.map(p[f].gbps)]);
    o.push(polyline(pts, `stroke="${colors[f]}" stroke-width="2.2"${dashAttr(dashes[f])} data-key="scaling-${f}"`));
    P.polyline(pts);
    for (const [px, py] of pts) {
      o.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3.2" fill="${colors[f]}"/>`);
      P.box({ x0: px - 4, y0: py - 4, x1: px + 4, y1: py + 4 });
    }
    const sat = s.points.find((p) => p.threads === s.saturation[f])!;
    const sx = X.map(sat.threads), sy = Y.map(sat[f].gbps);
    o.push(`<circle cx="${sx.toFixed(1)}" cy="${sy.toFixed(1)}" r="7" fill="none" stroke="${colors[f]}" stroke-width="1.6" data-key="saturation-${f}" data-threads="${sat.threads}"/>`);
    P.box({ x0: sx - 8, y0: sy - 8, x1: sx + 8, y1: sy + 8 });
    const last = s.points[s.points.length - 1][f];
    legend.push({ key: `scaling-${f}`, swatch: "line", color: colors[f], dash: dashes[f], text: `${f} ${fmt(last.gbps)} GB/s at ${tmax}; saturates at ${s.saturation[f]} thread${s.saturation[f] > 1 ? "s" : ""}` });
  }
  legend.push({ key: "saturation-copy", swatch: "ring", color: COLORS.copy, text: "fewest threads reaching 90% of the curve's best: where it saturates" });
  for (const f of figs) {
    const p = s.points[s.points.length - 1];
    const px = X.map(p.threads), py = Y.map(p[f].gbps);
    const at = P.place(f, SMALL, [[px - 10, py - 8, "end"], [px - 10, py + 16, "end"], [px - 30, py - 8, "end"], [px - 30, py + 16, "end"], [px - 50, py - 8, "end"]]);
    if (at) o.push(text(at.x, at.y, f, `text-anchor="${at.anchor}" font-size="${SMALL}" fill="${colors[f]}" data-label="scaling-${f}"`));
  }
  return { panel: { body: o, legend }, axes: { X, Y } };
}
