#!/usr/bin/env node
// The fused activation's cost, for `npm run bench`: forward with an activation against plain forward,
// and backward through it against plain backward (statistics given, as PyTorch's
// native_group_norm_backward), on the same warm buffers in place, timed alternately (plain, fused,
// plain, fused, …) so that each ratio compares runs a few milliseconds apart. Prints one JSON line.
//   node scripts/bench-fused.js --shape 16,512,64,64 --groups 32 --layout nchw --threads 2 --runs 10 --activation silu
import { Engine } from "../dist/kernels/engine.js";
import { activationCode } from "../dist/core/activation.js";
import { groupNormDims, memoryOrder } from "../dist/core/dims.js";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const shape = arg("shape", "16,512,64,64").split(",").map(Number);
const groups = Number(arg("groups", "32"));
const layout = arg("layout", "nchw");
const threads = Number(arg("threads", "2"));
const runs = Number(arg("runs", "10"));
const activation = arg("activation", "silu");
const act = activationCode(activation);

const d = groupNormDims(memoryOrder(shape, layout), groups, layout);
const geo = { ...d, precision: "f32" };
const numel = d.N * d.C * d.HxW;
const engine = new Engine({ threads, cacheBytes: 32 << 20 });
await engine.ready();
const x = engine.arena.alloc(numel * 4), dy = engine.arena.alloc(numel * 4);
const fill = (v, seed) => {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < v.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    v[i] = (s >>> 0) / 2147483648 - 1;
  }
};
// each run normalises X in place: refill between runs would dominate, so runs chain (X stays O(1))
fill(engine.arena.f32(x, numel), 12345);
fill(engine.arena.f32(dy, numel), 678);
const gamma = new Float64Array(d.C).fill(1.25), beta = new Float64Array(d.C).fill(-0.5);
const time = async (f) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};
let stats = await engine.forward(geo, 1e-5, x, x, gamma, beta);
const forward = (a) => () => engine.forward(geo, 1e-5, x, x, gamma, beta, { act: a });
const backward = (a) => () => engine.backward(geo, 1e-5, { dy, x, dx: dy }, gamma, stats, a ? { act: a, beta } : null);
const median = (v) => {
  const s = [...v].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const result = {};
for (const [name, make] of [["forward", forward], ["backward", backward]]) {
  await make(0)(); await make(act)(); // warm
  const plain = [], fused = [];
  for (let r = 0; r < runs; r++) {
    plain.push(await time(make(0)));
    fused.push(await time(make(act)));
    if (name === "forward") stats = await engine.forward(geo, 1e-5, x, x, gamma, beta);
  }
  const ratios = plain.map((p, i) => fused[i] / p);
  result[name] = { plain: median(plain), fused: median(fused), ratio: median(ratios), best_plain: Math.min(...plain), best_fused: Math.min(...fused) };
}
await engine.close();
console.log(JSON.stringify({ shape, groups, layout, threads, runs, activation, ...result }));
