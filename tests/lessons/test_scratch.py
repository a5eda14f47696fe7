"""The from-scratch framework's gradients against torch.autograd, in float64."""

import numpy as np
import pytest
import torch

from lessons import scratch as s

TOL = 1e-8


def pair(rng, *shape):
    """The same random values as a scratch leaf and a torch leaf."""
    data = rng.standard_normal(shape)
    return s.Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)


def assert_close(ours: np.ndarray, theirs: torch.Tensor):
    assert ours.shape == tuple(theirs.shape)
    assert np.abs(ours - theirs.detach().numpy()).max() <= TOL


def check(ours_out: s.Tensor, torch_out: torch.Tensor, ours_leaves, torch_leaves, rng):
    """Forward values equal; backward of a random upstream gradient equal for every leaf."""
    assert_close(ours_out.data, torch_out)
    g = rng.standard_normal(ours_out.shape)
    ours_out.backward(g)
    torch_out.backward(torch.tensor(g))
    for a, b in zip(ours_leaves, torch_leaves, strict=True):
        assert_close(a.grad, b.grad)


OPS = {
    "add": ((3, 4), (3, 4), lambda a, b: a + b, lambda a, b: a + b),
    "sub": ((3, 4), (3, 4), lambda a, b: a - b, lambda a, b: a - b),
    "mul": ((3, 4), (3, 4), lambda a, b: a * b, lambda a, b: a * b),
    "mm": ((3, 4), (4, 5), lambda a, b: a.mm(b), lambda a, b: a @ b),
    "neg": ((3, 4), None, lambda a: -a, lambda a: -a),
    "sum_all": ((3, 4), None, lambda a: a.sum(), lambda a: a.sum()),
    "sum_0": ((3, 4), None, lambda a: a.sum(0), lambda a: a.sum(0)),
    "sum_1": ((3, 4), None, lambda a: a.sum(1), lambda a: a.sum(1)),
    "expand_0": ((4,), None, lambda a: a.expand(0, 3), lambda a: a.unsqueeze(0).expand(3, 4)),
    "expand_1": ((4,), None, lambda a: a.expand(1, 3), lambda a: a.unsqueeze(1).expand(4, 3)),
    "transpose": ((3, 4), None, lambda a: a.transpose(), lambda a: a.T),
    "sigmoid": ((3, 4), None, lambda a: a.sigmoid(), torch.sigmoid),
    "tanh": ((3, 4), None, lambda a: a.tanh(), torch.tanh),
    "scalar_mul": ((3, 4), None, lambda a: 0.5 * a, lambda a: 0.5 * a),
}


@pytest.mark.parametrize("name", OPS)
def test_each_operation_matches_torch(name):
    rng = np.random.default_rng(0)
    shape_a, shape_b, ours, theirs = OPS[name]
    a, ta = pair(rng, *shape_a)
    if shape_b is None:
        check(ours(a), theirs(ta), [a], [ta], rng)
    else:
        b, tb = pair(rng, *shape_b)
        check(ours(a, b), theirs(ta, tb), [a, b], [ta, tb], rng)


def test_index_select_sums_gradients_of_repeated_rows():
    rng = np.random.default_rng(1)
    w, tw = pair(rng, 5, 3)
    idx = np.array([1, 3, 1, 1, 0])
    check(w.index_select(idx), tw[torch.tensor(idx)], [w], [tw], rng)
    assert np.all(w.grad[[2, 4]] == 0)


def test_cross_entropy_matches_torch_even_for_huge_logits():
    rng = np.random.default_rng(2)
    x, tx = pair(rng, 6, 4)
    x.data[0] *= 1000  # softmax of such scores overflows without the max shift
    tx.data[0] *= 1000
    targets = np.array([0, 3, 1, 1, 2, 0])
    out = x.cross_entropy(targets)
    tout = torch.nn.functional.cross_entropy(tx, torch.tensor(targets))
    check(out, tout, [x], [tx], rng)
    assert np.isfinite(out.item())


def test_a_tensor_used_by_several_children_gets_the_sum_of_their_gradients():
    rng = np.random.default_rng(3)
    a, ta = pair(rng, 5)
    b, tb = pair(rng, 5)
    c, tc = pair(rng, 5)
    # b feeds d and e, and d feeds the output twice: gradients add along every path.
    d, e = a + b, b * c
    td, te = ta + tb, tb * tc
    check(d * d + e - d, td * td + te - td, [a, b, c], [ta, tb, tc], rng)


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    a = s.Tensor([1.0, 2.0], requires_grad=True)
    (a * a).sum().backward()
    (a * a).sum().backward()
    assert np.allclose(a.grad, [4.0, 8.0])
    s.SGD([a]).zero_grad()
    assert a.grad is None


def torch_linear(layer: s.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.tensor(layer.weight.data, requires_grad=True),
        torch.tensor(layer.bias.data, requires_grad=True),
    )


def test_two_layer_network_with_mse_matches_torch():
    rng = np.random.default_rng(4)
    model = s.Sequential([s.Linear(3, 5, rng), s.Tanh(), s.Linear(5, 2, rng), s.Sigmoid()])
    x, tx = pair(rng, 7, 3)
    y = rng.standard_normal((7, 2))
    (w1, b1), (w2, b2) = torch_linear(model.layers[0]), torch_linear(model.layers[2])
    tout = torch.sigmoid(torch.tanh(tx @ w1 + b1) @ w2 + b2)
    tloss = torch.nn.functional.mse_loss(tout, torch.tensor(y))
    loss = s.MSELoss()(model(x), s.Tensor(y))
    check(loss, tloss, [*model.parameters(), x], [w1, b1, w2, b2, tx], rng)


def test_embedding_and_cross_entropy_match_torch():
    rng = np.random.default_rng(5)
    emb, lin = s.Embedding(6, 4, rng), s.Linear(4, 3, rng)
    idx, targets = np.array([0, 5, 2, 5, 5]), np.array([2, 0, 1, 1, 0])
    tw = torch.tensor(emb.weight.data, requires_grad=True)
    w, b = torch_linear(lin)
    tloss = torch.nn.functional.cross_entropy(
        torch.tanh(tw[torch.tensor(idx)]) @ w + b, torch.tensor(targets)
    )
    loss = s.CrossEntropyLoss()(lin(emb(idx).tanh()), targets)
    check(loss, tloss, [emb.weight, *lin.parameters()], [tw, w, b], rng)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_rnn_cell_unrolled_over_a_sequence_matches_torch(activation):
    rng = np.random.default_rng(6)
    cell = s.RNNCell(3, 4, 2, activation=activation, rng=rng)
    xs = rng.standard_normal((5, 2, 3))  # 5 steps, batch 2
    targets = rng.integers(0, 2, (5, 2))
    act = torch.tanh if activation == "tanh" else torch.sigmoid
    (wih, bih), (whh, bhh), (who, bho) = map(torch_linear, (cell.w_ih, cell.w_hh, cell.w_ho))
    hidden, th = cell.init_hidden(2), torch.zeros(2, 4, dtype=torch.float64)
    loss, tloss = None, 0
    for x, t in zip(xs, targets, strict=True):
        out, hidden = cell(s.Tensor(x), hidden)
        step = out.cross_entropy(t)
        loss = step if loss is None else loss + step
        th = act(torch.tensor(x) @ wih + bih + th @ whh + bhh)
        tloss = tloss + torch.nn.functional.cross_entropy(th @ who + bho, torch.tensor(t))
    check(loss, tloss, cell.parameters(), [wih, bih, whh, bhh, who, bho], rng)


def test_sgd_step_moves_against_the_gradient():
    p = s.Tensor([1.0, -2.0], requires_grad=True)
    (p * p).sum().backward()
    s.SGD([p], lr=0.25).step()
    assert np.allclose(p.data, [0.5, -1.0])


def test_training_a_small_network_lowers_the_loss():
    rng = np.random.default_rng(7)
    x = s.Tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = s.Tensor([[0], [1], [1], [0]])  # XOR: needs the hidden layer
    model = s.Sequential([s.Linear(2, 8, rng), s.Tanh(), s.Linear(8, 1, rng), s.Sigmoid()])
    opt, mse = s.SGD(model.parameters(), lr=1.0), s.MSELoss()
    for _ in range(500):
        opt.zero_grad()
        loss = mse(model(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.01
    assert np.array_equal(model(x).data.round(), y.data)


def test_mistakes_are_explained():
    a = s.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="expand"):
        a + s.Tensor(np.ones(3))
    with pytest.raises(RuntimeError, match="one-element"):
        (a * 2).backward()
    with pytest.raises(RuntimeError, match="requires_grad"):
        s.Tensor([1.0]).backward()
    with pytest.raises(ValueError, match="activation"):
        s.RNNCell(1, 1, 1, activation="relu")
