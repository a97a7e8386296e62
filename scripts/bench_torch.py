"""PyTorch's native_group_norm forward and backward timings for `npm run bench` (run under tcmalloc).
usage: bench_torch.py N C H W G layout runs threads [fused]  -> one JSON line: best and median seconds.
With `fused`: silu(group_norm(x)) and its autograd backward (two passes, as models run them), and
plain group_norm with its autograd backward on the same tensors, for PyTorch's own ratio."""
import json, sys, time
import torch
import torch.nn.functional as F

N, C, H, W, G = (int(v) for v in sys.argv[1:6])
layout, runs = sys.argv[6], int(sys.argv[7])
torch.set_num_threads(int(sys.argv[8]) if len(sys.argv) > 8 else torch.get_num_threads())
fused = len(sys.argv) > 9 and sys.argv[9] == "fused"
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

if fused:
    for t in (x, gamma, beta):
        t.requires_grad_(True)
    with torch.no_grad():
        fwd = timed(lambda: F.silu(F.group_norm(x, G, gamma, beta, 1e-5)))
        plain_fwd = timed(lambda: F.group_norm(x, G, gamma, beta, 1e-5))
    y = F.silu(F.group_norm(x, G, gamma, beta, 1e-5))
    bwd = timed(lambda: torch.autograd.grad(y, (x, gamma, beta), dy, retain_graph=True))
    yp = F.group_norm(x, G, gamma, beta, 1e-5)
    plain_bwd = timed(lambda: torch.autograd.grad(yp, (x, gamma, beta), dy, retain_graph=True))
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "forward": fwd, "backward": bwd, "plain_forward": plain_fwd, "plain_backward": plain_bwd}))
    sys.exit(0)

y, mean, rstd = torch.ops.aten.native_group_norm(x, gamma, beta, N, C, H * W, G, 1e-5)
fwd = timed(lambda: torch.ops.aten.native_group_norm(x, gamma, beta, N, C, H * W, G, 1e-5))
bwd = timed(lambda: torch.ops.aten.native_group_norm_backward(dy, x, mean, rstd, gamma, N, C, H * W, G, [True, True, True]))
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "forward": fwd, "backward": bwd}))
