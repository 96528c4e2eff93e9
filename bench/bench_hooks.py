"""What hook points cost: a forward pass with and without them, and einops in the decoding loop.

A forward pass without hooks must cost what it cost before hook points existed: the model checks for
hooks at each point, and where none is set takes its fused path (SDPA attention, fused LayerNorm).
Here the same batch (8 sequences of 128 tokens, gpt2-mini: 4 layers, width 256, 4 heads, vocabulary
8192, random weights, eval mode, no gradients) runs without hooks (the baseline) and with: the
residual stream cached (the logit lens and the probes; still the fused path), every hook point cached
(the explicit attention path and LayerNorm in steps), and one head zero-ablated through ``hook_z``.

The second workload is greedy decoding of 128 tokens after a 16-token prompt, batch 1, with the
attention's head split and merge as plain views (what the model runs) against the same written as
einops ``rearrange`` patterns (:data:`workbench.models.gpt.SPLIT_HEADS`, ``MERGE_HEADS``): a decoding
step is small enough on a CPU for einops' per-call overhead to show. Both must give the same tokens.
The split and merge are also timed alone, at a decoding step's shapes, where that overhead is not
lost in the noise of a shared machine.

    .venv/bin/python bench/bench_hooks.py [--rounds 7] [--csv out.csv]
"""

from __future__ import annotations

import argparse
from unittest import mock

import pandas as pd
import torch
from einops import rearrange
from harness import compare, machine

from workbench import GPT, GPTConfig
from workbench.models import gpt, residual_stream_names

PRESET = "gpt2-mini"
BATCH, TIME = 8, 128
PROMPT, NEW_TOKENS = 16, 64
ABLATED = "blocks.1.attn.hook_z"


def zero_head_0(z: torch.Tensor, _name: str) -> None:
    z[:, :, 0] = 0


@torch.no_grad()
def forward_workload(model: GPT, rounds: int) -> pd.DataFrame:
    idx = torch.randint(0, model.config.vocab_size, (BATCH, TIME), generator=torch.Generator().manual_seed(0))
    residual = residual_stream_names(model.config)
    runs = {
        "no hooks": lambda: model(idx).logits,
        "cache: residual stream": lambda: model.run_with_cache(idx, residual)[0],
        "cache: every hook point": lambda: model.run_with_cache(idx)[0],
        "one head zero-ablated": lambda: model.run_with_hooks(idx, {ABLATED: zero_head_0}),
    }
    plain = runs["no hooks"]()
    if not torch.equal(runs["cache: residual stream"](), plain):
        raise SystemExit("caching the residual stream changed the logits: it must take the plain path")

    def tokens(run):
        return lambda: run().shape[:2].numel()

    return compare(
        f"forward with hooks, batch {BATCH} x {TIME} tokens ({PRESET})",
        {name: tokens(run) for name, run in runs.items()},
        unit="tokens/s",
        baseline="no hooks",
        rounds=rounds,
    )


def einops_split(qkv: torch.Tensor, n_head: int):
    return rearrange(qkv, gpt.SPLIT_HEADS, three=3, head=n_head).unbind(0)


def einops_merge(y: torch.Tensor) -> torch.Tensor:
    return rearrange(y, gpt.MERGE_HEADS)


def head_reshape_workload(model: GPT, rounds: int) -> pd.DataFrame:
    """The split and merge alone, at one decoding step's shapes: einops' per-call overhead without the
    rest of a step around it (which, on a shared machine, hides it in noise)."""
    n_head, calls = model.config.n_head, 2000
    qkv = torch.randn(1, 1, 3 * model.config.d_model)
    heads = torch.randn(1, n_head, 1, model.config.head_dim)

    def timed(split, merge):
        def work():
            for _ in range(calls):
                split(qkv, n_head)
                merge(heads)
            return calls

        return work

    return compare(
        f"head split + merge, one decoding step of one layer ({PRESET})",
        {
            "head split/merge as plain views": timed(gpt.split_heads, gpt.merge_heads),
            "head split/merge as einops rearrange": timed(einops_split, einops_merge),
        },
        unit="calls/s",
        baseline="head split/merge as plain views",
        rounds=rounds,
    )


def decoding_workload(model: GPT, rounds: int) -> pd.DataFrame:
    prompt = torch.randint(0, model.config.vocab_size, (1, PROMPT), generator=torch.Generator().manual_seed(1))

    def plain():
        return model.generate(prompt, NEW_TOKENS, temperature=0)

    def with_einops():
        with mock.patch.object(gpt, "split_heads", einops_split), mock.patch.object(gpt, "merge_heads", einops_merge):
            return plain()

    if not torch.equal(plain(), with_einops()):
        raise SystemExit("the einops patterns produced other tokens than the plain views")
    return compare(
        f"greedy decoding, batch 1 ({PROMPT}-token prompt, {NEW_TOKENS} new tokens, {PRESET})",
        {
            "head split/merge as plain views": lambda: plain().size(1) - PROMPT,
            "head split/merge as einops rearrange": lambda: with_einops().size(1) - PROMPT,
        },
        unit="tokens/s",
        baseline="head split/merge as plain views",
        rounds=rounds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per contender (median reported)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset(PRESET)).eval()
    info = machine()
    print(f"{info['cpu']}, {info['threads']} threads, torch {info['torch']}; {PRESET}, {args.rounds} rounds")
    tables = []
    for workload in (forward_workload, head_reshape_workload, decoding_workload):
        table = workload(model, args.rounds)
        print(table["benchmark"].iloc[0])
        print(
            table[["contender", "median", "spread", "ratio", "ratio_low", "ratio_high"]].to_string(
                index=False,
                formatters={
                    "median": "{:,.0f}".format,
                    "spread": "{:,.0f}".format,
                    **{c: "{:.3f}x".format for c in ("ratio", "ratio_low", "ratio_high")},
                },
            )
        )
        tables.append(table)
    if args.csv:
        pd.concat(tables, ignore_index=True).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
