#!/usr/bin/env node
// Records the host facts roofline reads (/proc, sysfs, dmidecode) as JSON, for tests and for
// drawing another machine's plot: `node scripts/record-host.js "what this host is" > host.json`
// (after `npm run build`). Replay it with recordedHostSource (src/roofline/host.ts).
import { bufferPlacement, hostInfo, liveHostSource, recordingHostSource, theoreticalPeak } from "../dist/roofline/host.js";

const src = recordingHostSource(liveHostSource());
hostInfo(src);
theoreticalPeak(undefined, src);
bufferPlacement(src);
const r = src.recording();
// only what describes the machine: the process's own maps are kept to the lines roofline reads
if (r.files["/proc/self/numa_maps"]) r.files["/proc/self/numa_maps"] = r.files["/proc/self/numa_maps"].split("\n").filter((l) => / anon=\d{4,}/.test(l)).join("\n") + "\n";
if (r.files["/proc/cpuinfo"]) r.files["/proc/cpuinfo"] = r.files["/proc/cpuinfo"].split("\n\n")[0] + "\n";
process.stdout.write(JSON.stringify({ description: process.argv[2] ?? "", ...r }, null, 1) + "\n");
