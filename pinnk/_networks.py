"""Networks: a fully-connected MLP in standard or NTK parametrisation, input embeddings and
output transforms."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ._activations import _ACTIVATIONS, Activation, activation_names, get_activation  # noqa: F401
from ._jets import JetFamily, compose, family, function_series, transform_series
from ._validation import check_float, check_int, default_device, draw_device

# ------------------------------------------------------------------------------------ embeddings
class FourierFeatures(nn.Module):
    """Random Fourier features γ(x) = [cos(2π B x), sin(2π B x)] (Tancik et al. 2020).

    B (m, d) is drawn once from N(0, scale²) and kept fixed (a buffer, not trained).
    Input (n, d) -> output (n, 2m) (or (n, d + 2m) with ``keep_input=True``).
    """

    def __init__(self, in_dim: int, features: int = 64, scale: float = 1.0, *,
                 keep_input: bool = False, generator: torch.Generator | None = None,
                 dtype: torch.dtype | None = None):
        super().__init__()
        in_dim = check_int(in_dim, "in_dim", minimum=1)
        features = check_int(features, "features", minimum=1)
        scale = check_float(scale, "scale", positive=True)
        # drawn where the generator lives, then placed like any new tensor (the default device)
        b = torch.randn(features, in_dim, generator=generator, dtype=dtype,
                        device=draw_device(generator)).to(default_device()) * scale
        self.register_buffer("B", b)
        self.keep_input = bool(keep_input)
        self.in_dim = in_dim
        self.out_dim = 2 * features + (in_dim if keep_input else 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 2 * math.pi * x @ self.B.T
        parts = [x] if self.keep_input else []
        return torch.cat(parts + [torch.cos(z), torch.sin(z)], dim=-1)


class PeriodicEmbedding(nn.Module):
    """Fourier-basis features of chosen coordinates, exactly periodic unless the raw value is kept.

    Each coordinate k in ``dims`` is replaced by cos(2π j x_k / P_k), sin(2π j x_k / P_k) for
    j = 1..m_k (``harmonics``, one int for all or one per dimension); the other coordinates pass
    through. With k in ``keep_input`` the raw x_k is kept as well: the network is then no longer
    periodic in x_k, but sees a ladder of frequencies in it (e.g. time in a transport problem
    whose solution oscillates fast in t). Input (n, d) -> (n, out_dim).

    Args:
        in_dim: d.
        dims: the embedded coordinates.
        periods: P_k > 0, one per embedded coordinate.
        harmonics: m_k >= 1, an int or one per embedded coordinate.
        keep_input: embedded coordinates whose raw value is also passed on.
    """

    def __init__(self, in_dim: int, dims: Sequence[int], periods: Sequence[float],
                 harmonics: int | Sequence[int] = 1, keep_input: Sequence[int] = ()):
        super().__init__()
        self.in_dim = check_int(in_dim, "in_dim", minimum=1)
        dims = [check_int(k, "dims", minimum=0) for k in dims]
        if len(dims) != len(periods):
            raise ValueError(f"periods: expected one period per periodic dimension ({len(dims)}), "
                             f"got {len(periods)}")
        for k in dims:
            if k >= in_dim:
                raise ValueError(f"dims: coordinate {k} out of range for in_dim={in_dim}")
        self.dims = dims
        self.periods = [check_float(p, "periods", positive=True) for p in periods]
        if isinstance(harmonics, Sequence) and not isinstance(harmonics, str):
            if len(harmonics) != len(dims):
                raise ValueError(f"harmonics: expected one count per embedded dimension "
                                 f"({len(dims)}), got {len(harmonics)}")
            self.harmonics = [check_int(m, "harmonics", minimum=1) for m in harmonics]
        else:
            self.harmonics = [check_int(harmonics, "harmonics", minimum=1)] * len(dims)
        self.keep_input = [check_int(k, "keep_input", minimum=0) for k in keep_input]
        for k in self.keep_input:
            if k not in dims:
                raise ValueError(f"keep_input: coordinate {k} is not among the embedded dims "
                                 f"{dims}")
        self.out_dim = in_dim + sum(2 * m - 1 for m in self.harmonics) + len(self.keep_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        for k in range(self.in_dim):
            col = x[:, k:k + 1]
            if k not in self.dims:
                parts.append(col)
                continue
            i = self.dims.index(k)
            if k in self.keep_input:
                parts.append(col)
            w = 2 * math.pi / self.periods[i]
            for j in range(1, self.harmonics[i] + 1):
                parts += [torch.cos(j * w * col), torch.sin(j * w * col)]
        return torch.cat(parts, dim=-1)


# ---------------------------------------------------------------------------- output transforms
class Positive(nn.Module):
    """Keep chosen output components positive: y_c -> softplus(y_c) + floor, or exp(y_c).

    Used for density and pressure in the Euler problems. Called as ``transform(x, y)``.
    """

    def __init__(self, components: Sequence[int], kind: str = "softplus", floor: float = 0.0):
        super().__init__()
        if kind not in ("softplus", "exp"):
            raise ValueError(f"kind: expected 'softplus' or 'exp', got {kind!r}")
        self.components = [check_int(c, "components", minimum=0) for c in components]
        self.kind = kind
        self.floor = check_float(floor, "floor", nonnegative=True)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cols = [self._series(y[:, c], 0)[0] if c in self.components else y[:, c]
                for c in range(y.shape[-1])]
        return torch.stack(cols, dim=-1)

    def _series(self, v: torch.Tensor, k: int) -> list:
        """[T(v), T'(v), ..., T^(k)(v)] for the positivity map T."""
        if self.kind == "exp":
            e = torch.exp(v)
            return [e + self.floor] + [e] * k
        out = [torch.nn.functional.softplus(v) + self.floor]
        if k >= 1:
            out += _ACTIVATIONS["softplus"].series(v, k)[1:]
        return out

    def taylor_series(self, fam: JetFamily, x: torch.Tensor, U: Sequence, ys: Sequence) -> list:
        """The Taylor coefficients of T(y(t)) along a jet family (see :mod:`pinnk._jets`), from
        those of y (each (n, out) or None for zero): T(y(t)) = Σ_m T^(m)(y_0)/m! (y(t) − y_0)^m
        on the positive components, the others passed through. Independent of x."""
        F = len(fam)
        out_cols: list = [[] for _ in range(F)]
        y0 = ys[0]
        for c in range(y0.shape[-1]):
            col = [None if t is None else t[:, c] for t in ys]
            if c in self.components:
                col = compose(fam, col, self._series(col[0], fam.max_degree))
            for i in range(F):
                out_cols[i].append(col[i])
        out: list = []
        for cols in out_cols:
            if all(t is None for t in cols):
                out.append(None)
                continue
            ref = next(t for t in cols if t is not None)
            out.append(torch.stack([torch.zeros_like(ref) if t is None else t for t in cols],
                                   dim=-1))
        return out


# ------------------------------------------------------------------------------------------ MLP
class MLP(nn.Module):
    """A fully-connected network f: R^d -> R^out.

    z_l = c_w,l W_l h_{l−1} + c_b b_l,  h_l = σ(z_l),  f = T(x, z_L),  h_0 = E(x)

    Args:
        in_dim: d, the number of input coordinates.
        out_dim: the number of outputs.
        width: hidden width, an int or one int per hidden layer.
        depth: number of hidden layers (ignored when ``width`` is a list).
        activation: ``"tanh"``, ``"sin"``, ``"gelu"``, ``"softplus"``, ``"erf"`` or ``"relu"``
            (relu only for value terms) or an :class:`Activation`.
        parametrization: ``"standard"``: Glorot-normal weights, zero biases, c_w = 1, c_b = 1;
            ``"ntk"``: W, b ~ N(0, 1), c_w = σ_w/√fan_in, c_b = σ_b (Jacot et al. 2018).
        sigma_w: the NTK-parametrisation weight scale σ_w.
        sigma_b: the NTK-parametrisation bias scale σ_b (0.1 as in Jacot et al.).
        embedding: an optional fixed input embedding E (a module with an ``out_dim``, e.g.
            :class:`FourierFeatures` or :class:`PeriodicEmbedding`).
        output_transform: an optional T(x, y) -> y (e.g. :class:`Positive`, or a hard boundary
            constraint).
        generator: a torch.Generator for reproducible initialisation.

    Input (n, d) -> output (n, out), in the dtype and device of the parameters.
    """

    def __init__(self, in_dim: int, out_dim: int, width: int | Sequence[int] = 50, depth: int = 4,
                 activation: str | Activation = "tanh", parametrization: str = "standard", *,
                 sigma_w: float = 1.0, sigma_b: float = 0.1, embedding: nn.Module | None = None,
                 output_transform: Callable | None = None,
                 generator: torch.Generator | None = None, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        self.in_dim = check_int(in_dim, "in_dim", minimum=1)
        self.out_dim = check_int(out_dim, "out_dim", minimum=1)
        if isinstance(width, Sequence) and not isinstance(width, str):
            widths = [check_int(w, "width", minimum=1) for w in width]
            if not widths:
                raise ValueError("width: expected at least one hidden layer")
        else:
            widths = [check_int(width, "width", minimum=1)] * check_int(depth, "depth", minimum=1)
        if parametrization not in ("standard", "ntk"):
            raise ValueError(f"parametrization: expected 'standard' or 'ntk', got "
                             f"{parametrization!r}")
        self.act = get_activation(activation)
        self.parametrization = parametrization
        self.sigma_w = check_float(sigma_w, "sigma_w", positive=True)
        self.sigma_b = check_float(sigma_b, "sigma_b", nonnegative=True)
        self.embedding = embedding
        if embedding is not None:
            e_out = getattr(embedding, "out_dim", None)
            if not isinstance(e_out, int):
                raise TypeError("embedding: expected a module with an integer attribute out_dim")
            first = e_out
        else:
            first = self.in_dim
        if output_transform is not None and not callable(output_transform):
            raise TypeError("output_transform: expected a callable T(x, y) -> y")
        self.output_transform = output_transform
        self.widths = [first] + widths + [self.out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.weight_scales: list[float] = []
        self.bias_scales: list[float] = []
        # drawn where the generator lives (so a seed gives the same network on every device),
        # then placed on ``device`` (default: torch's default device)
        home = device if device is not None else default_device()
        factory = {"dtype": dtype,
                   "device": draw_device(generator) if generator is not None else home}
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:]):
            w = torch.empty(fan_out, fan_in, **factory)
            b = torch.empty(fan_out, **factory)
            if parametrization == "standard":
                std = math.sqrt(2.0 / (fan_in + fan_out))
                w.normal_(0.0, std, generator=generator)
                b.zero_()
                self.weight_scales.append(1.0)
                self.bias_scales.append(1.0)
            else:
                w.normal_(0.0, 1.0, generator=generator)
                b.normal_(0.0, 1.0, generator=generator)
                self.weight_scales.append(self.sigma_w / math.sqrt(fan_in))
                self.bias_scales.append(self.sigma_b)
            self.weights.append(nn.Parameter(w.to(home)))
            self.biases.append(nn.Parameter(b.to(home)))

    @property
    def activation_name(self) -> str:
        return self.act.name

    @property
    def max_derivative_order(self) -> float:
        """How many times the network may be differentiated in x (inf for smooth activations)."""
        return self.act.smoothness

    @property
    def depth(self) -> int:
        return len(self.weights) - 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedded input h_0 = E(x) (x itself without an embedding)."""
        return x if self.embedding is None else self.embedding(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        last = len(self.weights) - 1
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            cw, cb = self.weight_scales[l], self.bias_scales[l]
            z = (h @ w.T if cw == 1.0 else cw * (h @ w.T)) + (b if cb == 1.0 else cb * b)
            h = self.act.fn(z) if l < last else z
        if self.output_transform is not None:
            h = self.output_transform(x, h)
        return h

    def jets(self, x: torch.Tensor, directions: Sequence[torch.Tensor], fam: JetFamily, *,
             record: list | None = None) -> list:
        """Taylor coefficients of the output along several directions at once, in one pass.

        Along x(t) = x + Σ_a t_a u_a the output expands as f(x(t)) = Σ_β f_β t^β with
        f_β = ∂_{u_1}^{β_1} ··· ∂_{u_D}^{β_D} f(x) / β!; the coefficients of the multi-indices
        of ``fam`` (a downward-closed :class:`pinnk._jets.JetFamily`) are carried through the
        layers as truncated series (z_β = c_w W h_β; h = σ(z) by series composition), every
        coefficient of a layer in one stacked matrix product, then through the output transform.

        Args:
            x: points (n, d).
            directions: D direction tensors u_a, each (n, d) (a per-point field is held fixed).
            fam: the multi-indices wanted (dimension D).
            record: when a list, receives per layer the coefficients entering it (h_β) and the
                series of σ'(z(t)) after it (None for the output layer) — the structured NTK
                path reads them; the output transform is then not applied.

        Returns:
            One tensor (n, out) per multi-index of ``fam`` (``None`` where the coefficient is
            exactly zero), differentiable in the parameters.
        """
        ys = self._raw_jets(x, list(directions), fam, record)
        if self.output_transform is None or record is not None:
            return ys
        return transform_series(fam, self.output_transform, x, list(directions), ys)

    def _raw_jets(self, x, U, fam, record):
        F = len(fam)
        if self.embedding is None:
            h: list = [x] + [None] * (F - 1)
            for a in range(fam.dim):
                i = fam.index.get(tuple(int(b == a) for b in range(fam.dim)))
                if i is not None:
                    h[i] = U[a]
        else:
            h = function_series(fam, self.embedding, x, U)
        last = len(self.weights) - 1
        K = fam.max_degree + (record is not None)
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            cw, cb = self.weight_scales[l], self.bias_scales[l]
            Wt = W.T if cw == 1.0 else cw * W.T
            live = [i for i in range(F) if h[i] is not None]
            # with gradients: one matrix product for all coefficients (unbind/stack, not
            # slicing, keep the backward pass to one copy per layer); without: one product per
            # coefficient, which saves the copy into the stack
            if len(live) == 1 or not torch.is_grad_enabled():
                Z = [h[i] @ Wt for i in live]
            else:
                Z = (torch.stack([h[i] for i in live]) @ Wt).unbind(0)
            z: list = [None] * F
            for i, t in zip(live, Z):
                z[i] = t
            z[0] = z[0] + (b if cb == 1.0 else cb * b)
            if l == last:
                if record is not None:
                    record.append((h, None))
                return z
            derivs = self.act.series(z[0], K)
            if record is not None:
                nxt, s1 = compose(fam, z, derivs, with_derivative=True)
                record.append((h, s1))
                h = nxt
            else:
                h = compose(fam, z, derivs)
        raise AssertionError("unreachable")

    def taylor(self, x: torch.Tensor, tangents: Sequence[torch.Tensor],
               pairs: Sequence[tuple] = ()) -> tuple:
        """The output and its first and second directional derivatives in one pass.

        Args:
            x: points (n, d).
            tangents: directions u_a, each (n, d) (a per-point direction field).
            pairs: index pairs (a, b) into ``tangents``.

        Returns:
            ``(f, [f'(x)[u_a]], [f''(x)[u_a, u_b]])``, each (n, out), differentiable in the
            parameters (a view of :meth:`jets` for orders <= 2).
        """
        tangents, pairs = list(tangents), [tuple(p) for p in pairs]
        D = len(tangents)
        unit = [tuple(int(b == a) for b in range(D)) for a in range(D)]
        second = [tuple(u + v for u, v in zip(unit[a], unit[b])) for a, b in pairs]
        fam = family(tuple(unit + second), D)
        cs = self.jets(x, tangents, fam)
        y = cs[0]
        get = lambda beta, scale=1: (torch.zeros_like(y) if cs[fam.index[beta]] is None  # noqa: E731
                                     else scale * cs[fam.index[beta]])
        dy = [get(u) for u in unit]
        ddy = [get(s, 2 if a == b else 1) for s, (a, b) in zip(second, pairs)]
        return y, dy, ddy

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, activation={self.act.name!r}, "
                f"parametrization={self.parametrization!r}")
