"""Export to the Hugging Face layout: transformers loads it with our logits, and reading it back is the identity."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest
import torch
from torch import nn

from workbench.cli import main
from workbench.data.tokenizer import train_bpe
from workbench.models import GPT, GPTConfig, LSTMConfig, LSTMLanguageModel
from workbench.models.huggingface import read_pretrained, write_pretrained
from workbench.training import checkpoint as ckpt

transformers = pytest.importorskip("transformers")

SENTENCE = "Permission to use, copy, modify, and distribute this software is granted; <|endoftext|> stays text."
CONFIGS = {
    # GPT-2's block, with GPT-2's tanh GELU, and with an n_inner and the exact GELU only its layout holds
    "gpt2": GPTConfig(n_layer=2, d_model=48, n_head=3, d_ff=192, vocab_size=300, n_ctx=48, norm="pre"),
    "gpt2-n_inner-erf": GPTConfig(
        n_layer=1, d_model=32, n_head=2, d_ff=80, vocab_size=300, n_ctx=48, norm="pre", activation="gelu"
    ),
    "openai-gpt": GPTConfig(n_layer=2, d_model=48, n_head=3, d_ff=192, vocab_size=300, n_ctx=48, norm="post"),
}


@pytest.fixture(scope="module")
def tokenizer():
    """A byte-level BPE of the workbench, trained on real text (Python's LICENSE)."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_text()
    return train_bpe(text.splitlines(), 300)


def random_gpt(config: GPTConfig, seed: int = 0) -> GPT:
    """Weights far from the default init (non-zero biases, LayerNorm gains away from 1), so that a wrong
    transpose or a dropped bias cannot hide behind near-zero values."""
    torch.manual_seed(seed)
    model = GPT(config.replace(dropout=0.0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            gain = name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
            p.copy_(1 + 0.2 * torch.randn_like(p)) if gain else p.normal_(0.0, 0.15)
    return model.eval()


@pytest.mark.parametrize("name", list(CONFIGS))
def test_transformers_loads_the_export_with_our_logits_and_reading_it_back_is_exact(name, tokenizer, tmp_path):
    model = random_gpt(CONFIGS[name])
    out = model.save_pretrained(tmp_path / "export", tokenizer)
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    architecture = json.loads((out / "config.json").read_text())["architectures"][0]
    assert architecture == ("OpenAIGPTLMHeadModel" if name == "openai-gpt" else "GPT2LMHeadModel")
    hf, info = getattr(transformers, architecture).from_pretrained(out, output_loading_info=True)
    assert not any(info.get(kind) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    ids = torch.tensor([tokenizer.encode(SENTENCE)[: model.config.n_ctx]])
    with torch.no_grad():
        difference = (model(ids).logits - hf.eval()(ids).logits).abs().max().item()
    assert difference < 1e-5, difference
    config, state, _ = read_pretrained(out)
    assert config == model.config
    ours = model.state_dict()
    assert set(state) == set(ours) - {"lm_head.weight"}  # the tied head is wte.weight, stored once
    assert all(torch.equal(state[key], ours[key]) for key in state)
    loaded = GPT.from_pretrained(out).state_dict()
    assert all(torch.equal(loaded[key], ours[key]) for key in ours)


def test_the_exported_tokenizer_encodes_and_decodes_as_ours(tokenizer, tmp_path):
    out = random_gpt(CONFIGS["gpt2"]).save_pretrained(tmp_path / "export", tokenizer)
    ids = tokenizer.encode(SENTENCE)
    for loader in (transformers.AutoTokenizer, transformers.PreTrainedTokenizerFast):
        hf = loader.from_pretrained(out)
        assert hf(SENTENCE)["input_ids"] == ids
        assert hf.decode(ids) == tokenizer.decode(ids) == SENTENCE
        assert (hf.eos_token_id, hf.pad_token_id, hf.model_max_length) == (tokenizer.eos_id, tokenizer.pad_id, 48)
    assert tokenizer.eos_id not in ids  # the special token's spelling in the sentence stayed text on both sides


def _untied(model: GPT) -> GPT:
    model.lm_head.weight = nn.Parameter(model.wte.weight.detach().clone())
    return model


def _not_finite(model: GPT) -> GPT:
    with torch.no_grad():
        model.blocks[0].mlp.fc.bias[3] = float("nan")
    return model


REFUSED = {
    "lstm": (
        lambda: LSTMLanguageModel(LSTMConfig(vocab_size=300, d_model=16, hidden=16, n_layer=1)),
        "LSTMLanguageModel cannot be exported",
    ),
    "post-ln-n_inner": (lambda: GPT(CONFIGS["openai-gpt"].replace(d_ff=100)), "d_ff=100 cannot be exported: a post-LN"),
    "post-ln-erf": (
        lambda: GPT(CONFIGS["openai-gpt"].replace(activation="gelu")),
        "activation='gelu' cannot be exported",
    ),
    "untied-head": (lambda: _untied(GPT(CONFIGS["gpt2"])), "an untied head cannot be exported"),
    "not-finite": (lambda: _not_finite(GPT(CONFIGS["gpt2"])), r"blocks.0.mlp.fc.bias holds 1 NaN"),
    "small-vocabulary": (
        lambda: GPT(CONFIGS["gpt2"].replace(vocab_size=299)),
        "the tokenizer has 300 ids but the model's vocabulary only 299",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_the_layout_cannot_hold_is_refused_and_nothing_is_written(case, tokenizer, tmp_path):
    build, message = REFUSED[case]
    with pytest.raises(ValueError, match=message):
        write_pretrained(build(), tokenizer, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


def test_an_export_replaces_an_earlier_one_and_nothing_else(tokenizer, tmp_path):
    out = tmp_path / "export"
    write_pretrained(random_gpt(CONFIGS["gpt2"], seed=1), tokenizer, out)
    second = random_gpt(CONFIGS["openai-gpt"], seed=2)
    write_pretrained(second, tokenizer, out)
    assert read_pretrained(out).config == second.config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary left beside it
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"export holds files an export does not write \(notes.txt\)"):
        write_pretrained(second, tokenizer, out)
    assert (out / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="notes.txt is a file; expected a directory"):
        write_pretrained(second, tokenizer, out / "notes.txt")


def test_export_command_writes_a_run_or_checkpoint_that_transformers_loads(tokenized_runs, tmp_path, capsys):
    run = tokenized_runs["gpt"]
    checkpoint = ckpt.latest_checkpoint(run)
    for source, out in ((run, tmp_path / "from-run"), (checkpoint, tmp_path / "from-checkpoint")):
        assert main(["export", str(source), str(out)]) == 0
        assert f"exported {checkpoint} to {out}: transformers.GPT2LMHeadModel" in capsys.readouterr().out
    ours, tokenizer = ckpt.load_model(checkpoint), ckpt.checkpoint_tokenizer(checkpoint)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "from-run").eval()
    ids = torch.tensor([tokenizer.encode(SENTENCE)])
    with torch.no_grad():
        assert (ours(ids).logits - hf(ids).logits).abs().max().item() < 1e-5
    assert (
        transformers.AutoTokenizer.from_pretrained(tmp_path / "from-checkpoint")(SENTENCE)["input_ids"]
        == ids[0].tolist()
    )


@pytest.mark.parametrize(
    "source, message",
    [
        ("nowhere", "RUN_OR_CHECKPOINT {tmp}/nowhere does not exist; expected a pretraining run directory"),
        ("notes", "RUN_OR_CHECKPOINT {tmp}/notes is neither a run directory nor a checkpoint"),
        ("lstm", "a LSTMLanguageModel cannot be exported: the Hugging Face gpt2 and openai-gpt layouts hold"),
        ("untokenized", "records no tokenizer"),
    ],
)
def test_export_command_names_what_it_cannot_export(source, message, tokenized_runs, license_tokens, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    if source == "lstm":
        source = tokenized_runs["lstm"]
    elif source == "untokenized":  # a run on raw token ids, whose vocabulary has no tokenizer files
        options = ["--preset", "gpt2-micro", "--n-checkpoints", "1", "--train.steps", "1", "--train.batch-size", "2"]
        options += ["--train.device", "cpu", "--train.eval-every", "0", "--train.progress", "false"]
        source = tmp_path / "untokenized"
        assert main(["pretrain", "--train-tokens", str(license_tokens), "--out", str(source), *options]) == 0
    else:
        source = tmp_path / source
    assert main(["export", str(source), str(tmp_path / "out")]) == 1
    assert message.format(tmp=tmp_path) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
