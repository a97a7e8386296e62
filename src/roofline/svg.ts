/**
 * The roofline report as an SVG document, panels on a two-column grid:
 *   (1) the log-log roofline: the compute ceiling, the DRAM copy and add roofs (forward's and
 *       backward's), the theoretical DRAM roof when known, the L1/L2/L3 roofs from the sweep, the
 *       ridge and the kernels;
 *   (2) copy bandwidth against the working set of all threads, with the capacity of each cache
 *       level those threads reach, each level's plateau (the roofs of (1)), the copy probe and the
 *       kernels' working sets;
 *   (3) with --scaling, GB/s against threads, with the host's thread domains;
 * then notes (how the two DRAM figures compare, host facts, warnings). Every legend entry has a
 * swatch drawn as the element it names (data-legend = that element's data-key), and every label is
 * placed where it overlaps no other label, line or marker, or left out (the legend still has it).
 * Text is real SVG text; widths are estimated for DejaVu Sans.
 */
import type { CacheLevel } from "./host.js";
import type { RooflineReport } from "./report.js";
import { bytesLabel } from "./sizes.js";
import { scalingPanel, sweepPanel } from "./svg-panels.js";
import { CELL, CELL_W, COLORS, dashAttr, decadeAbove, decadeBelow, esc, fmt, FONT, frame, LEGEND_LINE, line, logAxis, logTicks, MARGIN, Placer, PLOT, plotBounds, polyline, SMALL, text, textWidth, tickLabel, wrap, type Axis, type LegendEntry, type Panel, type Anchor } from "./svg-draw.js";

export { bytesLabel };
export { textBox, textWidth } from "./svg-draw.js";

// ------------------------------------------------------------------ panel 1: roofline

interface Roof {
  key: string;
  gbps: number;
  color: string;
  dash?: string;
  width: number;
  label: string;
  legend: string;
}

function rooflinePanel(r: RooflineReport): { panel: Panel; axes: { X: Axis; Y: Axis } } {
  const o: string[] = [];
  const legend: LegendEntry[] = [];
  const peak = r.compute_gflops;
  const roofs: Roof[] = [];
  const dt = r.kernels[0]?.dtype ?? "";
  roofs.push({ key: "roof-copy", gbps: r.attainable.copy_gbps, color: COLORS.copy, width: 2.4, label: `DRAM copy ${fmt(r.attainable.copy_gbps)} GB/s`, legend: `DRAM copy roof ${fmt(r.attainable.copy_gbps)} GB/s (STREAM copy probe): forward's` });
  roofs.push({ key: "roof-add", gbps: r.attainable.add_gbps, color: COLORS.add, dash: "9,4", width: 2.4, label: `DRAM add ${fmt(r.attainable.add_gbps)} GB/s`, legend: `DRAM add roof ${fmt(r.attainable.add_gbps)} GB/s (STREAM add probe): backward's` });
  if (r.theoretical.gbps) {
    roofs.push({ key: "roof-theoretical", gbps: r.theoretical.gbps, color: COLORS.theo, dash: "7,5", width: 2, label: `theoretical ${fmt(r.theoretical.gbps)} GB/s`, legend: `theoretical DRAM roof ${fmt(r.theoretical.gbps)} GB/s (${r.theoretical.source})` });
  }
  for (const c of r.cache_roofs ?? []) {
    if (c.level === "DRAM") continue;
    roofs.push({ key: `roof-${c.level}`, gbps: c.gbps, color: COLORS[c.level], dash: "4,3", width: 1.8, label: `${c.level} ${fmt(c.gbps)} GB/s`, legend: `${c.level} roof ${fmt(c.gbps)} GB/s (copy plateau of the sweep, ≤ ${bytesLabel(c.capacity_bytes ?? 0)})` });
  }
  const ais = r.kernels.map((k) => k.intensity);
  const ridgeOf = (gbps: number) => peak / gbps;
  // from a quarter of the fastest roof's ridge: every roof has a stretch of its own for its label
  const xlo = decadeBelow(Math.min(0.1, ...ais.map((a) => a / 3), ...roofs.map((f) => ridgeOf(f.gbps) / 4)));
  const xhi = decadeAbove(Math.max(r.ridge_intensity * 4, 10, ...ais.map((a) => a * 3)));
  // y from just below the lowest roof's start to a little over the ceiling: room between the roofs
  const ylo = Math.min(r.attainable.copy_gbps * xlo, ...r.kernels.map((k) => k.gflops)) / 1.6;
  const yhi = peak * 2.5;
  const X = logAxis(xlo, xhi, CELL.ml, CELL.ml + PLOT.w), Y = logAxis(ylo, yhi, CELL.mt + PLOT.h, CELL.mt);
  const ticks = (lo: number, hi: number): Array<[number, string]> => logTicks(lo, hi).filter((v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9).map((v) => [v, tickLabel(v)]);
  o.push(...frame("Roofline", X, Y, "arithmetic intensity (FLOP/byte, log)", "performance (GFLOP/s, log)", ticks(xlo, xhi), ticks(ylo, yhi), "clip-roofline", "roofline"));
  const P = new Placer(plotBounds());
  // roofs: from the left edge up to the ceiling; the ceiling from the leftmost ridge to the right edge
  const leftmost = Math.max(xlo, Math.min(...roofs.map((f) => ridgeOf(f.gbps))));
  const cy = Y.map(peak);
  const ceiling: Array<[number, number]> = [[X.map(leftmost), cy], [X.map(xhi), cy]];
  for (const f of roofs) {
    const ridge = ridgeOf(f.gbps);
    const start = Math.max(xlo, Math.min(ridge, ylo / f.gbps));
    const pts: Array<[number, number]> = ridge > xlo ? [[X.map(start), Y.map(f.gbps * start)], [X.map(Math.min(ridge, xhi)), Y.map(Math.min(peak, f.gbps * xhi))]] : [[X.map(xlo), cy], [X.map(xlo), cy]];
    o.push(polyline(pts, `clip-path="url(#clip-roofline)" stroke="${f.color}" stroke-width="${f.width}"${dashAttr(f.dash)} data-key="${f.key}" data-gbps="${f.gbps}"`));
    P.polyline(pts, f.key);
    legend.push({ key: f.key, swatch: "line", color: f.color, dash: f.dash, text: f.legend });
  }
  o.push(polyline(ceiling, `stroke="${COLORS.compute}" stroke-width="2.4" data-key="ceiling" data-gflops="${peak}"`));
  P.polyline(ceiling);
  legend.unshift({ key: "ceiling", swatch: "line", color: COLORS.compute, text: `compute ceiling ${fmt(peak)} GFLOP/s (WASM SIMD multiply-add, ${dt})` });
  // markers first (labels avoid them)
  const ridge = r.ridge_intensity;
  const rx = X.map(ridge);
  o.push(`<circle cx="${rx.toFixed(1)}" cy="${cy.toFixed(1)}" r="5" fill="white" stroke="${COLORS.compute}" stroke-width="2" data-key="ridge"/>`);
  P.box({ x0: rx - 6, y0: cy - 6, x1: rx + 6, y1: cy + 6 });
  const marks = r.kernels.map((k) => ({ k, px: X.map(k.intensity), py: Y.map(k.gflops), color: k.name === "forward" ? COLORS.forward : COLORS.backward }));
  for (const m of marks) {
    o.push(`<circle cx="${m.px.toFixed(1)}" cy="${m.py.toFixed(1)}" r="6" fill="${m.color}" stroke="#222" data-key="kernel-${m.k.name}"/>`);
    P.box({ x0: m.px - 7, y0: m.py - 7, x1: m.px + 7, y1: m.py + 7 });
  }
  // each roof's label runs along it, just above or below it (or on it, over a white band), where it
  // is clear of every other line, marker and label
  const slope = -(PLOT.h / Math.log10(yhi / ylo)) / (PLOT.w / Math.log10(xhi / xlo));
  const angle = (Math.atan(slope) * 180) / Math.PI;
  const n = [Math.sin((angle * Math.PI) / 180), -Math.cos((angle * Math.PI) / 180)];
  // roofs with less than two glyphs' height between them share one label, on the upper
  const byRate = [...roofs].sort((p, q) => q.gbps - p.gbps);
  const apart = (a: Roof, b: Roof) => Math.log10(a.gbps / b.gbps) * (PLOT.h / Math.log10(yhi / ylo)) * Math.cos((angle * Math.PI) / 180);
  const groups: Roof[][] = [];
  for (const f of byRate) {
    const g = groups[groups.length - 1];
    if (g && apart(g[0], f) < 1.7 * SMALL) g.push(f); // against the group's top roof: no chains
    else groups.push([f]);
  }
  for (const g of groups) {
    const f = g[0];
    const full = g.length === 1 ? f.label : `${g.map((x, i) => x.label.replace(/ GB\/s$/, "").replace(i > 0 && g[0].label.startsWith("DRAM") ? /^DRAM / : /^$/, "")).join(" · ")} GB/s`;
    // where the full label fits nowhere: the level names and figures only
    const names = [...new Set(g.map((x) => x.label.split(" ")[0]))].join("/");
    const lo = fmt(g[g.length - 1].gbps), hi = fmt(f.gbps);
    const compact = g.length === 1 ? f.label : `${names} ${lo === hi ? hi : `${lo}–${hi}`} GB/s`;
    const keys = g.map((x) => x.key).join(" ");
    const from = Math.max(xlo, ylo / g[g.length - 1].gbps), to = Math.min(ridgeOf(f.gbps), xhi);
    if (!(to > from)) continue;
    place: for (const label of full === compact ? [full] : [full, compact]) {
      const w = textWidth(label, SMALL);
      // just above the group, then just below it, then on its lines (over a white band)
      for (const centre of [0.5 * SMALL + 4, "below", 0] as const) {
        for (const t of [0.05, 0.13, 0.21, 0.29, 0.37, 0.45, 0.53, 0.61, 0.69, 0.77]) {
          const v = from * (to / from) ** t;
          const base = centre === "below" ? g[g.length - 1] : f;
          const c = centre === "below" ? -(0.5 * SMALL + 4) : centre;
          const off = c - 0.32 * SMALL;
          const x = X.map(v) + n[0] * off, y = Y.map(base.gbps * v) + n[1] * off;
          if (!P.along(label, SMALL, x, y, angle, "start", centre === 0 ? g.map((q) => q.key) : [])) continue;
          const rot = `rotate(${angle.toFixed(2)} ${x.toFixed(1)} ${y.toFixed(1)})`;
          const band = centre === 0 ? `<rect x="${(x - 2).toFixed(1)}" y="${(y - 0.8 * SMALL).toFixed(1)}" width="${(w + 4).toFixed(1)}" height="${(1.05 * SMALL).toFixed(1)}" fill="white"/>` : "";
          o.push(`<g transform="${rot}">${band}<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" font-size="${SMALL}" fill="${f.color}" data-label="${keys}">${esc(label)}</text></g>`);
          break place;
        }
      }
    }
  }
  // labels: kernels, ceiling, ridge
  for (const m of marks) {
    const s = m.k.name;
    const near: Array<[number, number, Anchor]> = [[m.px + 10, m.py + 5, "start"], [m.px - 10, m.py + 5, "end"], [m.px, m.py + 22, "middle"], [m.px, m.py - 11, "middle"], [m.px + 10, m.py + 20, "start"], [m.px - 10, m.py + 20, "end"], [m.px - 10, m.py - 9, "end"], [m.px + 10, m.py - 9, "start"]];
    const far: Array<[number, number, Anchor]> = [[m.px + 10, m.py + 36, "start"], [m.px, m.py + 38, "middle"], [m.px + 10, m.py + 52, "start"], [m.px + 24, m.py - 20, "start"]];
    const at = P.place(s, FONT, [...near, ...far]);
    if (at) o.push(text(at.x, at.y, s, `text-anchor="${at.anchor}" fill="${m.color}" font-weight="bold" data-label="kernel-${s}"`));
  }
  const cl = `ceiling ${fmt(peak)} GFLOP/s`;
  const right = CELL.ml + PLOT.w - 6;
  const spots: Array<[number, number, Anchor]> = [[right, cy - 7, "end"], [rx + 12, cy - 7, "start"], [right, cy + 18, "end"], [right, cy - 24, "end"], [rx + 12, cy + 18, "start"], [rx - 12, cy - 7, "end"], [rx - 12, cy - 24, "end"]];
  for (const size of [FONT, SMALL]) {
    const c1 = P.place(cl, size, spots);
    if (c1) {
      o.push(text(c1.x, c1.y, cl, `text-anchor="${c1.anchor}" font-size="${size}" fill="${COLORS.compute}" data-label="ceiling"`));
      break;
    }
  }
  const rl = `ridge ${fmt(ridge)} FLOP/B`;
  const r1 = P.place(rl, FONT, [[rx + 8, cy + 18, "start"], [rx - 8, cy - 8, "end"], [rx + 8, cy - 8, "start"], [rx - 8, cy + 18, "end"], [rx, cy + 34, "middle"]]);
  if (r1) o.push(text(r1.x, r1.y, rl, `text-anchor="${r1.anchor}" fill="${COLORS.compute}" data-label="ridge"`));
  for (const m of marks) {
    const k = m.k, roof = k.name === "forward" ? "copy" : "add";
    legend.push({ key: `kernel-${k.name}`, swatch: "dot", color: m.color, text: `${k.name} ${k.layout}: ${fmt(k.gflops)} GFLOP/s at ${fmt(k.intensity)} FLOP/B, ${fmt(k.gbps)} GB/s = ${(k.fraction_of_attainable * 100).toFixed(0)}% of the DRAM ${roof} roof` });
  }
  legend.push({ key: "ridge", swatch: "ring", color: COLORS.compute, text: `ridge: the copy roof meets the ceiling at ${fmt(ridge)} FLOP/B` });
  return { panel: { body: o, legend }, axes: { X, Y } };
}

// ------------------------------------------------------------------ the document

function legendBlock(entries: LegendEntry[], x: number, y: number, width: number): { svg: string[]; height: number } {
  const o: string[] = [];
  let cy = y;
  for (const e of entries) {
    const lines = wrap(e.text, width - 40, SMALL);
    const sy = cy - 4;
    const sw: string[] = [];
    if (e.swatch === "line") sw.push(line(x, sy, x + 28, sy, `stroke="${e.color}" stroke-width="2.4"${dashAttr(e.dash)}`));
    if (e.swatch === "band") sw.push(line(x + 2, sy, x + 26, sy, `stroke="${e.color}" stroke-width="5" stroke-opacity="0.55" stroke-linecap="round"`));
    if (e.swatch === "vline") sw.push(line(x + 14, sy - 7, x + 14, sy + 6, `stroke="${e.color}" stroke-width="2"${dashAttr(e.dash)}`));
    if (e.swatch === "dot") sw.push(`<circle cx="${x + 14}" cy="${sy}" r="5.5" fill="${e.color}" stroke="#222"/>`);
    if (e.swatch === "ring") sw.push(`<circle cx="${x + 14}" cy="${sy}" r="5" fill="white" stroke="${e.color}" stroke-width="2"/>`);
    o.push(`<g data-legend="${e.key}">${sw.join("")}${lines.map((l, i) => text(x + 36, cy + i * (LEGEND_LINE - 3), l, `font-size="${SMALL}"`)).join("")}</g>`);
    cy += LEGEND_LINE + (lines.length - 1) * (LEGEND_LINE - 3);
  }
  return { svg: o, height: cy - y };
}

/** The notes under the panels: how the figures relate, host facts, warnings. */
function notes(r: RooflineReport, caches: CacheLevel[]): string[] {
  const n: string[] = [];
  const h = r.host;
  n.push(`Host: ${h.sockets} socket${h.sockets > 1 ? "s" : ""}, ${h.physical_cores} cores × ${h.smt} hardware thread${h.smt > 1 ? "s" : ""}, ${h.numa_nodes.length || "?"} NUMA node${h.numa_nodes.length === 1 ? "" : "s"}, transparent huge pages ${h.huge_pages ?? "not reported"}${h.buffers ? `; buffers on ${h.buffers.nodes.map((b) => `node ${b.node}`).join(", ")}` : ""}.`);
  if (caches.length) n.push(`Caches: ${caches.map((c) => `L${c.level} ${bytesLabel(c.bytes)} ${c.shared_by_cores > 1 ? `per ${c.shared_by_cores} cores` : "per core"} ×${c.instances}`).join(", ")}; the sweep's x-axis and markers count all ${h.threads} threads: L${caches[0].level} reached = ${Math.min(caches[0].instances, h.threads)} × ${bytesLabel(caches[0].bytes)}.`);
  if (r.dram_check) n.push(`DRAM: ${r.dram_check.note}.`);
  if (!r.theoretical.gbps) n.push(`No theoretical roof: ${r.theoretical.detail}.`);
  const k = r.kernels[0];
  if (k) n.push(`Spread: best of ${k.runs} runs drawn; ${r.kernels.map((x) => `${x.name} median ${fmt(x.spread.median)}, p90 ${fmt(x.spread.p90)} GB/s, CV ${(x.spread.cv * 100).toFixed(1)}%`).join("; ")}.`);
  for (const w of r.warnings) n.push(`Warning: ${w}.`);
  return n;
}

export function rooflineSvg(r: RooflineReport, caches: CacheLevel[]): string {
  const rl = rooflinePanel(r);
  const sw = sweepPanel(r, caches);
  const sc = scalingPanel(r, caches);
  const cells: Array<{ kind: string; panel: Panel; axes: { X: Axis; Y: Axis } | null }> = [
    { kind: "roofline", ...rl },
    { kind: "sweep", ...sw },
  ];
  if (sc) cells.push({ kind: "scaling", ...sc });
  const W = MARGIN * 2 + 2 * CELL_W;
  const k0 = r.kernels[0];
  const title = wrap(`groupnorm roofline: ${r.host.cpu}`, W - 2 * MARGIN, 18, true);
  const subtitle = `${r.host.threads} thread${r.host.threads > 1 ? "s" : ""}${k0 ? `, GroupNorm ${k0.dtype} (${k0.shape.join("×")}), G = ${k0.groups}, ${k0.layout}` : ""}`;
  const out: string[] = [];
  const titleSvg = title.map((l, i) => text(W / 2, 30 + i * 24, l.trim(), `text-anchor="middle" font-size="18" font-weight="bold" data-title="1"`));
  titleSvg.push(text(W / 2, 30 + title.length * 24, subtitle, `text-anchor="middle" font-size="${FONT}" data-title="2"`));
  let y = 40 + title.length * 24;
  const rows: string[] = [];
  const noteLines = notes(r, caches);
  for (let i = 0; i < cells.length; i += 2) {
    const row = cells.slice(i, i + 2);
    let height = 0;
    row.forEach((c, j) => {
      const ox = MARGIN + j * CELL_W, oy = y;
      const lg = legendBlock(c.panel.legend, CELL.ml - 40, CELL.mt + PLOT.h + CELL.mb + 14, CELL_W - (CELL.ml - 40) - 8);
      const axes = c.axes ? ` data-x-lo="${c.axes.X.lo}" data-x-hi="${c.axes.X.hi}" data-y-lo="${c.axes.Y.lo}" data-y-hi="${c.axes.Y.hi}"` : "";
      rows.push(`<g data-panel="${c.kind}" transform="translate(${ox},${oy})" data-origin="${ox},${oy}" data-plot="${CELL.ml},${CELL.mt},${PLOT.w},${PLOT.h}"${axes}>`);
      rows.push(...c.panel.body, ...lg.svg, "</g>");
      height = Math.max(height, CELL.mt + PLOT.h + CELL.mb + 14 + lg.height);
    });
    if (row.length === 1) {
      // the notes take the free cell beside the last panel
      const ox = MARGIN + CELL_W + 10;
      const lines = noteLines.flatMap((l) => wrap(l, CELL_W - 24, SMALL));
      rows.push(`<g data-notes="1" transform="translate(${ox},${y})">`, text(0, CELL.mt - 30, "Notes", `font-size="16" font-weight="bold"`));
      lines.forEach((l, k) => rows.push(text(0, CELL.mt + k * 17, l, `font-size="${SMALL}"`)));
      rows.push("</g>");
      height = Math.max(height, CELL.mt + lines.length * 17 + 10);
      noteLines.length = 0;
    }
    y += height + 10;
  }
  if (noteLines.length) {
    const lines = noteLines.flatMap((l) => wrap(l, W - 2 * MARGIN - 10, SMALL));
    rows.push(`<g data-notes="1" transform="translate(${MARGIN + 10},${y})">`);
    lines.forEach((l, k) => rows.push(text(0, k * 17 + 12, l, `font-size="${SMALL}"`)));
    rows.push("</g>");
    y += lines.length * 17 + 20;
  }
  const H = Math.ceil(y + 6);
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="${FONT}">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(...titleSvg, ...rows, "</svg>");
  return out.join("\n") + "\n";
}
