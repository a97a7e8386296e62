"""File-to-file forward with NumPy and PyTorch (the comparison for `groupnorm forward` in docs/performance.md):
numpy.load, torch group_norm, numpy.save of Y, mean and rstd.  usage: bench_file_torch.py X.npy G OUTDIR"""
import sys
import numpy as np
import torch

x = torch.from_numpy(np.load(sys.argv[1]))
G = int(sys.argv[2])
N, C = x.shape[0], x.shape[1]
HxW = int(np.prod(x.shape[2:])) if x.dim() > 2 else 1
y, mean, rstd = torch.ops.aten.native_group_norm(x, None, None, N, C, HxW, G, 1e-5)
np.save(f"{sys.argv[3]}/Y.npy", y.numpy())
np.save(f"{sys.argv[3]}/mean.npy", mean.numpy())
np.save(f"{sys.argv[3]}/rstd.npy", rstd.numpy())
