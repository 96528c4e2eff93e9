"""Generation speed: this model's KV-cache decoding vs Hugging Face ``GPT2LMHeadModel.generate``.

Same weights (a Hugging Face model saved with ``save_pretrained`` and loaded with
``GPT.from_pretrained``), same config (gpt2-mini: 4 layers, width 256, 4 heads, FFN 1024,
vocabulary 8192; the context is raised from 128 to 256 so that a prompt plus 128 new tokens fits
without cropping), greedy decoding, one process. Two workloads: a batch of 8 prompts of 8-24
tokens, left-padded (:func:`workbench.models.left_pad`, Hugging Face's ``attention_mask``), and one
16-token prompt. The contenders run in turn, round after round, the first round is discarded
(``harness.compare``), and the median tokens/s of each is reported. A check first requires every
contender to produce the same tokens. Targets: the cache >= 1.5x Hugging Face's ``generate`` with
its cache on the padded batch, and >= 2x this model without its cache.

Where the time went (``torch.profiler`` on the padded batch, issue 16): the LM head at each step's
last positions, ``h @ W^T`` with 8 rows, took a quarter of a step (820 us against 400 us with the
weight in cache: MKL packs the whole 8 MiB [vocab, d] weight at every call), and concatenating the
key/value cache a fifth. Decoding now computes ``(W @ h^T)^T``, which streams the weight once, and
writes into a preallocated :class:`workbench.models.kv_cache.KVCache`.

    .venv/bin/python bench/bench_generate.py [--rounds 7] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import tempfile

import pandas as pd
import torch
import transformers
from harness import compare, machine

from workbench import GPT, GPTConfig
from workbench.models import left_pad

PRESET = "gpt2-mini"
NEW_TOKENS = 128
BATCH = 8
PROMPT_LENGTHS = (8, 24)  # the padded batch's prompts, drawn uniformly in this range
SINGLE_PROMPT = 16


def build_pair(directory: str) -> tuple[transformers.GPT2LMHeadModel, GPT]:
    """A random Hugging Face GPT-2 of the preset's shape, and the same weights in this model."""
    preset = GPTConfig.from_preset(PRESET)
    config = transformers.GPT2Config(
        n_layer=preset.n_layer,
        n_embd=preset.d_model,
        n_head=preset.n_head,
        n_inner=preset.d_ff,
        vocab_size=preset.vocab_size,
        n_positions=2 * preset.n_ctx,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).eval()
    hf.save_pretrained(directory)
    return hf, GPT.from_pretrained(directory).eval()


def prompts(vocab_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each workload's token ids and attention mask (random ids: speed does not depend on them)."""
    generator = torch.Generator().manual_seed(0)
    low, high = PROMPT_LENGTHS
    lengths = torch.randint(low, high + 1, (BATCH,), generator=generator).tolist()
    batch = left_pad([torch.randint(0, vocab_size, (n,), generator=generator).tolist() for n in lengths], pad_id=0)
    single = torch.randint(0, vocab_size, (1, SINGLE_PROMPT), generator=generator)
    return {
        f"generation, batch of {BATCH} left-padded prompts ({low}-{high} tokens)": batch,
        f"generation, batch 1 ({SINGLE_PROMPT}-token prompt)": (single, torch.ones_like(single)),
    }


def measure(workload: str, hf, ours: GPT, prompt: torch.Tensor, mask: torch.Tensor, rounds: int) -> pd.DataFrame:
    generators = {
        "workbench (KV cache)": lambda: ours.generate(prompt, NEW_TOKENS, attention_mask=mask, temperature=0),
        "hugging face (KV cache)": lambda: hf.generate(
            prompt,
            attention_mask=mask,
            max_new_tokens=NEW_TOKENS,
            min_new_tokens=NEW_TOKENS,
            do_sample=False,
            pad_token_id=0,
        ),
        "workbench (no cache)": lambda: ours.generate(
            prompt, NEW_TOKENS, attention_mask=mask, temperature=0, use_cache=False
        ),
    }
    reference = generators["hugging face (KV cache)"]()
    for name, generate in generators.items():
        if not torch.equal(generate(), reference):
            raise SystemExit(f"{workload}: {name} produced other tokens than Hugging Face: not a fair comparison")

    def tokens(generate):
        return lambda: (generate().size(1) - prompt.size(1)) * prompt.size(0)

    return compare(
        workload,
        {name: tokens(g) for name, g in generators.items()},
        unit="tokens/s",
        baseline="hugging face (KV cache)",
        rounds=rounds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per contender (median reported)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()

    transformers.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as directory:
        hf, ours = build_pair(directory)
    info = machine()
    print(
        f"{info['cpu']}, {info['threads']} threads, torch {info['torch']}, transformers "
        f"{transformers.__version__}; {PRESET} (context 256), {NEW_TOKENS} new tokens, greedy, {args.rounds} rounds"
    )
    tables = []
    for workload, (prompt, mask) in prompts(ours.config.vocab_size).items():
        table = measure(workload, hf, ours, prompt, mask, args.rounds)
        print(workload)
        print(
            table[["contender", "median", "spread", "ratio"]].to_string(
                index=False,
                formatters={"median": "{:,.0f}".format, "spread": "{:,.0f}".format, "ratio": "{:.2f}x".format},
            )
        )
        speed = table.set_index("contender")["median"]
        print(
            f"KV cache vs Hugging Face: {speed['workbench (KV cache)'] / speed['hugging face (KV cache)']:.2f}x "
            f"(target >= 1.5x on the padded batch); vs no cache: "
            f"{speed['workbench (KV cache)'] / speed['workbench (no cache)']:.2f}x (target >= 2x)"
        )
        tables.append(table)
    if args.csv:
        pd.concat(tables, ignore_index=True).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
