import { Command } from "commander";
import type { Context } from "../context.js";
import { parseNonNegative } from "../options.js";

export function compareCommand(ctx: Context): Command {
  return new Command("compare")
    .description("are two .npy files close? |a − b| ≤ atol + rtol·|b|, NaN equal to NaN (exit 0 close, 1 not)")
    .argument("<A.npy>", "the values to check")
    .argument("<B.npy>", "the reference")
    .option("--atol <atol>", "absolute tolerance", "1e-6")
    .option("--rtol <rtol>", "relative tolerance, times |b|", "1e-5")
    .option("--json", "print a JSON report on stdout")
    .action(async (a: string, b: string, o: Record<string, string | boolean | undefined>) => {
      const atol = parseNonNegative(o.atol as string, "--atol", 1e-6);
      const rtol = parseNonNegative(o.rtol as string, "--rtol", 1e-5);
      ctx.console.json = !!o.json;
      const { runCompare } = await import("../../pipeline/compare.js");
      const r = await runCompare(a, b, atol, rtol);
      if (o.json) ctx.console.document(r);
      else {
        const c = ctx.console.out;
        ctx.console.result(`${r.close ? c.green("close") : c.red("not close")}: ${r.message}`);
      }
      ctx.exitCode = r.close ? 0 : 1;
    });
}
