import math

import pytest
import torch
from einops import rearrange

from workbench import GPT, GPTConfig
from workbench.models.gpt import MERGE_HEADS, SPLIT_HEADS, merge_heads, split_heads
from workbench.models.kv_cache import KVCache
from workbench.models.weights import load_state_checked, tied_parameters


@pytest.fixture(params=["gpt1-micro", "gpt2-micro"])
def model(request):
    torch.manual_seed(0)
    return GPT(GPTConfig.from_preset(request.param, dropout=0.0)).eval()


def test_forward_shapes_and_loss(model):
    cfg = model.config
    idx = torch.randint(0, cfg.vocab_size, (2, 10))
    out = model(idx, targets=torch.randint(0, cfg.vocab_size, (2, 10)))
    assert out.logits.shape == (2, 10, cfg.vocab_size)
    assert out.loss.shape == () and out.loss.item() > 0
    # A fresh model predicts nearly uniformly: loss close to log(vocab).
    assert abs(out.loss.item() - math.log(cfg.vocab_size)) < 0.5


def test_ignore_index_skips_positions(model):
    idx = torch.randint(0, model.config.vocab_size, (1, 8))
    targets = idx.clone()
    targets[:, :4] = -100
    full = torch.nn.functional.cross_entropy(model(idx).logits[0, 4:], idx[0, 4:])
    assert torch.allclose(model(idx, targets=targets).loss, full)


def test_lm_head_is_tied(model):
    assert model.lm_head.weight is model.wte.weight


def test_layer_norm_placement_follows_config():
    assert GPT(GPTConfig.from_preset("gpt1-micro")).ln_f is None
    assert GPT(GPTConfig.from_preset("gpt2-micro")).ln_f is not None


def test_gpt2_residual_projection_init_is_scaled():
    torch.manual_seed(0)
    config = GPTConfig(n_layer=8, d_model=256, n_head=4, d_ff=1024, vocab_size=64, n_ctx=16, norm="pre")
    model = GPT(config)
    expected = 0.02 / math.sqrt(2 * 8)
    assert abs(model.blocks[0].attn.proj.weight.std().item() - expected) < 0.1 * expected
    assert abs(model.blocks[0].attn.qkv.weight.std().item() - 0.02) < 0.002
    assert torch.count_nonzero(model.blocks[0].attn.qkv.bias) == 0


def test_hidden_states_and_attentions_on_request(model):
    cfg = model.config
    idx = torch.randint(0, cfg.vocab_size, (2, 7))
    plain = model(idx)
    assert plain.hidden_states is None and plain.attentions is None
    out = model(idx, output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == cfg.n_layer + 1
    assert all(h.shape == (2, 7, cfg.d_model) for h in out.hidden_states)
    # The explicit attention path gives the same logits as the fused one.
    assert torch.allclose(out.logits, plain.logits, atol=1e-5)
    assert len(out.attentions) == cfg.n_layer
    weights = out.attentions[0]
    assert weights.shape == (2, cfg.n_head, 7, 7)
    assert torch.allclose(weights.sum(-1), torch.ones(2, cfg.n_head, 7))
    assert torch.count_nonzero(weights.triu(1)) == 0  # causal


def test_kv_cache_matches_full_forward(model):
    idx = torch.randint(0, model.config.vocab_size, (2, 12))
    full = model(idx).logits
    first = model(idx[:, :5], use_cache=True)
    chunk = model(idx[:, 5:9], past_key_values=first.past_key_values, use_cache=True)
    step = model(idx[:, 9:10], past_key_values=chunk.past_key_values, use_cache=True)
    assert torch.allclose(chunk.logits, full[:, 5:9], atol=1e-5)
    assert torch.allclose(step.logits, full[:, 9:10], atol=1e-5)


def test_in_place_cache_matches_the_concatenated_one_and_the_full_forward(model):
    idx = torch.randint(0, model.config.vocab_size, (2, 12))
    full = model(idx).logits
    cache = KVCache(model.config.n_layer, model.config.n_ctx)
    first = model(idx[:, :5], past_key_values=cache, use_cache=True)
    chunk = model(idx[:, 5:9], past_key_values=cache, use_cache=True)
    step = model(idx[:, 9:10], past_key_values=cache, use_cache=True)
    assert first.past_key_values is cache and cache.length == 10
    torch.testing.assert_close(chunk.logits, full[:, 5:9], atol=1e-5, rtol=0)
    torch.testing.assert_close(step.logits, full[:, 9:10], atol=1e-5, rtol=0)
    legacy = model(idx[:, :10], use_cache=True).past_key_values
    for layer, (keys, values) in zip(cache.layers, legacy):
        torch.testing.assert_close(layer.keys[:, :, :10], keys)
        torch.testing.assert_close(layer.values[:, :, :10], values)


def test_in_place_cache_refuses_overflow_and_use_cache_false(model):
    n_ctx = model.config.n_ctx
    cache = KVCache(model.config.n_layer, n_ctx)
    with pytest.raises(ValueError, match="needs use_cache=True"):
        model(torch.zeros(1, 2, dtype=torch.long), past_key_values=cache)
    model(torch.zeros(1, n_ctx - 1, dtype=torch.long), past_key_values=cache, use_cache=True)
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 2, dtype=torch.long), past_key_values=cache, use_cache=True)


def test_generate_cache_and_no_cache_agree_and_crop_at_context(model):
    n_ctx = model.config.n_ctx
    prompt = torch.randint(0, model.config.vocab_size, (2, n_ctx - 3))
    cached = model.generate(prompt, 10, temperature=0)
    uncached = model.generate(prompt, 10, temperature=0, use_cache=False)
    assert cached.shape == (2, n_ctx + 7)
    assert torch.equal(cached, uncached)
    # A prompt longer than the context is cropped from the left, not rejected.
    long_prompt = torch.randint(0, model.config.vocab_size, (1, n_ctx + 5))
    assert model.generate(long_prompt, 2, temperature=0).shape == (1, n_ctx + 7)


def test_sampling_is_seeded_and_respects_top_k(model):
    prompt = torch.zeros(3, 1, dtype=torch.long)
    a = model.generate(prompt, 8, temperature=1.0, top_k=5, seed=7)
    b = model.generate(prompt, 8, temperature=1.0, top_k=5, seed=7)
    assert torch.equal(a, b)
    # With top_k=1 sampling is greedy.
    assert torch.equal(model.generate(prompt, 8, top_k=1, seed=1), model.generate(prompt, 8, temperature=0))
    # A tiny top_p keeps only the most likely token: greedy again.
    assert torch.equal(model.generate(prompt, 8, top_p=1e-6, seed=3), model.generate(prompt, 8, temperature=0))


def test_generate_stops_rows_at_eos(model):
    prompt = torch.zeros(2, 1, dtype=torch.long)
    greedy = model.generate(prompt, 6, temperature=0)
    eos = int(greedy[0, 1])
    out = model.generate(prompt, 6, temperature=0, eos_token_id=eos)
    row = out[0, 1:]
    assert row[0] == eos and (row == eos).all()


@pytest.mark.parametrize(
    "idx, message",
    [
        (torch.zeros(1, 65, dtype=torch.long), "sequence length 65 exceeds the context n_ctx=64"),
        (torch.tensor([[1, 512]]), r"token id 512 is outside the vocabulary \[0, 512\)"),
        (torch.tensor([[-1, 3]]), r"token id -1 is outside the vocabulary"),
        (torch.zeros(4, dtype=torch.long), r"integer tensor \[batch, time\]"),
        (torch.zeros(1, 4), r"integer tensor \[batch, time\], got torch.float32"),
    ],
)
def test_bad_input_is_named(idx, message):
    model = GPT(GPTConfig.from_preset("gpt2-micro"))
    with pytest.raises(ValueError, match=message):
        model(idx)


def test_bad_generation_arguments():
    model = GPT(GPTConfig.from_preset("gpt2-micro"))
    prompt = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="top_p must be in"):
        model.generate(prompt, 2, top_p=1.5)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate(prompt, 2, temperature=-1)
    with pytest.raises(ValueError, match=r"targets shape \(1, 2\) must equal idx shape \(1, 1\)"):
        model(prompt, targets=torch.zeros(1, 2, dtype=torch.long))


def test_load_state_checked_ties_names_and_lists_problems():
    torch.manual_seed(0)
    source = GPT(GPTConfig.from_preset("gpt2-micro"))
    target = GPT(GPTConfig.from_preset("gpt2-micro"))
    assert tied_parameters(target) == {"lm_head.weight": "wte.weight"}
    state = source.state_dict()
    del state["lm_head.weight"]  # a tied tensor may come under either of its names
    load_state_checked(target, state, "here")
    assert target.lm_head.weight is target.wte.weight and torch.equal(target.wte.weight, source.wte.weight)
    untied = {**state, "lm_head.weight": torch.zeros_like(state["wte.weight"])}
    with pytest.raises(ValueError, match="weights in here do not fit this GPT: lm_head.weight differs from wte"):
        load_state_checked(target, untied, "here")
    broken = {k: v for k, v in state.items() if not k.startswith("blocks.1.")}
    broken["blocks.0.extra"] = torch.zeros(1)
    with pytest.raises(
        ValueError,
        match=r"missing \['blocks.1.attn.proj.bias', .*\] and 4 more, "
        r"unexpected \['blocks.0.extra'\]",
    ):
        load_state_checked(target, broken, "here")
    del state["wte.weight"]
    with pytest.raises(ValueError, match=r"missing \['wte.weight'\]$"):  # its tied name is not listed twice
        load_state_checked(target, state, "here")
    small = GPT(GPTConfig.from_preset("gpt2-micro", n_ctx=32))
    with pytest.raises(ValueError, match=r"wpe.weight has shape \(64, 64\), this model expects \(32, 64\)"):
        load_state_checked(small, source.state_dict(), "here")


def test_plain_head_split_and_merge_equal_their_einops_patterns():
    # The attention splits and merges heads with plain views (einops' overhead shows in decoding):
    # the same values, in the same memory layout, as the einops patterns they stand for.
    qkv = torch.randn(2, 5, 3 * 4 * 8)
    for mine, theirs in zip(split_heads(qkv, 4), rearrange(qkv, SPLIT_HEADS, three=3, head=4), strict=True):
        assert torch.equal(mine, theirs) and mine.stride() == theirs.stride()
    heads = torch.randn(2, 4, 5, 8)
    assert torch.equal(merge_heads(heads), rearrange(heads, MERGE_HEADS))
    assert torch.equal(merge_heads(heads.transpose(2, 3).contiguous().transpose(2, 3)), rearrange(heads, MERGE_HEADS))
