"""Parity with Hugging Face transformers on the same weights: the correctness bar of the model."""

from __future__ import annotations

import pytest
import torch

from workbench import GPT

transformers = pytest.importorskip("transformers")

SHAPES = [
    # model type, n_layer, n_embd, n_head, n_positions, vocab_size, extra HF config
    ("openai-gpt", 2, 48, 3, 37, 101, {}),
    ("openai-gpt", 3, 64, 4, 64, 257, {}),
    ("gpt2", 2, 48, 3, 37, 101, {}),
    ("gpt2", 3, 64, 4, 64, 257, {"n_inner": 96}),
    ("gpt2", 1, 32, 1, 16, 50, {"activation_function": "gelu"}),
]


def _hf_model(model_type, n_layer, n_embd, n_head, n_positions, vocab_size, extra):
    if model_type == "openai-gpt":
        config = transformers.OpenAIGPTConfig(
            n_layer=n_layer,
            n_embd=n_embd,
            n_head=n_head,
            n_positions=n_positions,
            vocab_size=vocab_size,
            **extra,
        )
        cls = transformers.OpenAIGPTLMHeadModel
    else:
        config = transformers.GPT2Config(
            n_layer=n_layer,
            n_embd=n_embd,
            n_head=n_head,
            n_positions=n_positions,
            vocab_size=vocab_size,
            **extra,
        )
        cls = transformers.GPT2LMHeadModel
    torch.manual_seed(n_layer * 1000 + n_embd)
    model = cls(config)
    # Random weights far from the default init (non-zero biases, LayerNorm gains away from 1),
    # so that a wrong transpose or a missing bias cannot hide behind near-zero values.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or "ln_f.weight" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.15)
    return model.eval()


@pytest.fixture(params=SHAPES, ids=lambda s: f"{s[0]}-L{s[1]}-d{s[2]}-h{s[3]}-T{s[4]}-V{s[5]}")
def pair(request, tmp_path):
    hf = _hf_model(*request.param)
    hf.save_pretrained(tmp_path)
    ours = GPT.from_pretrained(tmp_path)
    return hf, ours


def test_logits_and_hidden_states_match(pair):
    hf, ours = pair
    torch.manual_seed(0)
    idx = torch.randint(0, ours.config.vocab_size, (3, ours.config.n_ctx))
    with torch.no_grad():
        expected = hf(idx, output_hidden_states=True)
        got = ours(idx, output_hidden_states=True)
    assert got.logits.shape == expected.logits.shape
    assert (got.logits - expected.logits).abs().max().item() <= 1e-5
    assert len(got.hidden_states) == len(expected.hidden_states)
    for mine, theirs in zip(got.hidden_states, expected.hidden_states):
        assert (mine - theirs).abs().max().item() <= 1e-5


def test_loss_matches(pair):
    hf, ours = pair
    idx = torch.randint(0, ours.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf(idx, labels=idx).loss
        # Hugging Face shifts the labels inside; ours takes already-shifted targets.
        got = ours(idx[:, :-1], targets=idx[:, 1:]).loss
    assert abs(got.item() - expected.item()) <= 1e-5


def test_greedy_continuations_match(pair):
    hf, ours = pair
    prompt = torch.randint(0, ours.config.vocab_size, (2, 5), generator=torch.Generator().manual_seed(2))
    n_new = min(20, ours.config.n_ctx - prompt.size(1))
    expected = hf.generate(
        prompt,
        attention_mask=torch.ones_like(prompt),
        max_new_tokens=n_new,
        min_new_tokens=n_new,
        do_sample=False,
        pad_token_id=0,
    )
    for use_cache in (True, False):
        got = ours.generate(prompt, n_new, temperature=0, use_cache=use_cache)
        assert torch.equal(got, expected)


def test_pytorch_bin_checkpoint_loads_with_weights_only(tmp_path):
    hf = _hf_model(*SHAPES[2])
    hf.config.save_pretrained(tmp_path)
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    ours = GPT.from_pretrained(tmp_path)
    idx = torch.arange(10)[None]
    with torch.no_grad():
        assert (ours(idx).logits - hf(idx).logits).abs().max().item() <= 1e-5
