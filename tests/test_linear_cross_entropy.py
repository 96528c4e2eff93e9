"""The LM head's fused, chunked loss against the textbook ``F.cross_entropy(F.linear(...))``."""

import pytest
import torch
import torch.nn.functional as F

from workbench import GPT, GPTConfig
from workbench.models import linear_cross_entropy as lce
from workbench.models.lstm import LSTMLanguageModel, matching_lstm_config


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 3 rows (vocabulary 50), so that the inputs below span several and a ragged last one."""
    monkeypatch.setitem(lce.CHUNK_ELEMENTS, "cpu", 150)


def _inputs(seed=0, rows=(2, 7), d=16, vocab=50):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(*rows, d, generator=generator)
    weight = torch.randn(vocab, d, generator=generator) * 0.3
    targets = torch.randint(0, vocab, rows, generator=generator)
    targets[0, :3] = lce.IGNORE_INDEX  # prompt positions, left out of the mean
    return hidden, weight, targets


def _loss_and_grads(loss_fn, hidden, weight, targets, autocast_dtype=None):
    hidden, weight = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        loss = loss_fn(hidden, weight, targets)
    loss.backward()
    return loss.detach(), hidden.grad, weight.grad


def textbook(hidden, weight, targets):
    return F.cross_entropy(F.linear(hidden, weight).flatten(0, -2).float(), targets.flatten(), ignore_index=-100)


def test_fp32_loss_and_gradients_equal_the_textbook_path(small_chunks):
    hidden, weight, targets = _inputs()
    expected = _loss_and_grads(textbook, hidden, weight, targets)
    fused = _loss_and_grads(lce.linear_cross_entropy, hidden, weight, targets)
    for got, want in zip(fused, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_follows_the_textbook_path_and_keeps_fp32_gradients(small_chunks):
    hidden, weight, targets = _inputs(seed=1)
    reference = _loss_and_grads(textbook, hidden, weight, targets)  # fp32
    fused = _loss_and_grads(lce.linear_cross_entropy, hidden, weight, targets, torch.bfloat16)
    textbook_bf16 = _loss_and_grads(textbook, hidden, weight, targets, torch.bfloat16)
    assert fused[1].dtype == fused[2].dtype == torch.float32
    for got, bf16, want in zip(fused, textbook_bf16, reference):
        # as close to the fp32 reference as the textbook path under the same autocast, give or take
        # one bf16 rounding
        assert (got - want).abs().max() <= 2 * (bf16 - want).abs().max() + 1e-2 * want.abs().max()


def test_without_gradients_only_the_loss_is_computed(small_chunks):
    hidden, weight, targets = _inputs(seed=2)
    with torch.no_grad():
        torch.testing.assert_close(lce.linear_cross_entropy(hidden, weight, targets), textbook(hidden, weight, targets))


@pytest.mark.parametrize(
    "hidden_shape, weight_shape, target_shape, message",
    [((2, 7, 16), (50, 8), (2, 7), "do not match"), ((2, 7, 16), (50, 16), (2, 6), "targets shape")],
)
def test_mismatched_shapes_are_refused(hidden_shape, weight_shape, target_shape, message):
    with pytest.raises(ValueError, match=message):
        lce.linear_cross_entropy(
            torch.zeros(hidden_shape), torch.zeros(weight_shape), torch.zeros(target_shape, dtype=torch.long)
        )


@pytest.mark.parametrize("preset", ["gpt1-micro", "gpt2-micro"])
def test_gpt_loss_without_logits_equals_the_loss_with_them(preset, small_chunks):
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset(preset, dropout=0.0))
    idx = torch.randint(0, model.config.vocab_size, (2, 9))
    targets = torch.randint(0, model.config.vocab_size, (2, 9))
    targets[:, :2] = lce.IGNORE_INDEX
    with_logits = model(idx, targets)
    with_logits.loss.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    loss_only = model(idx, targets, return_logits=False)
    loss_only.loss.backward()
    assert loss_only.logits is None
    torch.testing.assert_close(loss_only.loss, with_logits.loss)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], rtol=1e-5, atol=1e-6, msg=name)


def test_lstm_loss_without_logits_equals_the_loss_with_them():
    torch.manual_seed(0)
    model = LSTMLanguageModel(matching_lstm_config(GPTConfig.from_preset("gpt2-micro", dropout=0.0))).eval()
    idx = torch.randint(0, model.config.vocab_size, (2, 9))
    targets = torch.randint(0, model.config.vocab_size, (2, 9))
    torch.testing.assert_close(model(idx, targets, return_logits=False).loss, model(idx, targets).loss)


@pytest.mark.parametrize("build", [lambda c: GPT(c), lambda c: LSTMLanguageModel(matching_lstm_config(c))])
def test_loss_without_logits_needs_targets(build):
    model = build(GPTConfig.from_preset("gpt2-micro"))
    with pytest.raises(ValueError, match="needs targets"):
        model(torch.zeros(1, 4, dtype=torch.long), return_logits=False)
