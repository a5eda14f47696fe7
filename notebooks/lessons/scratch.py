"""A deep-learning framework in one file: reverse-mode autograd on numpy, layers, losses, SGD.

It is the framework that ``notebooks/05_autograd_from_scratch.ipynb`` builds up and takes apart.
It is written to be read, not to be fast: every operation is a few lines of numpy forward and a
few lines backward, and the tests check each backward against ``torch.autograd`` in float64.

The pieces:

* ``Tensor``: a numpy array that remembers its ``creators`` (the tensors it was computed from)
  and how to send a gradient back to each of them. ``loss.backward()`` walks that graph once,
  from the loss to the leaves, and a tensor used by several children receives the sum of their
  gradients.
* Operations: ``+``, unary ``-``, ``-``, ``*``, ``sum``, ``expand``, ``transpose``, ``@``
  (``mm``), ``sigmoid``, ``tanh``, ``index_select`` (what an embedding does) and
  ``cross_entropy`` (softmax and negative log-likelihood fused).
* Layers (``Module``): ``Linear``, ``Sequential``, ``Tanh``, ``Sigmoid``, ``Embedding``,
  ``RNNCell``; losses ``MSELoss`` and ``CrossEntropyLoss``; the optimizer ``SGD``.

Shapes must match exactly: there is no implicit broadcasting. ``expand`` makes the copies
explicit, and its backward (a ``sum``) shows what broadcasting does to gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

# What an operation sends back: one gradient (or None) per creator, for the upstream gradient.
BackwardFn = Callable[[np.ndarray], Sequence[np.ndarray | None]]


class Tensor:
    """An n-dimensional float64 array with reverse-mode automatic differentiation.

    ``requires_grad=True`` marks a leaf whose gradient you want (a weight); tensors computed from
    such a leaf record their creators and a backward function, so that ``backward()`` can apply
    the chain rule. After ``loss.backward()``, each leaf's ``grad`` holds d(loss)/d(leaf) as a
    numpy array of the leaf's shape; gradients of further ``backward()`` calls add to it, so
    clear them between steps (``SGD.zero_grad``).
    """

    def __init__(
        self,
        data,
        requires_grad: bool = False,
        creators: tuple[Tensor, ...] = (),
        backward_fn: BackwardFn | None = None,
        op: str = "",
    ):
        self.data = np.asarray(data, dtype=np.float64)
        self.requires_grad = requires_grad
        self.grad: np.ndarray | None = None
        # Only a tensor that needs a gradient keeps its graph: constants cost no memory.
        self.creators = creators if requires_grad else ()
        self.backward_fn = backward_fn if requires_grad else None
        self.op = op

    # -- the bookkeeping ------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def is_leaf(self) -> bool:
        return not self.creators

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        op = f", op={self.op!r}" if self.op else ""
        return f"Tensor({self.data!r}{grad}{op})"

    def item(self) -> float:
        return float(self.data.item())

    def numpy(self) -> np.ndarray:
        return self.data

    @staticmethod
    def _result(data, creators: tuple[Tensor, ...], backward_fn: BackwardFn, op: str) -> Tensor:
        needs = any(c.requires_grad for c in creators)
        return Tensor(data, requires_grad=needs, creators=creators, backward_fn=backward_fn, op=op)

    def _same_shape(self, other) -> Tensor:
        """``other`` as a Tensor of this shape: Python numbers are filled in, arrays must match."""
        if not isinstance(other, Tensor):
            if np.ndim(other) != 0:
                other = Tensor(other)
            else:
                return Tensor(np.full(self.shape, float(other)))
        if other.shape != self.shape:
            raise ValueError(
                f"shapes {self.shape} and {other.shape} differ: this framework does not "
                "broadcast; use expand(dim, copies) to make the copies explicit"
            )
        return other

    # -- differentiation ------------------------------------------------------------------

    def _graph(self) -> list[Tensor]:
        """Every tensor this one depends on, each after all the tensors it was computed from."""
        order: list[Tensor] = []
        seen: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:  # an explicit stack: an RNN unrolled over many steps is a deep graph
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((c, False) for c in node.creators if id(c) not in seen)
        return order

    def backward(self, grad=None) -> None:
        """Fill ``grad`` of every leaf this tensor depends on with d(self)/d(leaf).

        ``grad`` is the gradient arriving from above; it may be left out for a one-element
        tensor (a loss), where it is 1. The graph is visited in reverse topological order, so a
        tensor passes its gradient on only once all of its children have contributed theirs.
        """
        if not self.requires_grad:
            raise RuntimeError("this tensor does not depend on any tensor with requires_grad=True")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a one-element tensor, not {self.shape}"
                )
            grad = np.ones_like(self.data)
        grads: dict[int, np.ndarray] = {id(self): np.asarray(grad, dtype=np.float64)}
        for node in reversed(self._graph()):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node.is_leaf:
                node.grad = g.copy() if node.grad is None else node.grad + g
                continue
            for creator, cg in zip(node.creators, node.backward_fn(g), strict=True):
                if cg is None or not creator.requires_grad:
                    continue
                # A tensor with several children receives the sum of their gradients.
                grads[id(creator)] = grads[id(creator)] + cg if id(creator) in grads else cg

    # -- operations -----------------------------------------------------------------------

    def __add__(self, other) -> Tensor:
        other = self._same_shape(other)
        return self._result(self.data + other.data, (self, other), lambda g: (g, g), "add")

    __radd__ = __add__

    def __neg__(self) -> Tensor:
        return self._result(-self.data, (self,), lambda g: (-g,), "neg")

    def __sub__(self, other) -> Tensor:
        other = self._same_shape(other)
        return self._result(self.data - other.data, (self, other), lambda g: (g, -g), "sub")

    def __mul__(self, other) -> Tensor:
        other = self._same_shape(other)
        a, b = self.data, other.data
        return self._result(a * b, (self, other), lambda g: (g * b, g * a), "mul")

    __rmul__ = __mul__

    def sum(self, dim: int | None = None) -> Tensor:
        """The sum over ``dim`` (or over everything). Backward copies the gradient back out."""
        shape = self.shape

        def backward(g):
            kept = g if dim is None else np.expand_dims(g, dim)
            return (np.broadcast_to(kept, shape).copy(),)

        return self._result(self.data.sum(axis=dim), (self,), backward, f"sum_{dim}")

    def expand(self, dim: int, copies: int) -> Tensor:
        """``copies`` copies stacked along a new axis ``dim``. Backward sums them up again.

        ``bias.expand(0, batch)`` is what broadcasting does silently when a bias of shape
        ``(k,)`` is added to a batch of shape ``(batch, k)``.
        """
        data = np.repeat(np.expand_dims(self.data, dim), copies, axis=dim)
        return self._result(data, (self,), lambda g: (g.sum(axis=dim),), f"expand_{dim}")

    def transpose(self) -> Tensor:
        return self._result(self.data.T, (self,), lambda g: (g.T,), "transpose")

    @property
    def T(self) -> Tensor:  # the usual name for a transpose
        return self.transpose()

    def mm(self, other: Tensor) -> Tensor:
        """Matrix product ``self @ other`` of 2-D tensors."""
        a, b = self.data, other.data
        return self._result(a @ b, (self, other), lambda g: (g @ b.T, a.T @ g), "mm")

    __matmul__ = mm

    def sigmoid(self) -> Tensor:
        s = 1 / (1 + np.exp(-self.data))
        return self._result(s, (self,), lambda g: (g * s * (1 - s),), "sigmoid")

    def tanh(self) -> Tensor:
        t = np.tanh(self.data)
        return self._result(t, (self,), lambda g: (g * (1 - t * t),), "tanh")

    def index_select(self, indices) -> Tensor:
        """Rows ``self[indices]``. Backward adds each row's gradient back where it came from:
        an index that appears twice collects both gradients (``np.add.at``, not ``+=``)."""
        idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices).astype(np.int64)
        shape = self.shape

        def backward(g):
            full = np.zeros(shape)
            np.add.at(full, idx, g)
            return (full,)

        return self._result(self.data[idx], (self,), backward, "index_select")

    def cross_entropy(self, targets) -> Tensor:
        """Mean negative log-likelihood of the integer ``targets`` under softmax(self).

        ``self`` holds raw scores (logits) of shape ``(batch, classes)``. Softmax and the log are
        fused: the gradient is simply ``(softmax - one_hot) / batch``.
        """
        t = np.asarray(targets.data if isinstance(targets, Tensor) else targets).astype(np.int64)
        t = t.reshape(-1)
        logits = self.data.reshape(len(t), -1)
        shifted = logits - logits.max(axis=1, keepdims=True)  # exp() of big scores overflows
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(len(t))
        loss = -log_probs[rows, t].mean()
        shape = self.shape

        def backward(g):
            d = np.exp(log_probs)
            d[rows, t] -= 1
            return ((g * d / len(t)).reshape(shape),)

        return self._result(loss, (self,), backward, "cross_entropy")


# -- layers -----------------------------------------------------------------------------------


class Module:
    """A layer: ``forward`` computes, ``parameters`` lists the tensors an optimizer updates."""

    def parameters(self) -> list[Tensor]:
        return []

    def forward(self, *inputs: Tensor) -> Tensor:
        raise NotImplementedError

    def __call__(self, *inputs: Tensor):
        return self.forward(*inputs)


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class Linear(Module):
    """``x @ weight + bias`` for a batch ``x`` of shape ``(batch, n_inputs)``.

    Weights start as N(0, 2 / n_inputs) (He initialization), biases at zero. ``rng`` (a
    ``numpy.random.Generator`` or a seed) makes the start reproducible.
    """

    def __init__(self, n_inputs: int, n_outputs: int, rng: np.random.Generator | int | None = None):
        scale = np.sqrt(2.0 / n_inputs)
        self.weight = Tensor(
            _rng(rng).standard_normal((n_inputs, n_outputs)) * scale, requires_grad=True
        )
        self.bias = Tensor(np.zeros(n_outputs), requires_grad=True)

    def parameters(self) -> list[Tensor]:
        return [self.weight, self.bias]

    def forward(self, x: Tensor) -> Tensor:
        return x.mm(self.weight) + self.bias.expand(0, len(x))


class Sequential(Module):
    """Layers applied one after another; its parameters are theirs."""

    def __init__(self, layers: Iterable[Module] = ()):
        self.layers = list(layers)

    def add(self, layer: Module) -> None:
        self.layers.append(layer)

    def parameters(self) -> list[Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Tanh(Module):
    """The tanh activation, as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    """The logistic sigmoid, as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Embedding(Module):
    """A learned vector per token: ``forward(indices)`` picks rows of ``weight``.

    Picking rows is the same as multiplying one-hot vectors by the matrix, without building the
    one-hot vectors. Rows start as N(0, 1) / dim.
    """

    def __init__(self, vocab_size: int, dim: int, rng: np.random.Generator | int | None = None):
        self.weight = Tensor(_rng(rng).standard_normal((vocab_size, dim)) / dim, requires_grad=True)

    def parameters(self) -> list[Tensor]:
        return [self.weight]

    def forward(self, indices) -> Tensor:
        return self.weight.index_select(indices)


class MSELoss(Module):
    """Mean squared error over every element, like ``torch.nn.functional.mse_loss``."""

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        diff = prediction - target
        return (diff * diff).sum() * (1.0 / diff.data.size)


class CrossEntropyLoss(Module):
    """``logits.cross_entropy(targets)`` as a layer, like ``torch.nn.CrossEntropyLoss``."""

    def forward(self, logits: Tensor, targets) -> Tensor:
        return logits.cross_entropy(targets)


class RNNCell(Module):
    """One step of an Elman recurrent network: three linear layers and a squashing function.

    ``hidden' = activation(x @ W_ih + b_ih + hidden @ W_hh + b_hh)`` and
    ``output = hidden' @ W_ho + b_ho``. Run it over a sequence by feeding each step's hidden
    state into the next step; the same weights are used at every step, so their gradients
    collect a contribution from each.
    """

    def __init__(
        self,
        n_inputs: int,
        n_hidden: int,
        n_outputs: int,
        activation: str = "tanh",
        rng: np.random.Generator | int | None = None,
    ):
        activations = {"tanh": Tanh, "sigmoid": Sigmoid}
        if activation not in activations:
            raise ValueError(f"activation must be one of {sorted(activations)}, not {activation!r}")
        rng = _rng(rng)
        self.n_hidden = n_hidden
        self.activation = activations[activation]()
        self.w_ih = Linear(n_inputs, n_hidden, rng)
        self.w_hh = Linear(n_hidden, n_hidden, rng)
        self.w_ho = Linear(n_hidden, n_outputs, rng)

    def parameters(self) -> list[Tensor]:
        return self.w_ih.parameters() + self.w_hh.parameters() + self.w_ho.parameters()

    def init_hidden(self, batch_size: int = 1) -> Tensor:
        return Tensor(np.zeros((batch_size, self.n_hidden)))

    def forward(self, x: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.activation(self.w_ih(x) + self.w_hh(hidden))
        return self.w_ho(hidden), hidden


# -- optimization -----------------------------------------------------------------------------


class SGD:
    """Plain stochastic gradient descent: ``p -= lr * p.grad`` for every parameter."""

    def __init__(self, parameters: Iterable[Tensor], lr: float = 0.1):
        self.parameters = list(parameters)
        self.lr = lr

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None

    def step(self) -> None:
        for p in self.parameters:
            if p.grad is not None:
                p.data -= self.lr * p.grad
