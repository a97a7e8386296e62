/** Sizes in messages, written as --memory takes them (powers of 1024), rounded up; bytes below 1K. */
export function sizeText(bytes: number): string {
  if (bytes < 1024) return `${Math.ceil(bytes)}B`; // exact: "1K" for 100 bytes would read as more than it is
  const units = ["K", "M", "G", "T", "P"];
  let v = bytes / 1024, u = 0;
  while (v >= 10240 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return v >= 100 || u === 0 ? `${Math.ceil(v)}${units[u]}` : `${Math.ceil(v * 10) / 10}${units[u]}`;
}
