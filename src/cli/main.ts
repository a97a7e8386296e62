/**
 * Entry point: `main(argv)` parses the command line, runs one command and returns the exit status
 * (0 done / check passed, 1 check failed, 2 bad usage or input, 3 internal error).
 */
import { Command, CommanderError } from "commander";
import { readFileSync } from "node:fs";
import type { GroupNormEngine } from "../api/engine.js";
import { CheckFailed, formatError, InputError, quoteName } from "../errors.js";
import { errnoWords } from "../io/files.js";
import { compileKernelsFile } from "../io/kernels-file.js";
import { abortAllOutputsSync } from "../io/registry.js";
import { backwardCommand } from "./commands/backward.js";
import { compareCommand } from "./commands/compare.js";
import { forwardCommand } from "./commands/forward.js";
import { gradcheckCommand } from "./commands/gradcheck.js";
import { infoCommand } from "./commands/info.js";
import { rooflineCommand } from "./commands/roofline.js";
import { verifyCommand } from "./commands/verify.js";
import { Console, LazyStream, type Streams } from "./console.js";
import type { Context } from "./context.js";
import { restoreTerminal } from "./report.js";
import { processStreams } from "./stdio.js";

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

/** The commands, in the order the help lists them. */
const COMMANDS = {
  forward: forwardCommand,
  backward: backwardCommand,
  verify: verifyCommand,
  gradcheck: gradcheckCommand,
  compare: compareCommand,
  roofline: rooflineCommand,
  info: infoCommand,
};

/** The signals that end a run: its temporaries are removed and the terminal restored first. */
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"];

/** What an interrupted run leaves on disk, in words. */
function onDisk(): string {
  const { aborted, written } = abortAllOutputsSync();
  if (written.length) return `the outputs were complete on disk before it (${written.map(quoteName).join(", ")})`;
  return aborted ? "no output written (the partial files are removed)" : "no output written";
}

/** Wait until what was written to `stream` has gone out; resolves to its write error, if any. */
function drained(stream: NodeJS.WritableStream): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    try {
      stream.write("", (e) => resolve((e as NodeJS.ErrnoException | null | undefined) ?? null));
    } catch (e) {
      resolve(e as NodeJS.ErrnoException);
    }
  });
}

export async function main(argv: string[], streams: Streams = processStreams()): Promise<number> {
  // A closed stdout (`| head`) raises EPIPE asynchronously: stop writing and end quietly, as Unix
  // tools do. Any other write error (a full disk) is reported once, in words.
  let stdoutError: NodeJS.ErrnoException | null = null;
  const stdout = new LazyStream(
    () => streams.stdout,
    (e) => {
      stdoutError ??= e;
      console.closed = true;
    },
  );
  // stderr failing (full, or a closed pipe) must not turn into an uncaught 'error' event (exit 1):
  // there is nowhere left to say anything, so the exit status alone carries the outcome
  const stderr = new LazyStream(
    () => streams.stderr,
    () => undefined,
  );
  const console = await Console.create(streams, stdout, stderr, argv.includes("--no-color"));
  const engines: GroupNormEngine[] = [];
  // the engine's modules (the pool, the kernels) load only when a command runs: --version and --help never need them
  let engineModule: typeof import("../api/engine.js") | null = null;
  const ctx: Context = {
    console,
    exitCode: 0,
    engine(threads) {
      if (!engineModule) throw new Error("the engine module is loaded before an action runs");
      const { GroupNormEngine, checkThreads } = engineModule;
      // GROUPNORM_FAULT injects a worker fault (tests); GROUPNORM_POOL=always puts every job on the
      // pool, however small (tests of the pool, and measuring the crossover: docs/performance.md)
      const fault = streams.env.GROUPNORM_FAULT;
      const pool = streams.env.GROUPNORM_POOL === "always" ? "always" : "auto";
      const e = new GroupNormEngine({ threads: checkThreads(threads, "--threads"), pool, fault: fault === "trap" || fault === "exit" ? fault : undefined });
      engines.push(e);
      return e;
    },
  };
  // commander asks process.stdout and process.stderr for their width and colours (making them):
  // asked of the console instead, which answers without a stream unless it is a terminal's
  // (undefined, typed as a number by commander's types, is its own default: 80 columns)
  const helpStreams = {
    getOutHelpWidth: () => console.helpWidth("stdout") as number,
    getErrHelpWidth: () => console.helpWidth("stderr") as number,
    getOutHasColors: () => console.hasColors("stdout"),
    getErrHasColors: () => console.hasColors("stderr"),
  };
  const program = new Command("groupnorm")
    .description("Group Normalization (Wu & He, 2018) on tensor files (.npy, .npz, safetensors)")
    // the version is read only when it is asked for (its file read and URL cost a millisecond)
    .version(argv.some((a) => a === "-V" || a === "--version") ? version() : "", "-V, --version")
    .option("--no-color", "no colours in output (also NO_COLOR=1)")
    .addHelpText("after", "\nReference: docs/cli.md (commands, flags, files, exit codes, JSON).\n")
    .showHelpAfterError(false)
    .configureOutput({
      writeOut: (s) => console.writeOut(s),
      writeErr: (s) => console.writeErr(s),
      ...helpStreams,
      outputError: (s, write) => write(`groupnorm: ${s.replace(/^error: /, "error: ").trimEnd()}\n`),
    })
    .exitOverride()
    .hook("preAction", async () => {
      // the kernels compile on V8's background threads while the engine's modules load
      const kernels = engineModule ? null : compileKernelsFile();
      engineModule ??= await import("../api/engine.js");
      const compiled = await kernels;
      if (compiled) engineModule.adoptKernelModule(compiled);
    });
  const configure = (cmd: Command): void => {
    cmd.exitOverride().configureOutput({
      writeOut: (s) => console.writeOut(s),
      writeErr: (s) => console.writeErr(s),
      ...helpStreams,
      outputError: (s, write) => write(`groupnorm: ${s.trimEnd()}\n`),
    });
    for (const sub of cmd.commands) configure(sub);
  };
  // a run of one command (argv[0] names it) needs only that command's parser; the others are made
  // for the top-level help (as they are listed there: their flags' parsers unmade), `help NAME`
  // (NAME whole) and anything else (a mistyped name's suggestion, a flag before the command: whole)
  const isCommand = (a: string | undefined): a is keyof typeof COMMANDS => a !== undefined && Object.hasOwn(COMMANDS, a);
  const named = isCommand(argv[0]) ? argv[0] : null;
  const helpOf = argv.length === 2 && argv[0] === "help" && isCommand(argv[1]) ? argv[1] : null;
  const onlyListed = helpOf !== null || argv.every((a) => a === "--help" || a === "-h" || a === "help" || a === "--no-color");
  for (const [name, make] of Object.entries(COMMANDS)) {
    if (named !== null && name !== named) continue;
    const cmd = make(ctx, named === null && onlyListed && name !== helpOf);
    configure(cmd);
    program.addCommand(cmd);
  }

  // An interrupted run removes its temporary outputs, restores the terminal and says what is on
  // disk; then the signal is raised again with its default action, which ends the process at once
  // whatever it is blocked on (process.exit would wait for a thread stuck in a system call).
  const onSignal = (signal: NodeJS.Signals) => {
    restoreTerminal();
    console.writeErr(`groupnorm: interrupted by ${signal}: ${onDisk()}\n`);
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    process.kill(process.pid, signal);
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  let status: number;
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      status = 2; // bare `groupnorm`: a usage error
    } else if (argv[0] === "help" && argv.length > 1 && !program.commands.some((c) => c.name() === argv[1])) {
      // commander would print the whole usage for `help nosuch`: one line, as for any unknown command
      console.writeErr(`${formatError(new InputError(`unknown command '${argv[1]}' (groupnorm --help lists them)`))}\n`);
      status = 2;
    } else {
      await program.parseAsync(argv, { from: "user" });
      status = ctx.exitCode;
    }
  } catch (e) {
    abortAllOutputsSync();
    status = exitStatusOf(e, console, streams.env.GROUPNORM_DEBUG === "1");
  } finally {
    restoreTerminal();
    // the signal handlers stay until the process is gone: a signal while the engines close or the
    // process winds down still says what is on disk (the outputs, complete) before ending by it
    for (const e of engines) await e.close().catch(() => undefined);
  }
  // only what was written can fail to go out: a run that printed nothing (--quiet) has no stdout to check
  const late = console.wroteStdout && stdout.existing ? await drained(stdout.existing) : null;
  stdout.release();
  const failure = stdoutError ?? late;
  if (failure && failure.code !== "EPIPE") {
    const { written } = abortAllOutputsSync();
    const outputs = written.length ? ` (the outputs are complete on disk: ${written.map(quoteName).join(", ")})` : "";
    console.writeErr(`groupnorm: error: cannot write to standard output: ${errnoWords(failure)}${outputs}\n`);
    return 2;
  }
  return status;
}

function exitStatusOf(e: unknown, console: Console, debug: boolean): number {
  if (e instanceof CommanderError) {
    if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
    // help asked for is a success; help shown because a command group was given no subcommand is a usage error
    if (e.code === "commander.help") return e.exitCode === 0 ? 0 : 2;
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
  console.error(formatError(new Error(`internal error: ${err?.message ?? String(e)}`)));
  if (debug && err?.stack) {
    console.error(err.stack);
    const detail = (err as { detail?: string }).detail;
    if (detail) console.error(`in the worker thread: ${detail}`);
  } else console.error("groupnorm: (set GROUPNORM_DEBUG=1 for the stack trace)");
  return 3;
}
