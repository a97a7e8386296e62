/**
 * Entry point: `main(argv)` parses the command line, runs one command and returns the exit status
 * (0 done / check passed, 1 check failed, 2 bad usage or input, 3 internal error).
 */
import { Command, CommanderError } from "commander";
import { readFileSync } from "node:fs";
import { CheckFailed, formatError, InputError } from "../errors.js";
import { abortAllOutputsSync } from "../io/outputs.js";
import type { GroupNormEngine } from "../api/engine.js";
import { checkThreads } from "../api/engine.js";
import { backwardCommand } from "./commands/backward.js";
import { compareCommand } from "./commands/compare.js";
import { forwardCommand } from "./commands/forward.js";
import { gradcheckCommand } from "./commands/gradcheck.js";
import { infoCommand } from "./commands/info.js";
import { rooflineCommand } from "./commands/roofline.js";
import { Console, type Streams } from "./console.js";
import { cliEngine, type Context } from "./context.js";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

export async function main(argv: string[], streams: Streams = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const console = await Console.create(streams, argv.includes("--no-color"));
  const engines: GroupNormEngine[] = [];
  const ctx: Context = {
    console,
    exitCode: 0,
    engine(threads) {
      const e = cliEngine(checkThreads(threads, "--threads"), streams.env.GROUPNORM_FAULT);
      engines.push(e);
      return e;
    },
  };
  const program = new Command("groupnorm")
    .description("Group Normalization (Wu & He, 2018) on NumPy .npy files")
    .version(version(), "-V, --version")
    .option("--no-color", "no colours in output (also NO_COLOR=1)")
    .addHelpText("after", "\nReference: docs/cli.md (commands, flags, files, exit codes, JSON).\n")
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (s) => streams.stdout.write(s),
      writeErr: (s) => streams.stderr.write(s),
      outputError: (s, write) => write(`groupnorm: ${s.replace(/^error: /, "error: ").trimEnd()}\n`),
    })
    .exitOverride();
  for (const make of [forwardCommand, backwardCommand, gradcheckCommand, compareCommand, rooflineCommand, infoCommand]) {
    const cmd = make(ctx);
    cmd.exitOverride().configureOutput({
      writeOut: (s) => streams.stdout.write(s),
      writeErr: (s) => streams.stderr.write(s),
      outputError: (s, write) => write(`groupnorm: ${s.trimEnd()}\n`),
    });
    program.addCommand(cmd);
  }

  // An interrupted run removes its temporary outputs and says so; nothing half-written remains.
  const onSignal = (signal: NodeJS.Signals) => {
    abortAllOutputsSync();
    streams.stderr.write(`groupnorm: interrupted by ${signal}: no output written\n`);
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await program.parseAsync(argv, { from: "user" });
    return ctx.exitCode;
  } catch (e) {
    abortAllOutputsSync();
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      if (e.code === "commander.executeSubCommandAsync") return 0;
      return 2;
    }
    if (e instanceof InputError) {
      console.error(formatError(e));
      return 2;
    }
    if (e instanceof CheckFailed) {
      if (e.message) console.error(`groupnorm: ${e.message}`);
      return 1;
    }
    const err = e as Error;
    console.error(`groupnorm: error: internal error: ${err?.message ?? String(e)}`);
    if (streams.env.GROUPNORM_DEBUG === "1" && err?.stack) {
      console.error(err.stack);
      const detail = (err as { detail?: string }).detail;
      if (detail) console.error(`in the worker thread: ${detail}`);
    }
    else console.error("groupnorm: (set GROUPNORM_DEBUG=1 for the stack trace)");
    return 3;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    for (const e of engines) await e.close().catch(() => undefined);
  }
}
