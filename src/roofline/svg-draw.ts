/**
 * The drawing layer of the roofline SVG: text widths and number formats, log and linear axes and
 * their ticks, boxes and the label placer that keeps labels off each other and off lines, colours,
 * the grid's sizes, and the SVG primitives and plot frame the panels (svg.ts) are drawn with.
 */
// ------------------------------------------------------------------ text and numbers

export const FONT = 14;
export const SMALL = 12.5;

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Estimated width of `s` in DejaVu Sans at `size` px (slightly generous: a label estimated to fit does). */
export function textWidth(s: string, size: number, bold = false): number {
  let em = 0;
  for (const ch of s) {
    if (" .,:;'|!ilj".includes(ch)) em += 0.34;
    else if ("ftrI()[]-/".includes(ch)) em += 0.45;
    else if ("mwMW%@".includes(ch)) em += 0.95;
    else if (/[A-Z]/.test(ch)) em += 0.74;
    else if (/[0-9a-z]/.test(ch)) em += 0.64;
    else em += 0.85; // ×, –, ≥, ●, µ, …
  }
  return em * size * (bold ? 1.12 : 1);
}

/** A value with three significant figures: 5.26, 44.2, 210. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return "—";
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

/** A tick label, one style on every axis: 0.01, 0.1, 1, 10, 100, 1000, 10k, 100k. */
export function tickLabel(v: number): string {
  if (v >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

/** Break `s` into lines no wider than `width` px at `size`. */
export function wrap(s: string, width: number, size: number, bold = false): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of s.split(" ")) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size, bold) > width) {
      lines.push(line);
      line = `  ${word}`;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

// ------------------------------------------------------------------ axes

export interface Axis {
  lo: number;
  hi: number;
  p0: number;
  p1: number;
  map(v: number): number;
}

export function logAxis(lo: number, hi: number, p0: number, p1: number, base = 10): Axis {
  const l = (v: number) => Math.log(v) / Math.log(base);
  return { lo, hi, p0, p1, map: (v) => p0 + ((l(v) - l(lo)) / (l(hi) - l(lo))) * (p1 - p0) };
}

export function linAxis(lo: number, hi: number, p0: number, p1: number): Axis {
  return { lo, hi, p0, p1, map: (v) => p0 + ((v - lo) / (hi - lo)) * (p1 - p0) };
}

export const decadeBelow = (v: number) => 10 ** Math.floor(Math.log10(v));
export const decadeAbove = (v: number) => 10 ** Math.ceil(Math.log10(v));

/** Ticks of a log10 axis: decades, with 2 and 5 between them when the axis spans under two decades. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const steps = Math.log10(hi / lo) < 2.01 ? [1, 2, 5] : [1];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of steps) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(Number(v.toPrecision(3)));
    }
  }
  return out;
}

export function niceStep(span: number, count: number): number {
  const raw = span / count, p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
}

// ------------------------------------------------------------------ label placement

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}
export type Anchor = "start" | "middle" | "end";

export function textBox(x: number, y: number, text: string, size: number, anchor: Anchor): Box {
  const w = textWidth(text, size);
  const x0 = anchor === "start" ? x : anchor === "end" ? x - w : x - w / 2;
  return { x0, y0: y - 0.8 * size, x1: x0 + w, y1: y + 0.25 * size };
}

export const overlaps = (a: Box, b: Box) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;

/** Whether the segment crosses the box (Liang–Barsky). */
export function segmentHits(b: Box, x1: number, y1: number, x2: number, y2: number): boolean {
  let t0 = 0, t1 = 1;
  const dx = x2 - x1, dy = y2 - y1;
  for (const [p, q] of [[-dx, x1 - b.x0], [dx, b.x1 - x1], [-dy, y1 - b.y0], [dy, b.y1 - y1]] as const) {
    if (p === 0) {
      if (q < 0) return false;
    } else {
      const r = q / p;
      if (p < 0) t0 = Math.max(t0, r);
      else t1 = Math.min(t1, r);
      if (t0 > t1) return false;
    }
  }
  return true;
}

/** Places labels where they overlap nothing already placed, inside bounds. */
export class Placer {
  readonly boxes: Box[] = [];
  private readonly segments: Array<{ s: [number, number, number, number]; id: string }> = [];
  constructor(private readonly bounds: Box) {}
  box(b: Box): void {
    this.boxes.push(b);
  }
  line(x1: number, y1: number, x2: number, y2: number, id = ""): void {
    this.segments.push({ s: [x1, y1, x2, y2], id });
  }
  polyline(pts: Array<[number, number]>, id = ""): void {
    for (let i = 1; i < pts.length; i++) this.line(pts[i - 1][0], pts[i - 1][1], pts[i][0], pts[i][1], id);
  }
  /** Whether b is inside the bounds and clear of every box and line (but the line `ignore`, which a label sits on). */
  free(b: Box, ignore: readonly string[] = []): boolean {
    const B = this.bounds;
    if (b.x0 < B.x0 || b.x1 > B.x1 || b.y0 < B.y0 || b.y1 > B.y1) return false;
    const pad = { x0: b.x0 - 2, y0: b.y0 - 1, x1: b.x1 + 2, y1: b.y1 + 1 };
    return !this.boxes.some((o) => overlaps(o, pad)) && !this.segments.some((g) => !(g.id && ignore.includes(g.id)) && segmentHits(pad, ...g.s));
  }
  /**
   * Text along a direction (SVG rotate(angle) about its baseline start, degrees clockwise), as a
   * chain of squares a glyph high: whether it is free; if so it is taken.
   */
  along(text: string, size: number, x: number, y: number, angle: number, anchor: Anchor, ignore: readonly string[] = []): boolean {
    const w = textWidth(text, size), a = (angle * Math.PI) / 180;
    const d = [Math.cos(a), Math.sin(a)], n = [Math.sin(a), -Math.cos(a)];
    const shift = anchor === "start" ? 0 : anchor === "end" ? -w : -w / 2;
    const k = Math.max(1, Math.ceil(w / (0.9 * size)));
    const boxes: Box[] = [];
    for (let i = 0; i < k; i++) {
      const t = shift + (w * (i + 0.5)) / k;
      const cx = x + d[0] * t + n[0] * 0.32 * size, cy = y + d[1] * t + n[1] * 0.32 * size;
      const h = 0.45 * size;
      boxes.push({ x0: cx - h, y0: cy - h, x1: cx + h, y1: cy + h });
    }
    if (!boxes.every((b) => this.free(b, ignore))) return false;
    for (const b of boxes) this.box(b);
    return true;
  }
  /** The first candidate (x, y baseline, anchor) where `text` is free; null when none is. */
  place(text: string, size: number, candidates: Array<[number, number, Anchor]>): { x: number; y: number; anchor: Anchor } | null {
    for (const [x, y, anchor] of candidates) {
      const b = textBox(x, y, text, size, anchor);
      if (this.free(b)) {
        this.box(b);
        return { x, y, anchor };
      }
    }
    return null;
  }
}

// ------------------------------------------------------------------ drawing

export const COLORS = {
  copy: "#1f77b4",
  add: "#17becf",
  theo: "#7f7f7f",
  compute: "#d62728",
  forward: "#ff7f0e",
  backward: "#9467bd",
  sweep: "#1f77b4",
  cache: "#8c564b",
  L1: "#2ca02c",
  L2: "#bcbd22",
  L3: "#8c564b",
  L4: "#7f7f7f",
  DRAM: "#222222",
  domain: "#999999",
} as const;

export interface LegendEntry {
  key: string;
  swatch: "line" | "dot" | "ring" | "band" | "vline";
  color: string;
  dash?: string;
  text: string;
}

export interface Panel {
  /** SVG elements, drawn relative to the cell's origin. */
  body: string[];
  legend: LegendEntry[];
}

export const PLOT = { w: 440, h: 320 };
export const CELL = { ml: 78, mr: 28, mt: 56, mb: 52 };
export const CELL_W = CELL.ml + PLOT.w + CELL.mr;
export const LEGEND_LINE = 19;
export const MARGIN = 16;

export function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs ? ` ${attrs}` : ""}>${esc(s)}</text>`;
}

export function line(x1: number, y1: number, x2: number, y2: number, attrs: string): string {
  return `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" ${attrs}/>`;
}

export function polyline(pts: Array<[number, number]>, attrs: string): string {
  return `<polyline points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ")}" fill="none" ${attrs}/>`;
}

export const dashAttr = (dash?: string) => (dash ? ` stroke-dasharray="${dash}"` : "");

export function frame(title: string, X: Axis, Y: Axis, xTitle: string, yTitle: string, xTicks: Array<[number, string]>, yTicks: Array<[number, string]>, id: string, kind: string): string[] {
  const o: string[] = [];
  const x0 = CELL.ml, y0 = CELL.mt;
  o.push(text(x0 + PLOT.w / 2, y0 - 30, title, `text-anchor="middle" font-size="16" font-weight="bold"`));
  o.push(`<rect x="${x0}" y="${y0}" width="${PLOT.w}" height="${PLOT.h}" fill="none" stroke="#333"/>`);
  for (const [v, label] of xTicks) {
    const px = X.map(v);
    o.push(line(px, y0, px, y0 + PLOT.h, `stroke="#e4e4e4"`));
    o.push(text(px, y0 + PLOT.h + 18, label, `text-anchor="middle" font-size="${SMALL}" data-tick="x"`));
  }
  for (const [v, label] of yTicks) {
    const py = Y.map(v);
    o.push(line(x0, py, x0 + PLOT.w, py, `stroke="#e4e4e4"`));
    o.push(text(x0 - 7, py + 4, label, `text-anchor="end" font-size="${SMALL}" data-tick="y"`));
  }
  o.push(text(x0 + PLOT.w / 2, y0 + PLOT.h + 40, xTitle, `text-anchor="middle"`));
  o.push(`<text transform="translate(${x0 - 56},${y0 + PLOT.h / 2}) rotate(-90)" text-anchor="middle">${esc(yTitle)}</text>`);
  o.push(`<clipPath id="${id}"><rect x="${x0}" y="${y0}" width="${PLOT.w}" height="${PLOT.h}"/></clipPath>`);
  o.unshift(`<!-- ${kind} -->`);
  return o;
}

export const plotBounds = (): Box => ({ x0: CELL.ml + 2, y0: CELL.mt + 2, x1: CELL.ml + PLOT.w - 2, y1: CELL.mt + PLOT.h - 2 });
