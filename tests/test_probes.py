import numpy as np
import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.evaluation.probes import fit_probe, layer_features, probe_layers

PAD, START, EXTRACT = 0, 1, 2


def _gpt(norm):
    torch.manual_seed(0)
    return GPT(GPTConfig.from_preset(f"{'gpt2' if norm == 'pre' else 'gpt1'}-micro", dropout=0.0))


def _encoded(n=7, seed=0):
    """Examples of different lengths, each one sequence ``[start] ... [extract]`` with a label."""
    rng = np.random.default_rng(seed)
    return [
        ([[START, *rng.integers(3, 512, size=int(rng.integers(1, 12))).tolist(), EXTRACT]], i % 2) for i in range(n)
    ]


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_layer_features_read_every_layer_at_extract_in_input_order(norm):
    model = _gpt(norm).train()
    encoded = _encoded()
    features = layer_features(model, encoded, PAD, batch_size=3)
    assert features.shape == (model.config.n_layer + 1, len(encoded), model.config.d_model)
    assert features.dtype == np.float32
    assert model.training  # its mode is restored
    model.eval()
    for i, (sequences, _) in enumerate(encoded):
        # Each example alone, unpadded, through the blocks by hand: no sorting, no ln_f.
        ids = torch.tensor([sequences[0]])
        with torch.no_grad():
            x = model.wte(ids) + model.wpe(torch.arange(ids.size(1)))
            expected = [x[0, -1]]
            for block in model.blocks:
                x = block(x)[0]
                expected.append(x[0, -1])
        np.testing.assert_allclose(features[:, i], torch.stack(expected).numpy(), atol=1e-5)


def test_layer_features_refuse_an_example_with_several_sequences():
    encoded = [*_encoded(2), ([[START, 5, EXTRACT], [START, 6, EXTRACT]], 0)]
    with pytest.raises(ValueError, match="example 2 has 2 token sequences"):
        layer_features(_gpt("pre"), encoded, PAD)


def _separable(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = (x[:, 0] + x[:, 3] > 0).astype(int)
    x[:, 0] += np.where(y == 1, 0.5, -0.5)  # a margin around the boundary
    return x, y


def test_probe_separates_separable_features_and_is_at_chance_on_noise():
    train, dev = _separable(400, 0), _separable(200, 1)
    assert fit_probe(*train, {"dev": dev})["dev"].tolist() == [1] * 200
    rng = np.random.default_rng(2)
    noise = rng.normal(size=(2000, 8)), rng.integers(0, 2, size=2000)
    correct = fit_probe(*noise, {"dev": (rng.normal(size=(2000, 8)), rng.integers(0, 2, size=2000))})["dev"]
    assert correct.dtype == np.int8 and abs(correct.mean() - 0.5) < 0.05


def test_fit_probe_refuses_mismatched_shapes():
    x, y = _separable(20, 0)
    with pytest.raises(ValueError, match=r"train labels have shape \(19,\); expected \(20,\)"):
        fit_probe(x, y[:-1], {})
    with pytest.raises(ValueError, match=r"dev features have shape \(20, 7\); expected \[n, 8\]"):
        fit_probe(x, y, {"dev": (x[:, :7], y)})
    with pytest.raises(ValueError, match=r"dev labels have shape \(21,\)"):
        fit_probe(x, y, {"dev": (x, np.append(y, 0))})


def test_probe_layers_finds_the_layer_that_holds_the_label():
    # Layer 1 holds the label, layer 0 is label-shuffled noise: the per-layer gap the probes measure.
    (train_x, train_y), (dev_x, dev_y) = _separable(400, 0), _separable(100, 1)
    rng = np.random.default_rng(3)
    features = {
        "train": np.stack([rng.normal(size=train_x.shape), train_x]),
        "dev": np.stack([rng.normal(size=dev_x.shape), dev_x]),
    }
    frame = probe_layers(features, {"train": train_y, "dev": dev_y})
    assert list(frame.columns) == ["layer", "split", "n", "accuracy", "correct"]
    assert frame[["layer", "split", "n"]].values.tolist() == [[0, "dev", 100], [1, "dev", 100]]
    assert frame.accuracy[1] == 1.0 and frame.accuracy[0] < 0.7
    for row in frame.itertuples():
        correct = np.array(list(row.correct), dtype=np.int8)
        assert len(correct) == 100 and correct.mean() == row.accuracy


def test_probe_layers_refuses_bad_splits():
    features = {"train": np.zeros((2, 4, 3)), "dev": np.zeros((3, 4, 3))}
    labels = {"train": np.arange(4) % 2, "dev": np.arange(4) % 2}
    with pytest.raises(ValueError, match="no 'train' split"):
        probe_layers({"dev": features["dev"]}, {"dev": labels["dev"]})
    with pytest.raises(ValueError, match="feature shapes"):
        probe_layers(features, labels)
    with pytest.raises(ValueError, match=r"labels for splits \['train'\]"):
        probe_layers({**features, "dev": features["train"]}, {"train": labels["train"]})
