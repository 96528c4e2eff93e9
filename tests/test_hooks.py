"""Hook points and the activation cache: each name holds what its name says (checked against Hugging
Face's outputs, and against TransformerLens's meaning of each name computed by hand from Hugging Face's
weights), patching and ablation act downstream, and a forward pass without hooks is left as it was.
Bad names and hook functions are in tests/test_bad_inputs.py's catalogue."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from workbench import GPT, GPTConfig
from workbench.models.hooks import hook_names, residual_stream_names

transformers = pytest.importorskip("transformers")


def _hugging_face(model_type: str, n_embd: int, n_head: int, vocab_size: int, far_from_init: bool):
    """A random two-layer Hugging Face GPT-1 or GPT-2 with eager attention (the kind that returns its
    attention patterns)."""
    config_class, model_class = {
        "openai-gpt": (transformers.OpenAIGPTConfig, transformers.OpenAIGPTLMHeadModel),
        "gpt2": (transformers.GPT2Config, transformers.GPT2LMHeadModel),
    }[model_type]
    config = config_class(
        n_layer=2,
        n_embd=n_embd,
        n_head=n_head,
        n_positions=32,
        vocab_size=vocab_size,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    torch.manual_seed(n_embd)
    model = model_class(config)
    if far_from_init:  # non-zero biases, LayerNorm gains away from 1: a wrong slice cannot hide
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".ln_" in name and name.endswith("weight"):
                    p.copy_(1 + 0.2 * torch.randn_like(p))
                else:
                    p.normal_(0.0, 0.15)
    return model.eval()


def _converted(tmp_path, model_type, n_embd, n_head, vocab_size, far_from_init):
    hf = _hugging_face(model_type, n_embd, n_head, vocab_size, far_from_init)
    hf.save_pretrained(tmp_path)
    return hf, GPT.from_pretrained(tmp_path)


def _close(mine: torch.Tensor, theirs: torch.Tensor, name: str, atol: float = 1e-5) -> None:
    """Equal within ``atol``; infinities (the masked attention scores) must sit at the same places."""
    torch.testing.assert_close(mine, theirs, atol=atol, rtol=0, msg=lambda message: f"{name}: {message}")


@pytest.mark.parametrize("model_type", ["openai-gpt", "gpt2"])
def test_cache_equals_hugging_face_hidden_states_and_attentions(tmp_path, model_type):
    hf, ours = _converted(tmp_path, model_type, 48, 3, 101, far_from_init=True)
    idx = torch.randint(0, 101, (3, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = hf(idx, output_hidden_states=True, output_attentions=True)
        logits, cache = ours.run_with_cache(idx)
        stream = cache.accumulated_resid()
        # Hugging Face's last hidden state is what the LM head reads: through GPT-2's final LayerNorm.
        read_by_the_head = cache.accumulated_resid(apply_ln=True)[-1]
    _close(logits, expected.logits, "logits")
    assert len(stream) == len(expected.hidden_states) == 3
    for layer in range(2):
        _close(stream[layer], expected.hidden_states[layer], f"hidden state {layer}")
    _close(read_by_the_head, expected.hidden_states[2], "last hidden state")
    if model_type == "gpt2":
        final = cache["ln_final.hook_normalized"] * ours.ln_f.weight + ours.ln_f.bias
        _close(final, expected.hidden_states[2], "ln_final")
    else:  # no final LayerNorm: the last block's output
        _close(cache["blocks.1.hook_resid_post"], expected.hidden_states[2], "resid_post 1")
    for layer, theirs in enumerate(expected.attentions):
        _close(cache[f"blocks.{layer}.attn.hook_pattern"], theirs, f"pattern {layer}")


def _by_hand(hf, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every hook point's value, computed from Hugging Face's modules and weights by what its name
    means in TransformerLens (components/abstract_attention.py, layer_norm.py, transformer_block.py,
    mlps/mlp.py); post-LN blocks (GPT-1) put the LayerNorms where GPT-1 has them."""
    body, config = hf.transformer, hf.config
    post_ln = config.model_type == "openai-gpt"
    n_head, head_dim = config.n_head, config.n_embd // config.n_head
    values = {}

    def normalized(prefix: str, ln: torch.nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
        values[f"{prefix}.hook_scale"] = (x.var(-1, unbiased=False, keepdim=True) + ln.eps).sqrt()
        values[f"{prefix}.hook_normalized"] = F.layer_norm(x, x.shape[-1:], eps=ln.eps)  # no gain, no bias
        return ln(x)

    positions = torch.arange(idx.size(1))
    values["hook_embed"] = (body.tokens_embed if post_ln else body.wte)(idx)
    values["hook_pos_embed"] = (body.positions_embed if post_ln else body.wpe)(positions).expand_as(
        values["hook_embed"]
    )
    x = values["hook_embed"] + values["hook_pos_embed"]
    for i, block in enumerate(body.h):
        name = f"blocks.{i}."
        values[name + "hook_resid_pre"] = x
        attn_in = x if post_ln else normalized(name + "ln1", block.ln_1, x)
        q, k, v = (
            part.unflatten(-1, (n_head, head_dim)) for part in block.attn.c_attn(attn_in).split(config.n_embd, -1)
        )
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head_dim)
        causal = torch.ones(idx.size(1), idx.size(1), dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        pattern = scores.softmax(-1)
        z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)
        attn_out = block.attn.c_proj(z.flatten(-2))
        values.update(
            {
                name + "attn.hook_q": q,
                name + "attn.hook_k": k,
                name + "attn.hook_v": v,
                name + "attn.hook_attn_scores": scores,
                name + "attn.hook_pattern": pattern,
                name + "attn.hook_z": z,
                name + "hook_attn_out": attn_out,
            }
        )
        resid_mid = normalized(name + "ln1", block.ln_1, x + attn_out) if post_ln else x + attn_out
        values[name + "hook_resid_mid"] = resid_mid
        mlp_in = resid_mid if post_ln else normalized(name + "ln2", block.ln_2, resid_mid)
        values[name + "mlp.hook_pre"] = block.mlp.c_fc(mlp_in)
        values[name + "mlp.hook_post"] = block.mlp.act(values[name + "mlp.hook_pre"])
        values[name + "hook_mlp_out"] = block.mlp.c_proj(values[name + "mlp.hook_post"])
        x = resid_mid + values[name + "hook_mlp_out"]
        x = normalized(name + "ln2", block.ln_2, x) if post_ln else x
        values[name + "hook_resid_post"] = x
    if not post_ln:
        normalized("ln_final", body.ln_f, x)
    return values


@pytest.mark.parametrize("model_type", ["openai-gpt", "gpt2"])
def test_every_hook_point_means_what_transformer_lens_means_by_its_name(tmp_path, model_type):
    # GPT-2's real shape per layer (width 768, 12 heads of 64), two layers and a small vocabulary;
    # GPT-1 the same, with its post-LN blocks.
    hf, ours = _converted(tmp_path, model_type, 768, 12, 300, far_from_init=False)
    idx = torch.randint(0, 300, (2, 20), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = _by_hand(hf, idx)
        logits, cache = ours.run_with_cache(idx)
        _close(logits, hf(idx).logits, "logits")
        head_results = [cache.head_results(layer) for layer in range(2)]
    assert list(cache) == hook_names(ours.config) and sorted(cache) == sorted(expected)
    for name, value in expected.items():
        _close(cache[name], value, name)
    for layer, block in enumerate(hf.transformer.h):
        z = expected[f"blocks.{layer}.attn.hook_z"]
        head_dim = z.size(-1)
        for head in (0, 11):  # each head's slice of the output projection
            rows = block.attn.c_proj.weight[head * head_dim : (head + 1) * head_dim]
            _close(head_results[layer][:, :, head], z[:, :, head] @ rows, f"head_results {layer}.{head}")
        summed = head_results[layer].sum(2) + block.attn.c_proj.bias
        _close(summed, expected[f"blocks.{layer}.hook_attn_out"], f"head_results {layer} summed")


@pytest.fixture(params=["gpt1-micro", "gpt2-micro"])
def model(request):
    torch.manual_seed(0)
    return GPT(GPTConfig.from_preset(request.param, dropout=0.0)).eval()


def test_zero_ablating_a_head_equals_removing_it_by_hand(model):
    layer, head, head_dim = 1, 1, model.config.head_dim
    idx = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(2))

    def zero_head(z, name):
        assert name == f"blocks.{layer}.attn.hook_z" and z.shape == (2, 16, model.config.n_head, head_dim)
        z[:, :, head] = 0

    removed = copy.deepcopy(model)
    with torch.no_grad():  # the head's columns of the output projection: it writes nothing
        removed.blocks[layer].attn.proj.weight[:, head * head_dim : (head + 1) * head_dim] = 0
        ablated = model.run_with_hooks(idx, {f"blocks.{layer}.attn.hook_z": zero_head})
        assert torch.equal(ablated, removed(idx).logits)
        assert not torch.allclose(ablated, model(idx).logits, atol=1e-3)  # the head mattered


def test_patching_the_residual_stream_carries_the_other_run_downstream(model):
    generator = torch.Generator().manual_seed(3)
    clean, corrupted = (torch.randint(0, model.config.vocab_size, (1, 12), generator=generator) for _ in range(2))
    last = f"blocks.{model.config.n_layer - 1}.hook_resid_post"
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(clean, [last, "blocks.0.hook_resid_post"])
        # Everything the head reads replaced: the corrupted run gives the clean run's logits.
        patched = model.run_with_hooks(corrupted, {last: lambda x, _: clean_cache[last]})
        assert torch.equal(patched, clean_logits)
        # At one position of an earlier layer: the positions before it are untouched (causality).
        position = 7

        def patch(x, _):
            x[:, position] = clean_cache["blocks.0.hook_resid_post"][:, position]

        logits, cache = model.run_with_cache(
            corrupted, ["blocks.0.hook_resid_post"], hooks={"blocks.0.hook_resid_post": patch}
        )
        plain = model(corrupted).logits
    assert torch.equal(
        cache["blocks.0.hook_resid_post"][:, position], clean_cache["blocks.0.hook_resid_post"][:, position]
    )
    assert torch.equal(logits[:, :position], plain[:, :position])
    assert not torch.allclose(logits[:, position:], plain[:, position:], atol=1e-4)


def test_without_pattern_hooks_the_fused_path_runs_and_nothing_moves(model, monkeypatch):
    idx = torch.randint(0, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(4))
    fused_calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: fused_calls.append(1) or sdpa(*a, **k))
    with torch.no_grad():
        plain = model(idx).logits
        assert len(fused_calls) == model.config.n_layer  # no hook: every layer on the fused path
        # Every point but the attention matrix and the LayerNorms' steps: same path, same bits.
        names = [n for n in hook_names(model.config) if not any(p in n for p in ("scores", "pattern", "ln"))]
        logits, cache = model.run_with_cache(idx, names)
        assert torch.equal(logits, plain) and list(cache) == names
        assert len(fused_calls) == 2 * model.config.n_layer
        fused_calls.clear()
        # The attention matrix of one layer: that layer alone takes the explicit path.
        logits, cache = model.run_with_cache(idx, ["blocks.0.attn.hook_pattern"])
        assert len(fused_calls) == model.config.n_layer - 1
        assert torch.allclose(logits, plain, atol=1e-5)
        all_logits, _ = model.run_with_cache(idx)
        assert torch.allclose(all_logits, plain, atol=1e-5)


def test_residual_stream_and_padding(model):
    prompt = torch.tensor([[3, 1, 4, 1, 5]])
    padded, mask = torch.tensor([[0, 0, 3, 1, 4, 1, 5]]), torch.tensor([[0, 0, 1, 1, 1, 1, 1]])
    names = residual_stream_names(model.config)
    with torch.no_grad():
        _, alone = model.run_with_cache(prompt, names, return_logits=False)
        logits, batch = model.run_with_cache(padded, [*names, "blocks.0.attn.hook_pattern"], attention_mask=mask)
    assert alone.accumulated_resid().shape == (model.config.n_layer + 1, 1, 5, model.config.d_model)
    assert torch.allclose(batch.accumulated_resid()[:, :, 2:], alone.accumulated_resid(), atol=1e-5)
    assert torch.count_nonzero(batch["blocks.0.attn.hook_pattern"][:, :, 2:, :2]) == 0  # padding unread
