/** What forward and backward share: the run options, their parsing, and running with a progress bar. */
import type { Command } from "commander";
import { DEFAULT_MEMORY } from "../../pipeline/slices.js";
import type { Layout } from "../../core/dims.js";
import type { Engine } from "../../kernels/engine.js";
import type { Context } from "../context.js";
import { parseEps, parseGroups, parseLayoutOption, parseSize, parseThreads } from "../options.js";
import { progressFor } from "../report.js";

export type Options = Record<string, string | boolean | undefined>;

/** --groups, --eps, --layout: the GroupNorm parameters of forward, backward and gradcheck. */
export function groupNormOptions(cmd: Command): Command {
  return cmd
    .option("--groups <G>", "number of groups; must divide C")
    .option("--eps <eps>", "added to the variance", "1e-5")
    .option("--layout <layout>", "nchw or nhwc", "nchw");
}

/** --groups, --eps, --layout, --threads, --memory, --json, --quiet (the per-command flags go first). */
export function runOptions(cmd: Command): Command {
  return groupNormOptions(cmd)
    .option("--threads <K>", "worker threads (default: available cores)")
    .option("--memory <size>", "memory budget for the slices in flight, e.g. 256M or 2G (default 384M)")
    .option("--json", "print a JSON report on stdout")
    .option("--quiet", "print nothing on success");
}

export interface RunSettings {
  groups: number;
  eps: number;
  layout: Layout;
  memoryBudget: number;
  outDir: string;
}

/**
 * Parse the shared options, set up the console and engine, and run `job` with a progress bar (on a
 * TTY, for runs over about a second); the report is printed as JSON or by `human`.
 */
export async function runWithProgress<R>(
  ctx: Context,
  o: Options,
  label: string,
  job: (engine: Engine, s: RunSettings, onProgress: (done: number, total: number) => void) => Promise<R>,
  human: (r: R) => void,
): Promise<void> {
  const settings: RunSettings = {
    groups: parseGroups(o.groups as string | undefined),
    eps: parseEps(o.eps as string),
    layout: parseLayoutOption(o.layout as string),
    memoryBudget: o.memory ? parseSize(o.memory as string, "--memory") : DEFAULT_MEMORY,
    outDir: o.outDir as string,
  };
  const threads = parseThreads(o.threads as string | undefined);
  ctx.console.json = !!o.json;
  ctx.console.quiet = !!o.quiet;
  const engine = await ctx.engine(threads);
  const progress = progressFor(ctx.console, label);
  let r: R;
  try {
    r = await job(engine, settings, progress.update);
  } finally {
    progress.stop();
  }
  if (o.json) ctx.console.document(r);
  else human(r);
}
