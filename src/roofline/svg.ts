/**
 * The roofline report as an SVG document with two panels: (1) the log-log roofline — arithmetic
 * intensity against GFLOP/s, with the measured copy and triad roofs, the theoretical DRAM roof
 * (dashed) when known, the measured compute ceiling, the ridge point and the kernels; (2) copy
 * bandwidth against working-set size from L1 to DRAM, with the cache sizes and the GroupNorm tensor
 * marked. Text is real SVG text.
 */
import type { CacheLevel } from "./host.js";
import type { RooflineReport } from "./report.js";

const W = 1240, H = 600;
const PANEL = { w: 500, h: 400, top: 70 };
const LEFT1 = 90, LEFT2 = 90 + 500 + 120;
const COLORS = { copy: "#1f77b4", triad: "#2ca02c", theo: "#7f7f7f", compute: "#d62728", forward: "#ff7f0e", backward: "#9467bd", sweep: "#1f77b4", cache: "#8c564b", tensor: "#e377c2" };

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function fmt(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

export function bytesLabel(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) {
    b /= 1024;
    i++;
  }
  return `${Number.isInteger(b) ? b : b.toFixed(1)} ${units[i]}`;
}

class LogAxis {
  constructor(
    readonly lo: number,
    readonly hi: number,
    readonly p0: number,
    readonly p1: number,
  ) {}
  map(v: number): number {
    const t = (Math.log10(v) - Math.log10(this.lo)) / (Math.log10(this.hi) - Math.log10(this.lo));
    return this.p0 + t * (this.p1 - this.p0);
  }
  ticks(): number[] {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(this.lo)); e <= Math.ceil(Math.log10(this.hi)); e++) {
      const v = 10 ** e;
      if (v >= this.lo * 0.999 && v <= this.hi * 1.001) out.push(v);
    }
    return out;
  }
}

export function rooflineSvg(r: RooflineReport, caches: CacheLevel[]): string {
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  const k0 = r.kernels[0];
  const title = `groupnorm roofline — ${r.host.cpu}, ${r.host.threads} threads${k0 ? `, ${k0.dtype} (${k0.shape.join("×")}), G = ${k0.groups}, ${k0.layout}` : ""}`;
  out.push(`<text x="${W / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${esc(title)}</text>`);
  out.push(...rooflinePanel(r));
  out.push(...sweepPanel(r, caches));
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function rooflinePanel(r: RooflineReport): string[] {
  const o: string[] = [];
  const x0 = LEFT1, y0 = PANEL.top, pw = PANEL.w, ph = PANEL.h;
  const peak = r.compute_gflops;
  const bw = r.attainable.copy_gbps;
  const ais = r.kernels.map((k) => k.intensity);
  const xlo = 10 ** Math.floor(Math.log10(Math.min(0.1, ...ais.map((a) => a / 3))));
  const xhi = 10 ** Math.ceil(Math.log10(Math.max(r.ridge_intensity * 10, 10)));
  const ylo = 10 ** Math.floor(Math.log10(Math.min(bw * xlo, ...r.kernels.map((k) => k.gflops / 3))));
  const yhi = 10 ** Math.ceil(Math.log10(Math.max(peak, (r.theoretical.gbps ?? 0) * r.ridge_intensity) * 2));
  const X = new LogAxis(xlo, xhi, x0, x0 + pw), Y = new LogAxis(ylo, yhi, y0 + ph, y0);
  o.push(`<text x="${x0 + pw / 2}" y="${y0 - 14}" text-anchor="middle" font-size="15" font-weight="bold">Roofline</text>`);
  o.push(`<rect x="${x0}" y="${y0}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  for (const t of X.ticks()) {
    const px = X.map(t);
    o.push(`<line x1="${px}" y1="${y0}" x2="${px}" y2="${y0 + ph}" stroke="#ddd"/>`);
    o.push(`<text x="${px}" y="${y0 + ph + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of Y.ticks()) {
    const py = Y.map(t);
    o.push(`<line x1="${x0}" y1="${py}" x2="${x0 + pw}" y2="${py}" stroke="#ddd"/>`);
    o.push(`<text x="${x0 - 8}" y="${py + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  o.push(`<text x="${x0 + pw / 2}" y="${y0 + ph + 42}" text-anchor="middle">arithmetic intensity (FLOP/byte, log)</text>`);
  o.push(`<text transform="translate(${x0 - 58},${y0 + ph / 2}) rotate(-90)" text-anchor="middle">performance (GFLOP/s, log)</text>`);
  o.push(`<clipPath id="plot1"><rect x="${x0}" y="${y0}" width="${pw}" height="${ph}"/></clipPath>`);
  const legend: Array<[string, string, string]> = [];
  const roof = (gbps: number, color: string, dash: string, label: string) => {
    const ridge = peak / gbps;
    const xa = xlo, xb = Math.min(ridge, xhi);
    o.push(`<line clip-path="url(#plot1)" x1="${X.map(xa)}" y1="${Y.map(gbps * xa)}" x2="${X.map(xb)}" y2="${Y.map(gbps * xb)}" stroke="${color}" stroke-width="2.2" ${dash}/>`);
    legend.push([color, dash, label]);
  };
  if (r.theoretical.gbps) roof(r.theoretical.gbps, COLORS.theo, 'stroke-dasharray="7,5"', `theoretical DRAM roof ${fmt(r.theoretical.gbps)} GB/s (${r.theoretical.source})`);
  roof(bw, COLORS.copy, "", `copy roof ${fmt(bw)} GB/s (measured)`);
  roof(r.attainable.triad_gbps, COLORS.triad, 'stroke-dasharray="2,3"', `triad roof ${fmt(r.attainable.triad_gbps)} GB/s (measured)`);
  if (!r.theoretical.gbps) legend.push(["#999", "", `no theoretical roof: ${r.theoretical.detail}`.slice(0, 70)]);
  o.push(`<rect x="${x0 + 8}" y="${y0 + 8}" width="330" height="${14 + 18 * legend.length}" fill="white" fill-opacity="0.9" stroke="#ccc"/>`);
  legend.forEach(([color, dash, label], i) => {
    const ly = y0 + 24 + 18 * i;
    o.push(`<line x1="${x0 + 16}" y1="${ly - 4}" x2="${x0 + 44}" y2="${ly - 4}" stroke="${color}" stroke-width="2.2" ${dash}/>`);
    o.push(`<text x="${x0 + 52}" y="${ly}" font-size="12">${esc(label)}</text>`);
  });
  // compute ceiling and ridge
  const ridge = r.ridge_intensity;
  o.push(`<line x1="${X.map(Math.max(xlo, ridge))}" y1="${Y.map(peak)}" x2="${x0 + pw}" y2="${Y.map(peak)}" stroke="${COLORS.compute}" stroke-width="2.2"/>`);
  o.push(`<text x="${x0 + pw - 6}" y="${Y.map(peak) - 8}" text-anchor="end" fill="${COLORS.compute}">compute ceiling ${fmt(peak)} GFLOP/s (WASM SIMD mul+add)</text>`);
  o.push(`<circle cx="${X.map(ridge)}" cy="${Y.map(peak)}" r="5" fill="white" stroke="${COLORS.compute}" stroke-width="2"/>`);
  o.push(`<text x="${X.map(ridge) + 8}" y="${Y.map(peak) + 18}" fill="${COLORS.compute}">ridge ${fmt(ridge)} FLOP/B</text>`);
  // kernels
  r.kernels.forEach((k, i) => {
    const color = k.name === "forward" ? COLORS.forward : COLORS.backward;
    const px = X.map(k.intensity), py = Y.map(k.gflops);
    o.push(`<circle cx="${px}" cy="${py}" r="6" fill="${color}" stroke="#222"/>`);
    o.push(`<text x="${px - 10}" y="${py + (i === 0 ? -10 : 20)}" text-anchor="end" fill="${color}" font-weight="bold">${k.name}</text>`);
    const roofName = k.name === "forward" ? "copy" : "add";
    const label = `● ${k.name} ${k.layout}: ${fmt(k.gflops)} GFLOP/s at ${fmt(k.intensity)} FLOP/B, ${fmt(k.gbps)} GB/s = ${(k.fraction_of_attainable * 100).toFixed(0)}% of the ${roofName} roof`;
    o.push(`<text x="${x0}" y="${y0 + ph + 66 + 18 * i}" fill="${color}">${esc(label)}</text>`);
  });
  return o;
}

function sweepPanel(r: RooflineReport, caches: CacheLevel[]): string[] {
  const o: string[] = [];
  const x0 = LEFT2, y0 = PANEL.top, pw = PANEL.w, ph = PANEL.h;
  o.push(`<text x="${x0 + pw / 2}" y="${y0 - 14}" text-anchor="middle" font-size="15" font-weight="bold">Bandwidth against working set (copy)</text>`);
  o.push(`<rect x="${x0}" y="${y0}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  const pts = r.sweep ?? [];
  if (pts.length === 0) {
    o.push(`<text x="${x0 + pw / 2}" y="${y0 + ph / 2}" text-anchor="middle">no sweep measured</text>`);
    return o;
  }
  const xlo = pts[0].bytes, xhi = Math.max(pts[pts.length - 1].bytes, ...r.kernels.map((k) => k.bytes));
  const ymax = Math.max(...pts.map((p) => p.gbps)) * 1.15;
  const lx = (b: number) => x0 + ((Math.log2(b) - Math.log2(xlo)) / (Math.log2(xhi) - Math.log2(xlo))) * pw;
  const ly = (g: number) => y0 + ph - (g / ymax) * ph;
  for (let b = 2 ** Math.ceil(Math.log2(xlo)); b <= xhi; b *= 4) {
    o.push(`<line x1="${lx(b)}" y1="${y0}" x2="${lx(b)}" y2="${y0 + ph}" stroke="#eee"/>`);
    o.push(`<text x="${lx(b)}" y="${y0 + ph + 18}" text-anchor="middle" font-size="11">${bytesLabel(b)}</text>`);
  }
  const step = ymax > 200 ? 50 : ymax > 80 ? 20 : ymax > 30 ? 10 : 5;
  for (let g = 0; g <= ymax; g += step) {
    o.push(`<line x1="${x0}" y1="${ly(g)}" x2="${x0 + pw}" y2="${ly(g)}" stroke="#eee"/>`);
    o.push(`<text x="${x0 - 8}" y="${ly(g) + 4}" text-anchor="end">${g}</text>`);
  }
  o.push(`<text x="${x0 + pw / 2}" y="${y0 + ph + 42}" text-anchor="middle">working set: bytes touched per pass (log₂)</text>`);
  o.push(`<text transform="translate(${x0 - 50},${y0 + ph / 2}) rotate(-90)" text-anchor="middle">bandwidth (GB/s)</text>`);
  for (const c of caches) {
    if (c.bytes < xlo || c.bytes > xhi) continue;
    const shared = r.host.threads > 1 && c.level < 3 ? ` ×${r.host.threads}` : "";
    o.push(`<line x1="${lx(c.bytes)}" y1="${y0}" x2="${lx(c.bytes)}" y2="${y0 + ph}" stroke="${COLORS.cache}" stroke-dasharray="4,4"/>`);
    o.push(`<text x="${lx(c.bytes) + 4}" y="${y0 + 16 + 16 * (c.level - 1)}" fill="${COLORS.cache}">L${c.level} ${bytesLabel(c.bytes)}${shared}</text>`);
  }
  const path = pts.map((p, i) => `${i ? "L" : "M"}${lx(p.bytes).toFixed(1)},${ly(p.gbps).toFixed(1)}`).join(" ");
  o.push(`<path d="${path}" fill="none" stroke="${COLORS.sweep}" stroke-width="2.2"/>`);
  for (const p of pts) o.push(`<circle cx="${lx(p.bytes)}" cy="${ly(p.gbps)}" r="3" fill="${COLORS.sweep}"/>`);
  const k = r.kernels[0];
  if (k) {
    o.push(`<line x1="${lx(k.bytes)}" y1="${y0}" x2="${lx(k.bytes)}" y2="${y0 + ph}" stroke="${COLORS.tensor}" stroke-width="2"/>`);
    o.push(`<text x="${lx(k.bytes) - 6}" y="${y0 + ph - 12}" text-anchor="end" fill="${COLORS.tensor}">GroupNorm forward ${bytesLabel(k.bytes)}</text>`);
  }
  const dram = pts[pts.length - 1];
  o.push(`<text x="${x0 + pw - 6}" y="${ly(dram.gbps) - 22}" text-anchor="end" fill="${COLORS.sweep}">DRAM ${fmt(dram.gbps)} GB/s</text>`);
  return o;
}
