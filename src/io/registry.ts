/**
 * The process's open output sets and the files they put in place: what a signal handler removes and
 * reports. Apart from outputs.ts (which imports the writers) so the CLI can install its handlers
 * without loading them.
 */

/** What the registry needs of an output set: remove its temporaries at once. */
export interface Abortable {
  /** Remove the temporaries; whether there were any. Synchronous (for signal handlers). */
  abortSync(): boolean;
}

/** Where the run's outputs stand, for the message of an interrupted run. */
export interface OutputsOnDisk {
  /** Output sets whose temporaries were removed. */
  aborted: number;
  /** Files renamed into place by finished output sets. */
  written: string[];
}

export const live = new Set<Abortable>();
export const written: string[] = [];

/** Remove every temporary file of every open output set (for signal handlers); synchronous. */
export function abortAllOutputsSync(): OutputsOnDisk {
  let aborted = 0;
  for (const set of live) if (set.abortSync()) aborted++;
  return { aborted, written: [...written] };
}
