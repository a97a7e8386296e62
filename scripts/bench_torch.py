"""PyTorch's native_group_norm forward and backward timings for `npm run bench` (run under tcmalloc).
usage: bench_torch.py N C H W G layout runs  -> one JSON line: best and median seconds."""
import json, sys, time
import torch

N, C, H, W, G = (int(v) for v in sys.argv[1:6])
layout, runs = sys.argv[6], int(sys.argv[7])
torch.set_num_threads(int(sys.argv[8]) if len(sys.argv) > 8 else torch.get_num_threads())
fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
x = torch.randn(N, C, H, W).contiguous(memory_format=fmt)
dy = torch.randn(N, C, H, W).contiguous(memory_format=fmt)
gamma, beta = torch.randn(C), torch.randn(C)

def timed(f):
    f(); f()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
    t.sort()
    return {"best": t[0], "median": t[len(t) // 2]}

y, mean, rstd = torch.ops.aten.native_group_norm(x, gamma, beta, N, C, H * W, G, 1e-5)
fwd = timed(lambda: torch.ops.aten.native_group_norm(x, gamma, beta, N, C, H * W, G, 1e-5))
bwd = timed(lambda: torch.ops.aten.native_group_norm_backward(dy, x, mean, rstd, gamma, N, C, H * W, G, [True, True, True]))
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "forward": fwd, "backward": bwd}))
