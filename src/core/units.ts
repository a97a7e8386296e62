/** Sizes in messages, written as --memory takes them (powers of 1024), rounded up. */
export function sizeText(bytes: number): string {
  const units = ["K", "M", "G", "T", "P"];
  let v = bytes / 1024, u = 0;
  while (v >= 10240 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return v >= 100 || u === 0 ? `${Math.ceil(v)}${units[u]}` : `${Math.ceil(v * 10) / 10}${units[u]}`;
}
