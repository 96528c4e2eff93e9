"""Zero-shot scoring speed: batched multiple-choice scoring vs one (context, choice) pair per forward.

Workload: the first ``--examples`` test examples of ``next_line`` (4 choices each: the true next
line of a held-out speech or chapter and three lines of the same work), encoded with the corpus
BPE, scored by the ``gpt1-mini`` architecture (4 x 256, 8192 tokens, 128-token window) in float32
on the CPU. The weights are a seeded initialisation: the speed of a forward pass does not depend
on them, and the equality check below holds for any weights.

Contenders (alternating rounds, ``harness.compare``):

- ``batched``: ``score_token_requests`` as the heuristics call it: each context runs once,
  batched with others, and its key/value cache is shared by its 4 choices; choices of contexts of
  equal length run together.
- ``full sequences, batched``: the path the LSTM takes (every context + choice re-encoded), batched.
- ``one pair per forward``: the baseline, a plain loop with one forward pass per (context, choice)
  and nothing else (the strictest loop: no per-call bookkeeping at all).
- ``scorer called per pair``: the same loop written with the library, ``score_token_requests``
  called once per pair (what a user who does not batch gets).

Where the time goes: on this workload a forward pass is compute-bound, so the ceiling of the
batched path over the strict loop is the ratio of multiply-adds. The loop runs 4 x (context +
choice) tokens through the blocks and the 8192-way output layer; the batched path runs the
context once, the 4 choices, and the output layer only where a choice token is predicted. With
contexts about twice as long as a choice (next_line's), that is about 2.2x fewer multiply-adds;
more with longer contexts, less with longer choices.

Before timing, the scores of every contender are checked equal: per-token means within 1e-5
(absolute), sums within 1e-5 relative, and the same chosen answer for every example.
Target: batched >= 3x the loop.

    .venv/bin/python bench/bench_scoring.py [--examples 100] [--rounds 5] [--csv out.csv]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from harness import compare, machine
from torch import nn

from workbench import GPT, GPTConfig
from workbench.data.prepare import corpus_tokenizer
from workbench.data.tasks import load_task
from workbench.scoring import encode_requests, score_token_requests
from workbench.zeroshot import multiple_choice_requests


class FullSequencesOnly(nn.Module):
    """The same GPT seen through the plain ``model(idx).logits`` interface (the LSTM's path)."""

    def __init__(self, gpt: GPT) -> None:
        super().__init__()
        self.gpt, self.config = gpt, gpt.config

    def forward(self, idx):
        return self.gpt(idx)


@torch.inference_mode()
def one_pair_per_forward(model: GPT, requests) -> np.ndarray:
    """The baseline: for each (context, choice), one forward over both; sum the choice's log-probs."""
    n_ctx = model.config.n_ctx
    sums = []
    for context, continuation in requests:
        context = context[-(n_ctx - len(continuation)):]
        ids = torch.tensor([context + continuation[:-1]])
        logprobs = model(ids).logits[0, len(context) - 1:].log_softmax(-1)
        sums.append(float(logprobs.gather(-1, torch.tensor(continuation)[:, None]).sum()))
    return np.array(sums)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="next_line test examples (4 choices each)")
    parser.add_argument("--batch-size", type=int, default=32, help="continuations per forward pass (batched)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per contender (median reported)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['threads']} threads")

    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt1-mini", dropout=0.0)).eval()
    tokenizer = corpus_tokenizer(model.config.vocab_size)
    examples = load_task("next_line", "test")[: args.examples]
    requests = encode_requests(tokenizer, [r for e in examples for r in multiple_choice_requests(e)])
    requests = [(c, k) for c, k in requests if len(k) <= model.config.n_ctx - 1]  # the loop has no rolling window
    tokens = sum(len(k) for _, k in requests)
    n_tokens = np.array([len(k) for _, k in requests])
    print(f"{len(examples)} examples, {len(requests)} (context, choice) pairs, "
          f"{np.mean([len(c) for c, _ in requests]):.1f} context and {n_tokens.mean():.1f} choice tokens on average")

    batched = score_token_requests(model, requests, args.batch_size)["logprob"].to_numpy()
    full = score_token_requests(FullSequencesOnly(model), requests, args.batch_size)["logprob"].to_numpy()
    loop = one_pair_per_forward(model, requests)
    for name, values in (("batched", batched), ("full sequences, batched", full)):
        per_token = np.abs(values / n_tokens - loop / n_tokens).max()
        relative = (np.abs(values - loop) / np.maximum(1.0, np.abs(loop))).max()
        chosen_equal = (values.reshape(-1, 4).argmax(1) == loop.reshape(-1, 4).argmax(1)).all() \
            if len(values) % 4 == 0 else True
        print(f"{name} vs one pair per forward: max |per-token difference| {per_token:.2e}, "
              f"max relative difference of sums {relative:.2e}, same answers: {chosen_equal}")
        if per_token > 1e-5 or relative > 1e-5 or not chosen_equal:
            raise SystemExit(f"{name}: scores differ from the per-pair loop beyond 1e-5")

    results = compare(
        f"multiple choice, {len(requests)} pairs of next_line",
        {
            "batched": lambda: (score_token_requests(model, requests, args.batch_size), len(requests))[1],
            "full sequences, batched": lambda: (score_token_requests(FullSequencesOnly(model), requests,
                                                                     args.batch_size), len(requests))[1],
            "one pair per forward": lambda: (one_pair_per_forward(model, requests), len(requests))[1],
            "scorer called per pair": lambda: ([score_token_requests(model, [r], 1) for r in requests],
                                               len(requests))[1],
        },
        unit="pairs/s", baseline="one pair per forward", rounds=args.rounds,
    ).assign(examples=len(examples), choice_tokens=tokens, batch_size=args.batch_size)
    print()
    print(results[["contender", "median", "spread", "ratio"]].to_string(
        index=False, float_format=lambda x: f"{x:,.2f}"))
    ratio = results.set_index("contender")["ratio"]["batched"]
    print(f"\nbatched / one pair per forward: {ratio:.2f}x (target >= 3x)")
    if args.csv:
        results.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
