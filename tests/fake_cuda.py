"""A stand-in GPU for machines without one: tensors that *say* they are on ``cuda:0``.

CI has no GPU, yet the bugs users hit first on one are device bugs: a CPU tensor mixed into a
CUDA computation, or a CUDA tensor handed to numpy. Inside ``fake_cuda()`` every tensor moved to
``cuda`` (``.to("cuda:0")``, ``.cuda()``, ``device="cuda:0"`` in a factory, ``module.to(...)``)
stays in host memory but is remembered as a GPU tensor, and so is everything computed from it.
Then, as on a real GPU:

- an op mixing a GPU tensor with a CPU tensor of one element or more raises
  ``RuntimeError: Expected all tensors to be on the same device`` (0-dim CPU tensors are fine,
  as in CUDA; so is indexing a GPU tensor with CPU indices);
- ``.numpy()`` / ``np.asarray`` of a GPU tensor raises ``TypeError: can't convert cuda:0 ...``;
- ``.device`` says ``cuda:0``; ``.cpu()`` / ``.to("cpu")`` give a plain CPU copy.

The checks are the device rules only; the arithmetic is the CPU's.
"""

from __future__ import annotations

import contextlib

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves, tree_map

CUDA = torch.device("cuda", 0)
_TO = {torch.Tensor.to, torch.Tensor.cuda, torch.Tensor.cpu}
_NUMPY = {torch.Tensor.numpy, torch.Tensor.__array__}
# Indexing a CUDA tensor with CPU indices is allowed by CUDA itself.
_INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__, torch.Tensor.index_select}


def _is_cuda_device(device) -> bool:
    return device is not None and torch.device(device).type == "cuda"


class FakeCuda(TorchFunctionMode):
    """Where a tensor lives is a property of its storage, as in torch: views of a GPU tensor
    are on the GPU, and a parameter whose ``.data`` is replaced moves with it."""

    def __init__(self):
        super().__init__()
        # Holding the storages keeps their addresses from being reused by new CPU tensors.
        self._gpu: dict[int, torch.UntypedStorage] = {}

    @staticmethod
    def _address(t) -> int:
        if not isinstance(t, torch.Tensor):
            return 0
        with torch._C.DisableTorchFunction():
            return t.untyped_storage().data_ptr()

    def on_gpu(self, t) -> bool:
        address = self._address(t)
        return address != 0 and address in self._gpu

    def _mark(self, out):
        def mark(t):
            address = self._address(t)
            if address:
                with torch._C.DisableTorchFunction():
                    self._gpu[address] = t.untyped_storage()
            return t

        return tree_map(mark, out)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name == "__get__" and self.on_gpu(args[0]):
            prop = getattr(func, "__self__", None)
            if prop is torch.Tensor.device:
                return CUDA
            if prop is torch.Tensor.is_cuda:
                return True
            if prop is torch.Tensor.is_cpu:
                return False
        if name in ("__get__", "__set__") or name.startswith("_has_"):
            return func(*args, **kwargs)  # attributes (.data = ...), not computations
        if func in _TO:
            return self._move(func, args, kwargs)
        tensors = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        gpu = [t for t in tensors if self.on_gpu(t)]
        if gpu and func in _NUMPY:
            raise TypeError(
                "can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy "
                "the tensor to host memory first."
            )
        cpu = [t for t in tensors if not self.on_gpu(t) and t.dim() > 0]
        if gpu and cpu and not (func in _INDEXING and self.on_gpu(args[0])):
            raise RuntimeError(
                "Expected all tensors to be on the same device, but found at least two "
                f"devices, cuda:0 and cpu! (in {getattr(func, '__name__', func)})"
            )
        device = kwargs.get("device")
        if _is_cuda_device(device):
            kwargs = {**kwargs, "device": "cpu"}
        out = func(*args, **kwargs)
        return self._mark(out) if gpu or _is_cuda_device(device) else out

    def _move(self, func, args, kwargs):
        t = args[0]
        if func is torch.Tensor.cuda:
            return t if self.on_gpu(t) else self._mark(t.clone())
        if func is torch.Tensor.cpu:
            return t.clone() if self.on_gpu(t) else t
        device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args[1:], **kwargs)
        if isinstance(args[1] if len(args) > 1 else None, torch.Tensor) and self.on_gpu(args[1]):
            device = CUDA  # t.to(other) moves t to other's device
        out = t.to(dtype=dtype or t.dtype, memory_format=memory_format or torch.preserve_format)
        if _is_cuda_device(device):
            if self.on_gpu(t):
                return out
            return self._mark(out.clone() if out is t else out)  # a copy, as a real move makes
        if device is not None and self.on_gpu(t):
            return out.clone() if out is t else out  # a plain CPU copy
        return self._mark(out) if self.on_gpu(t) else out


@contextlib.contextmanager
def fake_cuda():
    """``with fake_cuda() as gpu:`` ... ``gpu.on_gpu(t)`` tells where a tensor is."""
    with FakeCuda() as mode:
        yield mode
