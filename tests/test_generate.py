"""Generation: KV cache vs no cache, left-padded batches, streaming, stop strings, empty prompts; the LSTM."""

from __future__ import annotations

import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.data.tokenizer import Tokenizer, train_bpe
from workbench.models import LSTMConfig, LSTMLanguageModel
from workbench.models.generation import generate, generate_text, left_pad

CORPUS = [
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.",
    "In the beginning God created the heaven and the earth. And the earth was without form.",
] * 20


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return train_bpe(CORPUS, 300)


def _model(preset: str, vocab_size: int = 512, scale: float = 0.3) -> GPT:
    """Weights far from the init, so that logits vary a lot and greedy paths are not ties."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset(preset, dropout=0.0, vocab_size=vocab_size)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, scale)
    return model


@pytest.fixture(params=["gpt1-micro", "gpt2-micro"])
def model(request) -> GPT:
    return _model(request.param)


PROMPTS = [[5, 17, 300], [9, 8, 7, 6, 5, 4, 3, 2, 1], [42]]


@pytest.mark.parametrize("use_cache", [True, False])
def test_left_padded_batch_continues_each_prompt_as_alone(model, use_cache):
    idx, mask = left_pad(PROMPTS, pad_id=0)
    n_new = 70  # past the 64-token context: the window moves and the cache is rebuilt
    batch = model.generate(idx, n_new, attention_mask=mask, temperature=0, use_cache=use_cache)
    assert batch.shape == (3, idx.size(1) + n_new)
    for row, prompt in enumerate(PROMPTS):
        alone = model.generate(torch.tensor([prompt]), n_new, temperature=0, use_cache=use_cache)
        assert torch.equal(batch[row, idx.size(1) :], alone[0, len(prompt) :])


def test_greedy_with_and_without_cache_is_identical(model):
    idx, mask = left_pad(PROMPTS, pad_id=0)
    cached = model.generate(idx, 80, attention_mask=mask, temperature=0)
    uncached = model.generate(idx, 80, attention_mask=mask, temperature=0, use_cache=False)
    assert torch.equal(cached, uncached)


def test_padding_mask_leaves_real_positions_unchanged(model):
    prompt = torch.tensor([[3, 1, 4, 1, 5]])
    padded = torch.tensor([[0, 0, 3, 1, 4, 1, 5]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        alone = model(prompt, output_attentions=True)
        batch = model(padded, attention_mask=mask, output_attentions=True)
        ones = model(prompt, attention_mask=torch.ones_like(prompt))
    assert torch.allclose(batch.logits[:, 2:], alone.logits, atol=1e-5)
    assert torch.allclose(ones.logits, alone.logits, atol=1e-5)
    # No attention weight lands on padding, and nothing is NaN (padding queries see themselves).
    for weights in batch.attentions:
        assert not weights.isnan().any()
        assert torch.count_nonzero(weights[:, :, 2:, :2]) == 0


def test_matches_hugging_face_on_left_padded_batches(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=2, n_embd=48, n_head=3, n_positions=64, vocab_size=101)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.normal_(0.0, 0.15)
    hf.save_pretrained(tmp_path)
    ours = GPT.from_pretrained(tmp_path)
    idx, mask = left_pad([[5, 17, 30], [9, 8, 7, 6, 5, 4], [42]], pad_id=0)
    expected = hf.generate(
        idx, attention_mask=mask, max_new_tokens=20, min_new_tokens=20, do_sample=False, pad_token_id=0
    )
    assert torch.equal(ours.generate(idx, 20, attention_mask=mask, temperature=0), expected)


def test_stream_yields_the_tokens_generate_returns(model):
    idx, mask = left_pad(PROMPTS, pad_id=0)
    steps = list(model.stream(idx, 12, attention_mask=mask, top_k=20, seed=3))
    assert len(steps) == 12 and all(s.shape == (3,) for s in steps)
    full = model.generate(idx, 12, attention_mask=mask, top_k=20, seed=3)
    assert torch.equal(torch.stack(steps, dim=1), full[:, idx.size(1) :])


def test_sampling_filters_off_equal_plain_sampling(model):
    prompt = torch.tensor([[1, 2, 3]])
    plain = model.generate(prompt, 10, seed=5)
    assert torch.equal(model.generate(prompt, 10, seed=5, top_p=1.0), plain)
    assert torch.equal(model.generate(prompt, 10, seed=5, top_k=model.config.vocab_size), plain)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
        (dict(top_k=0), "top_k must be a positive integer"),
        (dict(temperature=-0.5), "temperature must be >= 0"),
        (dict(attention_mask=torch.tensor([[1, 1, 0]])), "pad prompts on the left"),
        (dict(attention_mask=torch.ones(1, 2)), r"attention_mask shape \(1, 2\) must equal"),
    ],
)
def test_bad_arguments_fail_before_the_first_step(kwargs, message):
    model = _model("gpt2-micro")
    with pytest.raises(ValueError, match=message):
        model.stream(torch.tensor([[1, 2, 3]]), 4, **kwargs)  # not iterated: checked eagerly


def test_empty_prompt_tensor_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="start from <|endoftext|>"):
        _model("gpt2-micro").generate(torch.zeros(1, 0, dtype=torch.long), 3)


def test_left_pad():
    idx, mask = left_pad([[7, 8], [9]], pad_id=0)
    assert idx.tolist() == [[7, 8], [0, 9]] and mask.tolist() == [[1, 1], [0, 1]]
    with pytest.raises(ValueError, match="no empty ones"):
        left_pad([[1], []], pad_id=0)


# --------------------------------------------------------------------------- text level


@pytest.fixture
def text_model(tokenizer) -> GPT:
    return _model("gpt2-micro", vocab_size=tokenizer.vocab_size, scale=0.2)


def test_generate_text_batches_prompts_and_streams(text_model, tokenizer):
    prompts = ["It was the best", "To be", "In the beginning God created"]
    updates = []
    texts = generate_text(text_model, tokenizer, prompts, 8, temperature=0, stop_at_eos=False, on_update=updates.append)
    assert len(updates) == 8 and updates[-1] == texts
    for prompt, text in zip(prompts, texts):
        assert text == generate_text(text_model, tokenizer, prompt, 8, temperature=0, stop_at_eos=False)
        # The text is the continuation alone: the prompt plus it is what greedy decoding gives.
        ids = torch.tensor([tokenizer.encode(prompt)])
        alone = text_model.generate(ids, 8, temperature=0)
        assert text == tokenizer.decode(alone[0, ids.size(1) :].tolist())


def test_empty_prompt_starts_from_end_of_text(text_model, tokenizer):
    text = generate_text(text_model, tokenizer, "", 6, temperature=0, stop_at_eos=False)
    from_eos = text_model.generate(torch.tensor([[tokenizer.eos_id]]), 6, temperature=0)
    assert text == tokenizer.decode(from_eos[0, 1:].tolist())


def test_stop_string_cuts_the_text(text_model, tokenizer):
    full = generate_text(text_model, tokenizer, "To be", 30, temperature=0, stop_at_eos=False)
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    assert stop.strip(), full
    cut = generate_text(
        text_model, tokenizer, "To be", 30, temperature=0, stop=[stop, "never\u00e9"], stop_at_eos=False
    )
    assert cut == full[: full.index(stop)]


def test_end_of_text_ends_a_row(text_model, tokenizer):
    ids = torch.tensor([tokenizer.encode("To be")])
    greedy = text_model.generate(ids, 10, temperature=0)[0, ids.size(1) :].tolist()

    class EndsAtThird(Tokenizer):  # pretend the third greedy token is <|endoftext|>
        eos_id = greedy[2]

    text = generate_text(text_model, EndsAtThird(tokenizer.backend), "To be", 10, temperature=0)
    assert text == tokenizer.decode(greedy[: greedy.index(greedy[2])])


def test_generate_text_bad_input(text_model, tokenizer):
    with pytest.raises(ValueError, match="stop strings must be non-empty"):
        generate_text(text_model, tokenizer, "a", 2, stop="")
    with pytest.raises(ValueError, match="non-empty list of strings"):
        generate_text(text_model, tokenizer, [], 2)


def _lstm(vocab_size: int = 512) -> LSTMLanguageModel:
    torch.manual_seed(0)
    model = LSTMLanguageModel(
        LSTMConfig(vocab_size=vocab_size, d_model=32, hidden=48, n_layer=2, n_ctx=16, dropout=0.0)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def test_the_lstm_decodes_carrying_its_state_as_a_full_forward_pass_would():
    """Greedy decoding equals taking the argmax of a full forward pass over the whole sequence at every
    step, and a left-padded batch continues each prompt as it would alone (the padding is never read)."""
    lstm = _lstm()
    alone = []
    for prompt in PROMPTS:
        sequence = torch.tensor([prompt])
        for _ in range(10):  # the reference: no state carried, everything read again
            sequence = torch.cat([sequence, lstm(sequence).logits[:, -1].argmax(-1, keepdim=True)], 1)
        assert torch.equal(generate(lstm, torch.tensor([prompt]), 10, temperature=0), sequence)
        alone.append(sequence[0, len(prompt) :])
    idx, mask = left_pad(PROMPTS, pad_id=0)
    batched = generate(lstm, idx, 10, attention_mask=mask, temperature=0)[:, idx.size(1) :]
    assert all(torch.equal(row, expected) for row, expected in zip(batched, alone))
    assert len({tuple(row.tolist()) for row in batched}) == len(PROMPTS)  # the prompts lead to different text


def test_generate_text_runs_the_lstm(tokenizer):
    lstm = _lstm(tokenizer.vocab_size)
    texts = generate_text(lstm, tokenizer, ["It was the", "To be"], 6, temperature=0, stop_at_eos=False)
    assert texts == [
        generate_text(lstm, tokenizer, prompt, 6, temperature=0, stop_at_eos=False)
        for prompt in ("It was the", "To be")
    ]
    assert all(texts)
