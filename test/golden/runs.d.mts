export interface GoldenRun {
  id: string;
  args: string[];
}
export function goldenRuns(): GoldenRun[];
export function hashRun(run: GoldenRun): Promise<Record<string, string>>;
