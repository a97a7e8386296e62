/** `groupnorm info X`: parse, call describeFile, print. */
import { formatShape } from "../../core/dims.js";
import { quoteName } from "../../errors.js";
import { defineCommand } from "../command.js";

const num = (v: number | null) => (v === null ? "—" : Number(v.toPrecision(8)).toString());

export const infoCommand = defineCommand({
  name: "info",
  description: "header facts of a .npy file of any dtype, and summary statistics of its values",
  args: [["<X.npy>", "the file"]],
  flags: [],
  examples: ["groupnorm info x.npy", "groupnorm info x.npy --json"],
  async run(ctx, [x], f) {
    const { describeFile } = await import("../../api/inspect.js");
    const r = await describeFile(x);
    if (f.json) return ctx.console.document(r);
    const c = ctx.console.out;
    const line = (k: string, v: string) => ctx.console.result(`${c.bold(k.padEnd(10))} ${v}`);
    line("file", quoteName(r.path));
    line("format", `.npy ${r.version}`);
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
