/**
 * A command is declared as data: its arguments, the flags it takes from the table (cli/flags.ts)
 * with any command-specific help or default, its examples, and `run`, which receives the parsed,
 * typed flag values. defineCommand turns that into a commander Command.
 */
import { Command, Option } from "commander";
import { InputError } from "../errors.js";
import type { Context } from "./context.js";
import { type Flag, FLAGS, type FlagName, type FlagValues } from "./flags.js";

export interface CommandSpec<K extends FlagName> {
  name: string;
  description: string;
  /** Positional arguments: `<X.npy>` and what it is. */
  args?: Array<[string, string]>;
  flags: readonly K[];
  /** Flags that must be given. */
  required?: readonly K[];
  /** Command-specific help text, or a default that differs from the table's. */
  help?: Partial<Record<K, string>>;
  defaults?: { [P in K]?: FlagValues<P>[P] };
  shownDefaults?: Partial<Record<K, string>>;
  examples: string[];
  /** A paragraph after the examples (when to use this command rather than another). */
  notes?: string;
  /** `given`: the flags the command line set (not defaulted), for flags that have no effect in some uses. */
  run(ctx: Context, args: string[], flags: FlagValues<K>, given: ReadonlySet<K>): Promise<void>;
}

/** A paragraph wrapped at `width` columns, for help text. */
export function wrapText(text: string, width = 80): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join("\n");
}

/** The flags every command takes. */
export const COMMON_FLAGS = ["json", "quiet", "color"] as const;

/**
 * The command's commander Command. `listed`: only what the top-level help lists of it (its name,
 * arguments and description, and one of its options, for the "[options]" of its line), never run:
 * making every flag's Option of seven commands took `--help` some 3 ms.
 */
export type MakeCommand = (ctx: Context, listed?: boolean) => Command;

export function defineCommand<K extends FlagName>(spec: CommandSpec<K | (typeof COMMON_FLAGS)[number]>): MakeCommand {
  return (ctx, listed = false) => {
    const cmd = new Command(spec.name).description(spec.description);
    for (const [name, help] of spec.args ?? []) cmd.argument(name, help);
    const names = [...spec.flags, ...COMMON_FLAGS.filter((c) => !spec.flags.includes(c))];
    if (listed) return cmd.addOption(new Option(FLAGS[names[0]!].syntax));
    const keys = new Map<string, string>(); // each flag's attribute name, from the Option made for it
    for (const name of names) {
      const flag: Flag<unknown> = FLAGS[name];
      const shown = spec.shownDefaults?.[name] ?? (spec.defaults && name in spec.defaults ? String(spec.defaults[name]) : flag.shown);
      const required = spec.required?.includes(name);
      let help = spec.help?.[name] ?? flag.help;
      if (required && !help.includes("(required)")) help += " (required)";
      else if (!required) help = help.replace(" (required)", "");
      const option = new Option(flag.syntax, shown ? `${help} (default: ${shown})` : help);
      keys.set(name, option.attributeName());
      cmd.addOption(option);
    }
    const after = [spec.examples.length ? `Examples:\n${spec.examples.map((e) => `  $ ${e}`).join("\n")}` : "", spec.notes ? wrapText(spec.notes) : ""].filter(Boolean);
    if (after.length) cmd.addHelpText("after", `\n${after.join("\n\n")}\n`);
    cmd.action(async (...params: unknown[]) => {
      const command = params[params.length - 1] as Command;
      const raw = command.opts();
      const values = {} as Record<string, unknown>;
      const set = new Set<K | (typeof COMMON_FLAGS)[number]>();
      for (const name of names) {
        const flag: Flag<unknown> = FLAGS[name];
        const key = keys.get(name)!;
        const given = raw[key];
        if (command.getOptionValueSource(key) === "cli") set.add(name);
        if (flag.parse) values[name] = given === undefined ? (spec.defaults && name in spec.defaults ? spec.defaults[name] : flag.fallback) : flag.parse(String(given));
        else values[name] = given === undefined ? flag.fallback : Boolean(given);
        if (spec.required?.includes(name) && values[name] === undefined) throw new InputError(`${flag.syntax.replace(/ <(\w+)>$/, " $1")} is required`);
      }
      const v = values as FlagValues<K | (typeof COMMON_FLAGS)[number]>;
      ctx.console.json = v.json;
      ctx.console.quiet = v.quiet;
      if (!v.color) ctx.console.noColor();
      await spec.run(ctx, command.args, v, set);
    });
    return cmd;
  };
}
