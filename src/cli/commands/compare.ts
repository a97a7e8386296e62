/** `groupnorm compare A B`: parse, call compareFiles, print; exit 0 close, 1 not. */
import { defineCommand } from "../command.js";

export const compareCommand = defineCommand({
  name: "compare",
  description: "are two tensors close? |a − b| ≤ atol + rtol·|b|, NaN equal to NaN (exit 0 close, 1 not)",
  args: [
    ["<A>", "the values to check (a.npy, f.npz:key or m.safetensors:name)"],
    ["<B>", "the reference"],
  ],
  flags: ["atol", "rtol", "threads", "memory"],
  shownDefaults: { atol: "1e-6; 1e-5 when either is bfloat16", rtol: "1e-5; 1.6e-2 when either is bfloat16" },
  help: {
    rtol: "relative tolerance, times |b|",
    memory: "memory for the slices in flight, and for a Fortran-order file's C-order copy when the other is in C order, e.g. 4G (default 384M)",
  },
  examples: ["groupnorm compare out/Y.npy reference_Y.npy --atol 1e-6 --rtol 1e-5", "groupnorm compare out.safetensors:Y ref.safetensors:y --json"],
  async run(ctx, [a, b], f) {
    const { compareFiles } = await import("../../api/inspect.js");
    const r = await compareFiles(a, b, { atol: f.atol, rtol: f.rtol, memory: f.memory, engine: ctx.engine(f.threads) });
    ctx.exitCode = r.close ? 0 : 1;
    if (f.json) return ctx.console.document(r);
    const c = ctx.console.out;
    ctx.console.result(`${r.close ? c.green("close") : c.red("not close")}: ${r.message}`);
  },
});
