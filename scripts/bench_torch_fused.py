"""PyTorch's silu(group_norm(x)) and its autograd backward for `npm run bench` (run under tcmalloc):
two passes (group_norm, then silu), as models run them; and plain group_norm with its autograd
backward, on the same tensors, for PyTorch's own ratio. usage:
bench_torch_fused.py N C H W G layout runs threads -> one JSON line: best and median seconds."""
import json, sys, time
import torch
import torch.nn.functional as F

N, C, H, W, G = (int(v) for v in sys.argv[1:6])
layout, runs = sys.argv[6], int(sys.argv[7])
torch.set_num_threads(int(sys.argv[8]) if len(sys.argv) > 8 else torch.get_num_threads())
fmt = torch.channels_last if layout == "nhwc" else torch.contiguous_format
x = torch.randn(N, C, H, W).contiguous(memory_format=fmt).requires_grad_(True)
dy = torch.randn(N, C, H, W).contiguous(memory_format=fmt)
gamma, beta = torch.randn(C, requires_grad=True), torch.randn(C, requires_grad=True)

def timed(f):
    f(); f()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
    t.sort()
    return {"best": t[0], "median": t[len(t) // 2]}

with torch.no_grad():
    fwd = timed(lambda: F.silu(F.group_norm(x, G, gamma, beta, 1e-5)))
    plain_fwd = timed(lambda: F.group_norm(x, G, gamma, beta, 1e-5))
y = F.silu(F.group_norm(x, G, gamma, beta, 1e-5))
bwd = timed(lambda: torch.autograd.grad(y, (x, gamma, beta), dy, retain_graph=True))
yp = F.group_norm(x, G, gamma, beta, 1e-5)
plain_bwd = timed(lambda: torch.autograd.grad(yp, (x, gamma, beta), dy, retain_graph=True))
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "forward": fwd, "backward": bwd, "plain_forward": plain_fwd, "plain_backward": plain_bwd}))
