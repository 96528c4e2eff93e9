import pytest
import torch
from torch import nn

from workbench import GPT, GPTConfig
from workbench.data.tokenizer import gpt2_tokenizer
from workbench.evaluation.scoring import encode_requests, score, score_token_requests, split_boundary


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig.from_preset("gpt2-micro", dropout=0.0, n_ctx=16)).eval()


class FullSequenceOnly(nn.Module):
    """The same network seen through the plain ``model(idx).logits`` interface (like the LSTM)."""

    def __init__(self, gpt):
        super().__init__()
        self.gpt, self.config = gpt, gpt.config

    def forward(self, idx):
        return self.gpt(idx)


def _hand_logprob(model, context, continuation):
    """One unbatched forward over context + continuation; sum log p(token | prefix) by hand."""
    ids = torch.tensor([context + continuation])
    logp = model(ids).logits[0].log_softmax(-1)
    return sum(logp[len(context) - 1 + t, tok].item() for t, tok in enumerate(continuation))


REQUESTS = [([5, 6, 7], [8, 9]), ([5, 6, 7], [10]), ([5, 6, 7], [11, 12, 13]), ([1], [2, 3]), ([4, 4, 4, 4, 4], [9])]


def test_scores_match_a_hand_computed_log_likelihood(model):
    frame = score_token_requests(model, REQUESTS, batch_size=2)
    for (context, continuation), got in zip(REQUESTS, frame["logprob"]):
        assert got == pytest.approx(_hand_logprob(model, context, continuation), abs=1e-5)
    assert frame["n_tokens"].tolist() == [2, 1, 3, 2, 1]
    assert frame["logprob_per_token"].tolist() == pytest.approx((frame["logprob"] / frame["n_tokens"]).tolist())


def test_shared_prefix_and_full_sequence_paths_agree(model):
    fast = score_token_requests(model, REQUESTS, batch_size=3)
    slow = score_token_requests(FullSequenceOnly(model), REQUESTS, batch_size=1)
    assert (fast["logprob"] - slow["logprob"]).abs().max() <= 1e-5
    assert fast["greedy"].tolist() == slow["greedy"].tolist()


def test_greedy_flag(model):
    context = [3, 1, 4]
    ids = torch.tensor([context])
    continuation = []
    for _ in range(3):
        nxt = int(model(ids).logits[0, -1].argmax())
        continuation.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
    other = [(continuation[0] + 1) % 512]
    frame = score_token_requests(model, [(context, continuation), (context, other)])
    assert frame["greedy"].tolist() == [True, False]


def test_long_context_is_cut_from_the_left(model):
    context = list(range(1, 30))  # longer than n_ctx=16
    frame = score_token_requests(model, [(context, [7, 8, 9])])
    assert frame["logprob"][0] == pytest.approx(_hand_logprob(model, context[-13:], [7, 8, 9]), abs=1e-5)


@pytest.mark.data
def test_bad_requests_are_named(model):
    with pytest.raises(ValueError, match="request 0: continuation of 16 tokens does not fit the window n_ctx=16"):
        score_token_requests(model, [([1], list(range(16)))])
    with pytest.raises(ValueError, match="no requests"):
        score_token_requests(model, [])
    tok = gpt2_tokenizer()
    with pytest.raises(ValueError, match="request 1: empty continuation ' '"):
        encode_requests(tok, [("a", " b"), ("a", " ")])


@pytest.mark.data
def test_text_boundary_gives_the_space_to_the_continuation():
    assert split_boundary("It was very ", "positive") == ("It was very", " positive")
    tok = gpt2_tokenizer()
    ((context, continuation),) = encode_requests(tok, [("It was very ", "positive")])
    assert continuation == tok.encode(" positive")
    assert context == tok.encode("It was very")
    ((context, _),) = encode_requests(tok, [("", " Hello")])
    assert context == [tok.eos_id]


@pytest.mark.data
def test_text_scores_report_per_char_means():
    tok = gpt2_tokenizer()
    torch.manual_seed(0)
    gpt = GPT(GPTConfig.from_preset("gpt2-micro", vocab_size=tok.vocab_size, n_ctx=32)).eval()
    frame = score(gpt, tok, [("The cat sat on the", " mat"), ("The cat sat on the", " table")])
    assert frame["n_chars"].tolist() == [4, 6]
    assert frame["logprob_per_char"].tolist() == pytest.approx((frame["logprob"] / frame["n_chars"]).tolist())
    assert list(frame.columns[:2]) == ["context", "continuation"]


# --- batching, windows and bad input --------------------------------------------------------------

MIXED = [
    ([5, 6, 7], [8, 9]),
    ([1, 2], [3, 4, 5, 6]),
    ([9] * 11, [1, 2]),
    ([4, 3, 2, 1], [7]),
    ([4, 3, 2, 1], [8, 9]),
    ([2] * 12, [5, 5, 5, 5]),
    ([3], [1]),
    ([1, 2], [3]),
]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 64])
@pytest.mark.parametrize("masked", [True, False])
def test_batched_paths_equal_one_pass_per_request(model, monkeypatch, batch_size, masked):
    """Whatever the batching (contexts of mixed lengths in one masked pass, or one pass per length
    for a model without attention_mask), every score equals its own unbatched forward pass."""
    import workbench.evaluation.scoring as scoring

    monkeypatch.setattr(scoring, "_accepts_attention_mask", lambda m: masked)
    frame = score_token_requests(model, MIXED, batch_size=batch_size)
    hand = [_hand_logprob(model, c, k) for c, k in MIXED]
    assert frame["logprob"].tolist() == pytest.approx(hand, abs=1e-5)
    singles = [score_token_requests(model, [r], batch_size=1)["logprob"][0] for r in MIXED]
    assert frame["logprob"].tolist() == pytest.approx(singles, abs=1e-5)
    assert (frame["windows"] == 1).all()


def test_a_context_filling_the_window_is_cut_per_request(model):
    context = list(range(1, 17))  # exactly n_ctx = 16 tokens: no room left for a continuation
    requests = [(context, [7]), (context, [7, 8, 9, 10, 11]), (context[:13], [1, 2, 3])]
    frame = score_token_requests(model, requests, batch_size=8)
    expected = [
        _hand_logprob(model, context[-15:], [7]),
        _hand_logprob(model, context[-11:], [7, 8, 9, 10, 11]),
        _hand_logprob(model, context[:13], [1, 2, 3]),
    ]  # 13 + 3 = 16 fits: not cut
    assert frame["logprob"].tolist() == pytest.approx(expected, abs=1e-5)
    # each request is cut on its own: the same score alone as next to a longer continuation
    alone = score_token_requests(model, [requests[0]])["logprob"][0]
    assert alone == pytest.approx(frame["logprob"][0], abs=1e-6)


def test_long_continuations_error_or_roll(model):
    context, continuation = [1, 2, 3], list(range(20, 40))  # 20 tokens > n_ctx - 1 = 15
    with pytest.raises(ValueError, match="request 0: continuation of 20 tokens does not fit the window n_ctx=16"):
        score_token_requests(model, [(context, continuation)])
    frame = score_token_requests(model, [(context, continuation), (context, [7])], rolling=True)
    # pieces of n_ctx // 2 = 8 tokens, each after everything before it, cut to fill the window
    full = context + continuation
    expected = sum(
        _hand_logprob(model, full[: 3 + start][-(16 - len(piece)) :], piece)
        for start, piece in ((0, continuation[:8]), (8, continuation[8:16]), (16, continuation[16:]))
    )
    assert frame["logprob"][0] == pytest.approx(expected, abs=1e-4)
    assert frame["windows"].tolist() == [3, 1] and frame["n_tokens"].tolist() == [20, 1]
    slow = score_token_requests(FullSequenceOnly(model), [(context, continuation)], rolling=True)
    assert slow["logprob"][0] == pytest.approx(expected, abs=1e-4)


@pytest.mark.data
def test_token_level_bad_input(model):
    with pytest.raises(ValueError, match="request 1: continuation has no tokens"):
        score_token_requests(model, [([1], [2]), ([1], [])])
    with pytest.raises(ValueError, match="request 0: context has no tokens"):
        score_token_requests(model, [([], [2])])
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        score_token_requests(model, [([1], [2])], batch_size=0)
    tok = gpt2_tokenizer()
    with pytest.raises(ValueError, match="request 0: empty continuation ''"):
        score(model, tok, [("context", "")])


def test_single_token_continuations_match_the_context_pass(model):
    requests = [([3, 1, 4], [t]) for t in range(20)]
    frame = score_token_requests(model, requests)
    logp = model(torch.tensor([[3, 1, 4]])).logits[0, -1].log_softmax(-1)
    assert frame["logprob"].tolist() == pytest.approx(logp[:20].tolist(), abs=1e-5)
