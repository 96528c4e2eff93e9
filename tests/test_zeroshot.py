import warnings

import numpy as np
import pytest
import torch
from torch import nn

from workbench import GPT, GPTConfig
from workbench.data.tasks import load_task
from workbench.data.tokenizer import gpt2_tokenizer
from workbench.evaluation.heuristics import (
    HEURISTICS,
    describe_heuristics,
    evaluate,
    evaluate_all,
    random_accuracy,
    verbalizer_tokens,
)
from workbench.models.gpt import GPTOutput

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def tok():
    return gpt2_tokenizer()


class FavouriteToken(nn.Module):
    """A 'language model' that always puts its mass on one token: its zero-shot answers are known."""

    def __init__(self, favourite: int, vocab: int):
        super().__init__()
        self.favourite, self.vocab = favourite, vocab
        self.config = GPTConfig(n_layer=1, d_model=8, n_head=1, d_ff=8, vocab_size=vocab, n_ctx=256)
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx):
        logits = torch.zeros(*idx.shape, self.vocab)
        logits[..., self.favourite] = 10.0
        return GPTOutput(logits + self.dummy)


def test_sentiment_heuristic_follows_the_verbalizer_probabilities(tok):
    n = 40
    labels = np.array([e["label"] for e in load_task("sentiment", "test")[:n]])
    positive = FavouriteToken(tok.encode(" positive")[0], tok.vocab_size)
    negative = FavouriteToken(tok.encode(" negative")[0], tok.vocab_size)
    assert evaluate(positive, tok, "sentiment", max_examples=n)["accuracy"] == pytest.approx(labels.mean())
    assert evaluate(negative, tok, "sentiment", max_examples=n)["accuracy"] == pytest.approx(1 - labels.mean())


def test_every_heuristic_runs_on_a_real_model(tok):
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt2-micro", vocab_size=tok.vocab_size, n_ctx=256)).eval()
    table = evaluate_all(model, tok, max_examples=6)
    assert set(table["task"]) == {h.task for h in HEURISTICS.values()}
    assert len(table) == len(HEURISTICS) + 2  # three sentiment verbalizer pairs
    assert table["accuracy"].between(0, 1).all() and (table["n"] == 6).all()
    assert table.set_index("task")["random"]["next_line"] == 0.25


def test_random_levels_and_verbalizers(tok):
    assert random_accuracy("sentiment") == 0.5
    assert random_accuracy("name_substitution") == 0.5
    table = verbalizer_tokens(tok)
    assert table.set_index("word")["single_token"][" positive"]
    with pytest.raises(ValueError, match="unknown verbalizer 'yes/no'"):
        evaluate(FavouriteToken(0, tok.vocab_size), tok, "sentiment", max_examples=2, verbalizer="yes/no")
    with pytest.raises(ValueError, match="unknown heuristic 'winograd'"):
        evaluate(FavouriteToken(0, tok.vocab_size), tok, "winograd")


def test_a_multi_token_verbalizer_is_named_and_scored_as_a_sequence(tok, monkeypatch):
    import workbench.evaluation.heuristics as zeroshot

    word = " antidisestablishmentarianism"
    ids = tok.encode(word)
    assert len(ids) > 1
    monkeypatch.setitem(zeroshot.VERBALIZERS, "long/negative", (word, " negative"))
    table = verbalizer_tokens(tok).set_index("word")
    assert not table["single_token"][word] and table["tokens"][word] == ids
    # a model that always predicts the word's first token: the sum over the word's tokens decides
    first = FavouriteToken(ids[0], tok.vocab_size)
    with pytest.warns(UserWarning, match=f"'{word}' is {len(ids)} tokens .* scored as a multi-token continuation"):
        result = evaluate(first, tok, "sentiment", max_examples=6, verbalizer="long/negative")
    assert result["heuristic"] == "sentiment (long/negative)" and 0 <= result["accuracy"] <= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the paper's pair is one token each in GPT-2's vocabulary: no warning
        evaluate(first, tok, "sentiment", max_examples=2)


def test_describe_heuristics_shows_the_requests():
    table = describe_heuristics(max_examples=3)
    assert len(table) == len(HEURISTICS) + 2 and (table["n"] == 3).all()
    row = table.set_index("heuristic").loc["sentiment (positive/negative)"]
    assert row["example_context"].endswith(" very") and row["example_continuations"] == [" positive", " negative"]
    mc = table.set_index("heuristic").loc["multiple_choice"]
    assert mc["requests_per_example"] == 4 and mc["example_context"].endswith("\n")


def test_long_choices_are_scored_with_a_rolling_window(tok):
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt2-micro", vocab_size=tok.vocab_size, n_ctx=16)).eval()
    # next_line choices are often longer than 15 GPT-2 tokens: nothing is dropped, nothing fails
    result = evaluate(model, tok, "multiple_choice", max_examples=5)
    assert result["n"] == 5
