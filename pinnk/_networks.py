"""Networks: a fully-connected MLP in standard or NTK parametrisation, input embeddings and
output transforms."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import jvp

from ._validation import check_float, check_int

_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Activation:
    """An elementwise activation σ with its derivatives σ', σ'', σ''' (None where undefined).

    ``smoothness`` is how many times σ may be differentiated for derivative terms (0 for relu).
    """

    name: str
    fn: Callable
    d1: Callable | None
    d2: Callable | None = None
    d3: Callable | None = None
    smoothness: float = math.inf
    series_fn: Callable | None = None

    def series(self, z: torch.Tensor, k: int) -> list:
        """[σ(z), σ'(z), ..., σ^{(k)}(z)] (k <= 3), sharing work where the activation allows."""
        if self.series_fn is not None:
            return self.series_fn(z, k)
        fns = (self.fn, self.d1, self.d2, self.d3)[:k + 1]
        if any(f is None for f in fns):
            raise ValueError(f"activation: {self.name!r} has no derivative of order {k}")
        return [f(z) for f in fns]


def _tanh_d1(z):
    t = torch.tanh(z)
    return 1 - t * t


def _tanh_d2(z):
    t = torch.tanh(z)
    return -2 * t * (1 - t * t)


def _tanh_d3(z):
    t = torch.tanh(z)
    s = 1 - t * t
    return s * (6 * t * t - 2)


def _phi(z):
    return _INV_SQRT_2PI * torch.exp(-0.5 * z * z)


def _gelu_d1(z):
    return 0.5 * (1 + torch.erf(z * _INV_SQRT_2)) + z * _phi(z)


def _sp_d2(z):
    s = torch.sigmoid(z)
    return s * (1 - s)


def _sp_d3(z):
    s = torch.sigmoid(z)
    return s * (1 - s) * (1 - 2 * s)


def _erf_d1(z):
    return (2 / math.sqrt(math.pi)) * torch.exp(-z * z)


def _tanh_series(z, k):
    t = torch.tanh(z)
    out = [t]
    if k >= 1:
        s = 1 - t * t
        out.append(s)
        if k >= 2:
            out.append(-2 * t * s)
        if k >= 3:
            out.append(s * (6 * t * t - 2))
    return out


_ACTIVATIONS = {
    "tanh": Activation("tanh", torch.tanh, _tanh_d1, _tanh_d2, _tanh_d3, series_fn=_tanh_series),
    "sin": Activation("sin", torch.sin, torch.cos, lambda z: -torch.sin(z), lambda z: -torch.cos(z)),
    "gelu": Activation("gelu", lambda z: torch.nn.functional.gelu(z), _gelu_d1,
                       lambda z: _phi(z) * (2 - z * z), lambda z: z * _phi(z) * (z * z - 4)),
    "softplus": Activation("softplus", torch.nn.functional.softplus, torch.sigmoid, _sp_d2, _sp_d3),
    "erf": Activation("erf", torch.erf, _erf_d1, lambda z: -2 * z * _erf_d1(z),
                      lambda z: (4 * z * z - 2) * _erf_d1(z)),
    "relu": Activation("relu", torch.relu, lambda z: (z > 0).to(z.dtype), None, None, smoothness=0),
}


def activation_names() -> list[str]:
    """The names accepted by ``MLP(activation=...)``."""
    return sorted(_ACTIVATIONS)


def get_activation(activation: str | Activation) -> Activation:
    """Look up an activation by name (or pass an :class:`Activation` through)."""
    if isinstance(activation, Activation):
        return activation
    if not isinstance(activation, str):
        raise TypeError(f"activation: expected a name or an Activation, got "
                        f"{type(activation).__name__}")
    try:
        return _ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"activation: unknown name {activation!r}; expected one of "
                         f"{', '.join(activation_names())}") from None


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
        b = torch.randn(features, in_dim, generator=generator, dtype=dtype) * scale
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
        return self.taylor_streams(x, y, [], [], [])[0]

    def _series(self, v: torch.Tensor, k: int) -> list:
        """[T(v), T'(v), T''(v)][:k+1] for the positivity map T."""
        if self.kind == "exp":
            e = torch.exp(v)
            return [e + self.floor] + [e] * k
        s = torch.sigmoid(v)
        return [torch.nn.functional.softplus(v) + self.floor, s, s * (1 - s)][:k + 1]

    def taylor_streams(self, x, y, dy, ddy, pairs) -> tuple:
        """Push Taylor streams through the map (elementwise, independent of x):
        ẏ = T'(y) ẏ, ÿ^{ab} = T'(y) ÿ^{ab} + T''(y) ẏ^a ẏ^b on the positive components."""
        k = 2 if pairs else (1 if dy else 0)
        cols, dcols, ddcols = [], [[] for _ in dy], [[] for _ in ddy]
        for c in range(y.shape[-1]):
            v = y[:, c]
            if c not in self.components:
                cols.append(v)
                for lst, t in zip(dcols, dy):
                    lst.append(t[:, c])
                for lst, t in zip(ddcols, ddy):
                    lst.append(t[:, c])
                continue
            ser = self._series(v, k)
            cols.append(ser[0])
            for lst, t in zip(dcols, dy):
                lst.append(ser[1] * t[:, c])
            for lst, t, (a, b) in zip(ddcols, ddy, pairs):
                lst.append(ser[1] * t[:, c] + ser[2] * dy[a][:, c] * dy[b][:, c])
        stack = lambda parts: torch.stack(parts, dim=-1)  # noqa: E731
        return stack(cols), [stack(p) for p in dcols], [stack(p) for p in ddcols]


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
        factory = {"dtype": dtype, "device": device}
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
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))

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

    def taylor(self, x: torch.Tensor, tangents: Sequence[torch.Tensor],
               pairs: Sequence[tuple] = ()) -> tuple:
        """The output and its first and second directional derivatives in one pass.

        Args:
            x: points (n, d).
            tangents: directions u_a, each (n, d) (a per-point direction field).
            pairs: index pairs (a, b) into ``tangents``.

        Returns:
            ``(f, [f'(x)[u_a]], [f''(x)[u_a, u_b]])``, each (n, out), differentiable in the
            parameters. The derivatives are carried through the layers as Taylor streams
            (ż_l = c_w W_l ḣ_{l−1}, ḣ_l = σ'(z_l) ż_l, ḧ_l = σ'(z_l) z̈_l + σ''(z_l) ż_l^a ż_l^b),
            then through the output transform: by its own ``taylor_streams(x, y, dy, ddy,
            pairs)`` when it has one (:class:`Positive`), else by forward mode in (x, y).
        """
        y, dy, ddy = self._taylor(x, list(tangents), list(pairs))
        if self.output_transform is None:
            return y, dy, ddy
        T = self.output_transform
        if callable(getattr(T, "taylor_streams", None)):
            return T.taylor_streams(x, y, dy, ddy, list(pairs))
        out_dy = [jvp(T, (x, y), (u, t))[1] for u, t in zip(tangents, dy)]
        out_ddy = []
        for p, (a, b) in enumerate(pairs):
            def first(xx, yy, ta, ua=tangents[a]):
                return jvp(T, (xx, yy), (ua, ta))[1]
            out_ddy.append(jvp(first, (x, y, dy[a]), (tangents[b], dy[b], ddy[p]))[1])
        return T(x, y), out_dy, out_ddy

    def _taylor(self, x, U, plist, record: list | None = None):
        """Taylor streams through the layers (before the output transform).

        The streams are stacked as S = 1 + T + P slices of one (S, n, w) tensor, so each layer is
        one matrix product however many derivatives are carried. With ``record`` a list,
        appends per layer l the streams entering it, (h, [ḣ], [ḧ]), and the pre-activations
        (z, [ż], [z̈]) — the structured NTK path reads them. ``None`` in ḧ of the input means an
        exactly-zero stream (no embedding).
        """
        act = self.act
        T, P = len(U), len(plist)
        if self.embedding is None:
            h0, dh0, ddh0 = x, list(U), [None] * P
        else:
            emb = self.embedding
            h0 = emb(x)
            dh0 = [jvp(emb, (x,), (u,))[1] for u in U]
            ddh0 = [jvp(lambda y, ua=U[a]: jvp(emb, (y,), (ua,))[1], (x,), (U[b],))[1]
                    for a, b in plist]
        first_zero = self.embedding is None and P > 0
        # Layer 0: second-order input streams are zero without an embedding; skip them.
        Hs = torch.stack([h0] + dh0 + ([] if first_zero else ddh0))
        last = len(self.weights) - 1
        hs: list = []
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            cw, cb = self.weight_scales[l], self.bias_scales[l]
            Z = Hs @ (W.T if cw == 1.0 else cw * W.T)
            # unbind/stack (not slicing) keep the backward pass to one copy per layer
            streams = list(Z.unbind(0))
            if l == 0 and first_zero:
                streams += [None] * P
            z = streams[0] + (b if cb == 1.0 else cb * b)
            dz, ddz = streams[1:1 + T], streams[1 + T:]
            if record is not None:
                entering = (h0, dh0, ddh0) if l == 0 else (hs[0], hs[1:1 + T], hs[1 + T:])
                record.append({"in": entering, "pre": (z, dz, ddz)})
            if l == last:
                return z, dz, [torch.zeros_like(z) if t is None else t for t in ddz]
            ds = act.series(z, 2 if P else (1 if T else 0))
            hs = [ds[0]] + [ds[1] * t for t in dz]
            for p, (a, bb) in enumerate(plist):
                curv = ds[2] * dz[a] * dz[bb]
                hs.append(curv if ddz[p] is None else curv + ds[1] * ddz[p])
            Hs = torch.stack(hs)
        raise AssertionError("unreachable")

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, activation={self.act.name!r}, "
                f"parametrization={self.parametrization!r}")
