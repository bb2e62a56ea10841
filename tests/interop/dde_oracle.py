"""DeepXDE's own error vectors, for the interop tests' brute-force references."""

import numpy as np
import torch


def dde_errors(model):
    """DeepXDE's own error vectors in its loss order, flattened (reverse-mode dde.grad)."""
    import deepxde as dde

    data, net = model.data, model.net
    X = data.train_x
    starts = np.cumsum([0] + list(data.num_bcs)).astype(int)
    x = torch.as_tensor(X, device=next(net.parameters()).device).requires_grad_(True)
    y = net(x)
    dde.grad.clear()
    out = []
    if data.pde is not None:
        f = data.pde(x, y)
        out += [fi[starts[-1]:].reshape(-1) for fi in (f if isinstance(f, list) else [f])]
    for k, bc in enumerate(data.bcs):
        out.append(bc.error(X, x, y, int(starts[k]), int(starts[k + 1])).reshape(-1))
    dde.grad.clear()
    return out
