/** A compact roofline for the terminal, drawn with Unicode characters (log-log). */
import type { RooflineReport } from "./report.js";

export function asciiRoofline(r: RooflineReport, width = 60, height = 14): string[] {
  const peak = r.compute_gflops, bw = r.attainable.copy_gbps;
  const xlo = Math.min(0.1, ...r.kernels.map((k) => k.intensity / 3));
  const xhi = Math.max(r.ridge_intensity * 10, 10);
  const ylo = Math.min(bw * xlo, ...r.kernels.map((k) => k.gflops / 3));
  const yhi = peak * 3;
  const lx = Math.log10(xlo), hx = Math.log10(xhi), ly = Math.log10(ylo), hy = Math.log10(yhi);
  const col = (x: number) => Math.round(((Math.log10(x) - lx) / (hx - lx)) * (width - 1));
  const row = (y: number) => height - 1 - Math.round(((Math.log10(y) - ly) / (hy - ly)) * (height - 1));
  const grid = Array.from({ length: height }, () => Array.from({ length: width }, () => " "));
  const put = (c: number, rr: number, ch: string) => {
    if (c >= 0 && c < width && rr >= 0 && rr < height) grid[rr][c] = ch;
  };
  for (let c = 0; c < width; c++) {
    const x = 10 ** (lx + (c / (width - 1)) * (hx - lx));
    const y = Math.min(bw * x, peak);
    put(c, row(y), bw * x < peak ? "╱" : "─");
  }
  put(col(r.ridge_intensity), row(peak), "◆");
  for (const k of r.kernels) put(col(k.intensity), row(k.gflops), k.name === "forward" ? "F" : "B");
  const lines: string[] = [];
  const label = (y: number) => (y >= 100 ? y.toFixed(0) : y >= 1 ? y.toFixed(1) : y.toPrecision(2)).padStart(7);
  grid.forEach((g, i) => {
    const yv = 10 ** (hy - (i / (height - 1)) * (hy - ly));
    lines.push(`${i === 0 || i === height - 1 || i === Math.floor(height / 2) ? label(yv) : " ".repeat(7)} │${g.join("")}`);
  });
  lines.push(`${" ".repeat(8)}└${"─".repeat(width)}`);
  const xl = (v: number) => (v >= 1 ? v.toFixed(0) : v.toPrecision(1));
  lines.push(`${" ".repeat(9)}${xl(xlo).padEnd(width - xl(xhi).length)}${xl(xhi)}`);
  lines.push(`${" ".repeat(9)}GFLOP/s against FLOP/byte (log-log): ╱ copy roof ${bw.toFixed(1)} GB/s, ─ compute ${peak.toFixed(1)} GFLOP/s, ◆ ridge, F forward, B backward`);
  return lines;
}
