// Every fixture's outputs are bitwise those recorded before the library refactor (issue #13):
// test/golden/outputs.json holds the SHA-256 of each file the CLI wrote then (test/golden/record.mjs).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { goldenRuns, hashRun } from "./golden/runs.mjs";

const recorded: Record<string, Record<string, string>> = JSON.parse(readFileSync(new URL("./golden/outputs.json", import.meta.url), "utf8"));
const runs = goldenRuns();

describe("outputs bitwise as recorded before the refactor", () => {
  it("records every run", () => {
    expect(runs.map((r) => r.id).sort()).toEqual(Object.keys(recorded).sort());
  });
  it.concurrent.each(runs.map((r) => [r.id, r] as const))("%s", async (_id, run) => {
    expect(await hashRun(run)).toEqual(recorded[run.id]);
  });
});
