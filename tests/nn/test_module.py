"""Module: registration, state dicts, modes, devices, repr; the layers built on it."""

import numpy as np
import pytest

import minidiff as md
from minidiff import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.mlp = nn.MLP(4, 8, dropout=0.5)
        self.scale = nn.Parameter(md.ones(4))
        self.register_buffer("positions", np.arange(4))

    def forward(self, x):
        return self.mlp(self.norm(x)) * self.scale


def test_parameters_are_found_by_attribute():
    names = [n for n, _ in Block().named_parameters()]
    assert names == [
        "scale",
        "norm.weight",
        "norm.bias",
        "mlp.fc1.weight",
        "mlp.fc1.bias",
        "mlp.fc2.weight",
        "mlp.fc2.bias",
    ]
    assert Block().num_parameters() == 4 + 8 + (4 * 8 + 8) + (8 * 4 + 4)


def test_shared_parameters_count_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, shared)
    assert len(model.parameters()) == 2


def test_state_dict_round_trip():
    a, b = Block(), Block()
    b.load_state_dict({k: v.copy() for k, v in a.state_dict().items()})
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    assert "positions" in a.state_dict()


def test_load_state_dict_names_missing_unexpected_and_misshaped_keys():
    model = Block()
    state = dict(model.state_dict())
    state.pop("scale")
    state["extra"] = np.zeros(2)
    state["norm.weight"] = np.zeros(5)
    with pytest.raises(KeyError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "missing keys: ['scale']" in message and "unexpected keys: ['extra']" in message
    assert "norm.weight: shape (5,) in the state, (4,) here" in message
    state["norm.weight"] = np.ones(4)
    model.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(model.norm.weight.numpy(), np.ones(4))


def test_train_eval_reaches_every_module():
    model = Block().eval()
    assert not any(m.training for m in model.modules())
    x = md.randn(2, 4)
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())  # no dropout in eval
    assert all(m.training for m in model.train().modules())


def test_zero_grad_and_repr():
    model = Block()
    model(md.randn(2, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    text = repr(model)
    assert (
        "(mlp): MLP(activation=gelu" in text and f"# {model.num_parameters():,} parameters" in text
    )


def test_to_device_moves_everything(device):
    model = Block().to(device)
    assert all(p.device == device for p in model.parameters())
    assert model.positions.device == device


def test_missing_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(md.ones(2))

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_linear_computes_x_w_plus_b_and_checks_its_input():
    layer = nn.Linear(3, 2)
    x = md.randn(5, 3)
    expected = x.numpy() @ layer.weight.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-6)
    with pytest.raises(md.ShapeError, match=r"Linear\(3, 2\): input of shape \(5, 4\)"):
        layer(md.randn(5, 4))
    assert md.gradcheck(lambda x, w, b: x @ w + b, x, layer.weight, layer.bias)


def test_embedding_scatters_repeated_rows():
    table = nn.Embedding(5, 3)
    out = table(np.array([[1, 1], [4, 1]]))
    assert out.shape == (2, 2, 3)
    out.sum().backward()
    np.testing.assert_array_equal(table.weight.grad[:, 0], [0, 3, 0, 0, 1])
    with pytest.raises(md.ShapeError, match=r"indices must be in \[0, 5\)"):
        table(np.array([5]))
    with pytest.raises(md.DTypeError, match="integers"):
        table(np.array([1.0]))


def test_sequential_and_module_list():
    model = nn.Sequential(nn.Linear(2, 3), nn.Identity(), nn.Linear(3, 1))
    assert len(model) == 3 and isinstance(model[1], nn.Identity)
    assert model(md.randn(4, 2)).shape == (4, 1)
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers.parameters()) == 6


def test_layers_keep_float32():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.MLP(8, 16, activation="silu"))
    out = model(md.randn(3, 4))
    assert out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_reassigned_buffer_stays_a_buffer_and_parameters_keep_their_dtype():
    model = Block()
    model.positions = np.arange(4) * 2
    assert "positions" in model.state_dict()
    np.testing.assert_array_equal(model.state_dict()["positions"], [0, 2, 4, 6])
    p = nn.Parameter(md.tensor([1.0], dtype=np.float64))
    assert p.dtype == np.float64


def test_conv2d_matches_a_direct_loop_and_its_gradient():
    """(eq-conv-as-shifts): y[h, w] = b + sum_{a, c} x_pad[h + a, w + c] W[a, c]."""
    conv = nn.Conv2d(2, 3, 3, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 2))
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    expected = np.zeros((2, 5, 4, 3)) + conv.bias.numpy()
    for h in range(5):
        for w in range(4):
            expected[:, h, w] += np.einsum(
                "nabc,abcd->nd", padded[:, h : h + 3, w : w + 3], conv.weight.numpy()
            )
    np.testing.assert_allclose(conv(md.tensor(x, dtype=np.float64)).numpy(), expected, atol=1e-12)
    assert md.gradcheck(lambda t: conv(t), x[:1, :3, :3])
    with pytest.raises(md.ShapeError, match=r"not \(\.\.\., H, W, 2\)"):
        conv(md.zeros(1, 4, 4, 3, dtype=np.float64))
