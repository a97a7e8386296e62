/** `groupnorm info X`: parse, call describeFile, print. */
import type { ContainerInfoReport } from "../../api/inspect.js";
import { formatShape } from "../../core/dims.js";
import { printable, quoteName } from "../../errors.js";
import { defineCommand } from "../command.js";
import type { Console } from "../console.js";

const num = (v: number | null) => (v === null ? "—" : Number(v.toPrecision(8)).toString());

/** A container's tensors, one line each: name, dtype, shape, bytes, storage. */
function printListing(console: Console, r: ContainerInfoReport): void {
  const c = console.out;
  const what = r.format === "npz" ? "arrays" : "tensors";
  console.result(`${c.bold("file".padEnd(10))} ${quoteName(r.path)}`);
  console.result(`${c.bold("format".padEnd(10))} ${r.format === "npz" ? ".npz (zip of .npy members)" : "safetensors"}, ${r.file_bytes} bytes, ${r.tensors.length} ${r.tensors.length === 1 ? what.slice(0, -1) : what}`);
  const rows = [...r.tensors, ...r.others];
  const width = Math.min(40, Math.max(4, ...rows.map((t) => printable(t.name).length)));
  for (const t of rows) {
    const form = t.dtype === null ? "" : `${t.dtype} ${formatShape(t.shape ?? [])}${t.order === "F" ? " Fortran order" : ""}`;
    const size = t.bytes === null ? "" : `${t.bytes} bytes`;
    const storage = r.format === "npz" ? `${t.storage} (${t.stored_bytes} bytes in the archive)` : "";
    const parts = [form, size, storage, t.note ? c.yellow(printable(t.note)) : ""].filter(Boolean).join(", ");
    console.result(`  ${printable(t.name).padEnd(width)}  ${parts}`);
  }
  if (r.metadata) for (const [k, v] of Object.entries(r.metadata)) console.result(`${c.bold("metadata".padEnd(10))} ${printable(k)}: ${printable(v)}`);
  console.result(c.dim(`name one as ${quoteName(r.path)}:KEY to describe it, or to use it as a command's input`));
}

export const infoCommand = defineCommand({
  name: "info",
  description: "header facts of a tensor (.npy, file.npz:key, file.safetensors:name) of any dtype and summary statistics of its values, or what a container holds",
  args: [["<X>", "the tensor (x.npy, a.npz:key, m.safetensors:name), or a container (a.npz, m.safetensors) to list"]],
  flags: ["threads", "memory"],
  help: { memory: "memory for the slices in flight while the statistics are computed, e.g. 64M (default 384M)" },
  examples: ["groupnorm info x.npy", "groupnorm info model.safetensors --json", "groupnorm info arrays.npz:x"],
  async run(ctx, [x], f) {
    const { describeFile } = await import("../../api/inspect.js");
    const r = await describeFile(x, { memory: f.memory, engine: ctx.engine(f.threads) });
    if (f.json) return ctx.console.document(r);
    if (!("dtype" in r)) return printListing(ctx.console, r);
    const c = ctx.console.out;
    const line = (k: string, v: string) => ctx.console.result(`${c.bold(k.padEnd(10))} ${v}`);
    line("file", quoteName(r.path));
    line("format", r.format === "npy" ? `.npy ${r.version}` : r.format === "npz" ? `.npz member ${JSON.stringify(r.key)}, .npy ${r.version}, ${r.storage} (${r.stored_bytes} bytes in the archive)` : `safetensors tensor ${JSON.stringify(r.key)}`);
    line("dtype", r.byte_order === "none" ? r.dtype : `${r.dtype} (${r.byte_order}-endian)`);
    line("order", r.order === "C" ? "C (row-major)" : "Fortran (column-major)");
    line("shape", formatShape(r.shape));
    line("size", `${r.size} ${r.size === 1 ? "value" : "values"}, ${r.bytes === null ? "elements of no fixed size" : `${r.bytes} bytes of data`} (${r.file_bytes} bytes on disk)`);
    if (r.statistics !== "computed") return line("statistics", r.statistics);
    line("min", num(r.min));
    line("max", num(r.max));
    line("mean", num(r.mean));
    line("std", num(r.std));
    line("non-finite", `${r.nan} NaN, ${r.posinf} +Inf, ${r.neginf} -Inf`);
    if (r.nan! + r.posinf! + r.neginf! > 0) line("", "(min, max, mean and std are over the finite values)");
  },
});
