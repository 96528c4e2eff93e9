"""GPT-1's zero-shot heuristics and their readouts: each readout checked against scores whose answer
is known, one scoring pass per evaluation, and the paired statistics that judge them."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from workbench import GPT, GPTConfig
from workbench.data.tasks import load_task
from workbench.data.tokenizer import gpt2_tokenizer, train_bpe
from workbench.evaluation import heuristics as zs
from workbench.evaluation.heuristics import (
    HEURISTICS,
    Inputs,
    describe_heuristics,
    describe_readouts,
    evaluate,
    random_accuracy,
    score_outcomes,
    single_token_verbalizer,
    verbalizer_tokens,
)
from workbench.evaluation.statistics import Outcomes, auc, paired_difference, replicates, trend
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


def test_sentiment_readouts_follow_the_verbalizer_probabilities(tok):
    n = 40
    labels = np.array([e["label"] for e in load_task("sentiment", "test")[:n]])
    assert single_token_verbalizer(tok) == "positive/negative"  # one token each in GPT-2's vocabulary
    positive = FavouriteToken(tok.encode(" positive")[0], tok.vocab_size)
    table = evaluate(positive, tok, "sentiment", max_examples=n).set_index("readout")
    assert table.loc["paper", "accuracy"] == pytest.approx(labels.mean())  # always "positive"
    # equal log-odds everywhere: none exceeds the median, so the calibrated rule says "negative"
    assert table.loc["calibrated", "accuracy"] == pytest.approx(1 - labels.mean())
    assert table.loc["AUC", "accuracy"] == 0.5 and table.loc["AUC", "metric"] == "auc"
    assert (table["n"] == n).all() and (table["random"] == 0.5).all()
    assert (table["ci_low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["ci_high"]).all()


def _lookup(values: dict):
    return lambda request: values[request]


def test_acceptability_readouts_on_known_scores(tok):
    # the original line always scores higher in total, but lower per token than its twin half the time
    examples = [
        dict(text="a b c d", twin="a c b d", label=1),
        dict(text="x z y w", twin="x y z w", label=0),
    ]
    scores = {
        ("", " a b c d"): dict(logprob=-4.0, logprob_per_token=-1.0),
        ("", " a c b d"): dict(logprob=-6.0, logprob_per_token=-3.0),
        ("", " x z y w"): dict(logprob=-9.0, logprob_per_token=-2.5),
        ("", " x y z w"): dict(logprob=-5.0, logprob_per_token=-2.8),
    }
    unigram = np.log(np.full(tok.vocab_size, 1 / tok.vocab_size))
    result = zs._read_acceptability(examples, examples, _lookup(scores), Inputs(tok, (" a", " b"), unigram))
    assert set(result) == {"paper", "SLOR", "minimal pairs"}
    assert result["minimal pairs"].correct.tolist() == [1, 1]
    assert result["minimal pairs"].score.tolist() == [2.0, 4.0]  # original minus corrupted
    assert result["paper"].correct.tolist() == [1, 1]  # the dev threshold separates -1.0 from -2.5
    assert result["SLOR"].correct.tolist() == [1, 1]
    without = zs._read_acceptability(examples, examples, _lookup(scores), Inputs(tok, (" a", " b")))
    assert set(without) == {"paper", "minimal pairs"}


def test_pmi_removes_the_prior_of_the_choice(tok):
    example = dict(context="ctx", choices=["A", "B"], label=1)
    conditional = {"A": (-2.0, -1.0), "B": (-4.0, -2.0)}  # (sum, per token): the paper's rule picks A
    unconditional = {"A": -1.0, "B": -6.0}  # but B gains more from the context
    scores = {("ctx\n", c): dict(logprob=s, logprob_per_token=m) for c, (s, m) in conditional.items()}
    scores |= {("\n", c): dict(logprob=s, logprob_per_token=s) for c, s in unconditional.items()}
    result = zs._read_multiple_choice([example], None, _lookup(scores), Inputs(tok, (" a", " b")))
    assert result["paper"].correct.tolist() == [0] and result["PMI"].correct.tolist() == [1]
    assert result["PMI"].score.tolist() == [(-4.0 + 6.0) - (-2.0 + 1.0)]  # margin of the right choice


def test_substitution_partial_and_full_scoring(tok):
    example = dict(prefix="Then", choices=["Romeo", "Juliet"], suffix=" said so.", label=0)
    scores = {
        ("Then Romeo", " said so."): dict(logprob=-3.0, logprob_per_token=-1.0),
        ("Then Juliet", " said so."): dict(logprob=-1.5, logprob_per_token=-0.5),
        ("", " Then Romeo said so."): dict(logprob=-10.0, logprob_per_token=-2.0),
        ("", " Then Juliet said so."): dict(logprob=-12.0, logprob_per_token=-2.0),
    }
    result = zs._read_substitution([example], None, _lookup(scores), Inputs(tok, (" a", " b")))
    assert result["paper"].correct.tolist() == [0] and result["full scoring"].correct.tolist() == [1]


def test_every_readout_runs_on_a_real_model_in_one_scoring_pass(tok, monkeypatch):
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt2-micro", vocab_size=tok.vocab_size, n_ctx=256)).eval()
    calls = []
    real_score = zs.score

    def counting_score(model, tokenizer, requests, *args, **kwargs):
        calls.append(list(requests))
        return real_score(model, tokenizer, requests, *args, **kwargs)

    monkeypatch.setattr(zs, "score", counting_score)
    unigram = np.log(np.full(tok.vocab_size, 1 / tok.vocab_size))
    frame = score_outcomes(model, tok, max_examples=6, unigram=unigram)
    assert len(calls) == 1 and len(calls[0]) == len(set(calls[0]))  # one pass, no request twice
    readouts = {(h.name, r.name) for h in HEURISTICS.values() for r in h.readouts}
    assert set(zip(frame["heuristic"], frame["readout"])) == readouts
    assert (frame.groupby(["heuristic", "readout"]).size() == 6).all()
    table = evaluate(model, tok, max_examples=6, unigram=unigram)
    assert len(table) == len(readouts) and table["accuracy"].between(0, 1).all()
    assert table.set_index(["task", "readout"])["random"][("next_line", "PMI")] == 0.25
    assert "SLOR" not in set(evaluate(model, tok, "acceptability", max_examples=3)["readout"])


def test_random_levels_and_verbalizers(tok):
    assert random_accuracy("sentiment") == 0.5
    assert random_accuracy("name_substitution") == 0.5
    table = verbalizer_tokens(tok).set_index("word")
    assert table["single_token"][" positive"] and table["used"][" positive"]
    assert table["used"].sum() == 2


def test_a_multi_token_verbalizer_is_named_and_scored_as_a_sequence(tok):
    corpus_like = train_tokenizer_without_negative()
    assert len(corpus_like.encode(" negative")) > 1
    assert single_token_verbalizer(corpus_like) is None or single_token_verbalizer(corpus_like) != "positive/negative"
    model = FavouriteToken(corpus_like.encode(" good")[0], corpus_like.vocab_size)
    with pytest.warns(UserWarning, match="' negative' is .* scored as a multi-token continuation"):
        table = evaluate(model, corpus_like, "sentiment", max_examples=4, verbalizer="positive/negative")
    assert table["n"].tolist() == [4, 4, 4]


def train_tokenizer_without_negative():
    return train_bpe(["a good play, a bad play, a positive note"] * 50, 300)


def test_describe_heuristics_and_readouts(tok):
    table = describe_heuristics(tok, max_examples=3).set_index("heuristic")
    assert (table["n"] == 3).all()
    assert table.loc["sentiment", "example_context"].endswith(" very")
    assert table.loc["sentiment", "example_continuations"] == [" positive", " negative"]
    assert table.loc["multiple_choice", "requests_per_example"] == 8  # 4 choices, with and without context
    assert table.loc["acceptability", "requests_per_example"] == 2  # the line and its twin
    readouts = describe_readouts()
    assert (readouts.groupby("heuristic")["readout"].first() == "paper").all()
    assert set(readouts["metric"]) == {"accuracy", "auc"}


def test_long_choices_are_scored_with_a_rolling_window(tok):
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt2-micro", vocab_size=tok.vocab_size, n_ctx=16)).eval()
    # next_line choices are often longer than 15 GPT-2 tokens: nothing is dropped, nothing fails
    table = evaluate(model, tok, "multiple_choice", max_examples=5)
    assert (table["n"] == 5).all()


# --- statistics ---------------------------------------------------------------------------------


def test_auc_is_the_probability_that_a_positive_outranks_a_negative():
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 5, 60).astype(float), rng.integers(0, 2, 60)
    pairs = [(p, q) for p, q in itertools.product(scores[labels == 1], scores[labels == 0])]
    expected = np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs])
    assert auc(scores, labels) == pytest.approx(expected)
    assert np.isnan(auc([1.0, 2.0], [1, 1]))


def test_trend_and_paired_difference_are_paired_by_example():
    rng = np.random.default_rng(0)
    n = 800
    skill = rng.random(n)
    # the same examples get easier with each checkpoint: a real, paired rise
    series = [Outcomes("accuracy", (skill < p).astype(int), skill, np.ones(n)) for p in (0.5, 0.55, 0.6, 0.7)]
    result = trend(np.log10([1, 10, 100, 1000]), series)
    assert result.verdict == "rises" and result.change_low > 0 and result.slope_low > 0
    assert result.change == pytest.approx(series[-1].value() - series[0].value())
    flat = [Outcomes("accuracy", (rng.random(n) < 0.5).astype(int), skill, np.ones(n)) for _ in range(4)]
    assert trend(np.log10([1, 10, 100, 1000]), flat).verdict == "flat"
    difference, low, high, p_value = paired_difference(series[0], series[1])
    # paired: only the examples between the two thresholds differ, so the interval is narrow
    assert low > 0 and high - low < 0.04 and difference == pytest.approx(0.05, abs=0.02) and p_value < 0.001
    assert paired_difference(flat[0], flat[1])[3] > 0.01
    falling = trend(np.log10([1, 10, 100, 1000]), series[::-1])
    assert falling.verdict == "falls"


def test_seed_trend_holds_the_variance_between_runs():
    """One run per point is :func:`trend` exactly; runs that disagree widen the interval beyond what
    the same outcomes pooled per example (an example-only bootstrap) would give."""
    from workbench.evaluation import seed_trend

    rng = np.random.default_rng(1)
    n, x = 600, np.log10([1e4, 1e5, 1e6])
    skill = rng.random(n)
    single = [Outcomes("accuracy", (skill < p).astype(int), skill, np.ones(n)) for p in (0.5, 0.55, 0.6)]
    assert seed_trend(x, [[o] for o in single]) == trend(x, single)
    # two runs per point whose levels differ by several points: seed variance the examples do not show
    runs = [
        [Outcomes("accuracy", (skill < p + shift).astype(int), skill, np.ones(n)) for shift in (-0.04, 0.04)]
        for p in (0.5, 0.55, 0.6)
    ]
    pooled = [Outcomes("accuracy", np.mean([o.correct for o in r], axis=0), skill, np.ones(n)) for r in runs]
    by_seed, by_example = seed_trend(x, runs), trend(x, pooled)
    assert by_seed.change == pytest.approx(by_example.change) and by_seed.slope == pytest.approx(by_example.slope)
    assert by_seed.slope_high - by_seed.slope_low > 1.5 * (by_example.slope_high - by_example.slope_low)
    with pytest.raises(ValueError, match="every point of a trend needs at least one run"):
        seed_trend(x, [runs[0], [], runs[2]])
    with pytest.raises(ValueError, match="same examples"):
        seed_trend(x[:2], [runs[0], [Outcomes("accuracy", np.ones(5), np.ones(5), np.ones(5))]])


def test_scaling_law_fit_recovers_a_known_law_and_refuses_too_few_runs():
    from workbench.evaluation import fit_scaling_law
    from workbench.evaluation.scaling_law import scaling_law

    n = np.array([1.2e4, 1.2e4, 5e4, 5e4, 1e5, 2e5, 8e5])
    exact = scaling_law(n, 0.25, np.log(3e3), 4.2)
    fit = fit_scaling_law(n, exact + np.random.default_rng(0).normal(0, 1e-3, len(n)))
    assert fit.alpha[1] < 0.25 < fit.alpha[2] and fit.alpha[2] - fit.alpha[1] < 0.05
    assert fit.l_inf[0] == pytest.approx(4.2, abs=0.05) and fit.n_c[0] == pytest.approx(3e3, rel=0.3)
    assert (fit.runs, fit.sizes, fit.df) == (7, 5, 4)
    assert fit.predict(n) == pytest.approx(exact, abs=5e-3)
    table = fit.table()
    assert table["parameter"].tolist() == ["alpha", "N_c", "L_inf"] and (table["ci_low"] <= table["value"]).all()
    noisier = fit_scaling_law(n, exact + np.random.default_rng(0).normal(0, 3e-2, len(n)))
    assert noisier.alpha[2] - noisier.alpha[1] > fit.alpha[2] - fit.alpha[1]  # the interval widens with noise
    # losses whose best floor is below 0 (the CPU ladder's of 2026-12-07): L_inf stays at its bound 0,
    # without an interval, and the law is Kaplan's pure power law, with one more degree of freedom
    ladder = [12768, 12768, 50880, 50880, 100096, 200064, 786432]
    losses = [5.7699, 5.9074, 5.7167, 5.7028, 5.3879, 5.3973, 5.1968]
    pure = fit_scaling_law(ladder, losses)
    assert pure.l_inf[0] == 0 and np.isnan(pure.l_inf[1]) and pure.df == len(ladder) - 2
    slope = -np.polyfit(np.log(ladder), np.log(losses), 1)[0]  # the log-log line is near the pure law
    assert pure.alpha[1] < pure.alpha[0] < pure.alpha[2] and pure.alpha[0] == pytest.approx(slope, rel=0.1)
    with pytest.raises(ValueError, match="at least 4 runs of at least 3 sizes, got 4 runs of 2"):
        fit_scaling_law([1e4, 1e4, 1e5, 1e5], [5.0, 5.1, 4.8, 4.9])
    with pytest.raises(ValueError, match="N and the loss must be positive"):
        fit_scaling_law([0, 1e4, 1e5, 1e6], [5.0, 5.1, 4.8, 4.9])


def test_predicted_share_reads_the_answers_back_from_the_outcomes():
    labels = np.array([0, 1, 0, 1, 1, 0, 1, 0, 1, 0])
    always_one = Outcomes("accuracy", (labels == 1).astype(int), np.zeros(10), labels)
    assert always_one.predicted_share() == 1.0
    right = Outcomes("accuracy", np.ones(10, dtype=int), np.zeros(10), labels)
    assert right.predicted_share() == 0.5
    assert np.isnan(Outcomes("auc", np.ones(10), np.zeros(10), labels).predicted_share())
    assert np.isnan(Outcomes("accuracy", np.ones(4), np.zeros(4), np.array([0, 3, 1, 2])).predicted_share())
    assert np.isnan(Outcomes("accuracy", np.ones(4), np.zeros(4), np.ones(4)).predicted_share())  # one label


def test_trend_verdicts_are_decided_by_holm_over_the_family():
    """A rise whose own p-value is below 0.05 but not below it after Holm over ten readouts is flat."""
    from workbench.experiments import zero_shot as zs

    rng = np.random.default_rng(0)
    n = 1000
    labels = np.tile([0, 1], n // 2)
    rows = []
    for readout, lift in [("strong", 0.15), *[(f"weak{i}", 0.05) for i in range(9)]]:
        for step, p in ((1, 0.5), (10, 0.5 + lift / 2), (100, 0.5 + lift)):
            correct = rng.random(n) < p  # a fresh draw per checkpoint: weak rises are near the 5% line
            rows += [
                dict(
                    model="m",
                    step=step,
                    tokens=step,
                    heuristic="acceptability",
                    readout=readout,
                    metric="accuracy",
                    correct=int(correct[i]),
                    score=0.0,
                    label=labels[i],
                    example=i,
                )
                for i in range(n)
            ]
    table = zs.trends(pd.DataFrame(rows), "model", "step", "tokens").set_index("readout")
    assert table.loc["strong", "verdict"] == "rises"
    assert (table["p_holm"] >= table["p"]).all()
    assert ((table["p_holm"] < 0.05) == (table["verdict"] == "rises")).all()
    nominal_only = table[(table["p"] < 0.05) & (table["p_holm"] >= 0.05)]
    assert len(nominal_only) and (nominal_only["verdict"] == "flat").all()


def test_outcomes_reject_bad_input():
    with pytest.raises(ValueError, match="metric='f1': expected one of"):
        Outcomes("f1", np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="same positive number"):
        Outcomes("accuracy", np.ones(3), np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="same examples"):
        trend([0, 1], [Outcomes("accuracy", np.ones(k), np.ones(k), np.ones(k)) for k in (3, 4)])
    assert replicates(5, 3, seed=1).shape == (3, 5)
