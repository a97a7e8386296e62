// Tests that spawn the CLI or worker threads run the built output (vitest cannot start .ts files as
// workers), so build once before any test file runs. GROUPNORM_TEST_NO_BUILD=1 skips it when the
// caller has just built (as .ci/run does).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export default function setup(): void {
  if (process.env.GROUPNORM_TEST_NO_BUILD === "1") return;
  const root = fileURLToPath(new URL("..", import.meta.url));
  execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
}
