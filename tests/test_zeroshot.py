import numpy as np
import pytest
import torch
from torch import nn

from workbench import GPT, GPTConfig
from workbench.data.tasks import load_task
from workbench.model import GPTOutput
from workbench.tokenizer import gpt2_tokenizer
from workbench.zeroshot import HEURISTICS, evaluate, evaluate_all, random_accuracy, verbalizer_tokens


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
