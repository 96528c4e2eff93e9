"""The Trainer: optimizer groups, schedules, batching, resume, interruption, divergence, bad input, metrics sinks."""

from __future__ import annotations

import collections
import math
import signal
import sys
import sysconfig
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.core.device import cpu_supports_bf16, resolve_device, resolve_precision
from workbench.training import checkpoint as ckpt
from workbench.training.config import TrainConfig, plan_batches
from workbench.training.language_model import TokenEvaluator, TokenSampler, train_language_model
from workbench.training.metrics import TrainingDiverged
from workbench.training.schedules import Schedule
from workbench.training.sinks import MissingExtra, TensorBoardSink
from workbench.training.trainer import Trainer, build_optimizer, flops_per_token, lm_loss, param_groups
from workbench.ui.plots import plot_schedule


def text_tokens() -> np.ndarray:
    """Python's own LICENSE, one token per byte: real English text for a byte-level model."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_bytes()
    return np.frombuffer(text, dtype=np.uint8).astype(np.uint16)


TOKENS = text_tokens()
TRAIN, VAL = TOKENS[: len(TOKENS) * 9 // 10], TOKENS[len(TOKENS) * 9 // 10 :]


def micro_gpt(seed: int = 0, **changes) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.from_preset("gpt2-micro", n_ctx=32, **changes))


def quick(**changes) -> TrainConfig:
    defaults = dict(steps=6, batch_size=4, lr=3e-3, log_every=1, eval_every=0, checkpoint_every=0, progress=False)
    return TrainConfig(**(defaults | changes))


def trainer(model, config, run_dir=None, **kwargs) -> Trainer:
    return Trainer(model, lambda plan: TokenSampler.from_plan(TRAIN, plan), config, run_dir=run_dir, **kwargs)


# ------------------------------------------------------------------------- optimizer groups


def test_weight_decay_on_weight_matrices_only():
    model = micro_gpt()
    decay, rest = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    assert "wte.weight" in decay["names"]  # the tied embedding / LM head: decayed, listed once
    assert "lm_head.weight" not in decay["names"] + rest["names"]
    assert "wpe.weight" in rest["names"]
    assert {"blocks.0.attn.qkv.weight", "blocks.1.mlp.fc.weight"} <= set(decay["names"])
    assert all(n.endswith("bias") or ".ln_" in n or n.startswith("ln_f") or n == "wpe.weight" for n in rest["names"])
    assert all(p.dim() >= 2 for p in decay["params"])
    assert sum(p.numel() for g in (decay, rest) for p in g["params"]) == model.num_parameters()


def test_optimizer_is_fused_adamw():
    optimizer = build_optimizer(micro_gpt(), quick(weight_decay=0.02, beta2=0.95))
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["fused"]  # CPU has a fused AdamW kernel since torch 2.4
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.02, 0.0]
    assert optimizer.defaults["betas"] == (0.9, 0.95)


def test_flops_per_token_is_6n_plus_attention():
    model = micro_gpt()
    c = model.config
    n = model.num_parameters() - c.n_ctx * c.d_model  # position embeddings do no matmuls
    assert flops_per_token(model, 32) == 6 * n + 12 * c.n_layer * 32 * c.d_model


# -------------------------------------------------------------------------------- schedules


def test_gpt1_pretrain_schedule_warms_up_then_anneals_to_zero():
    s = Schedule.create("gpt1-pretrain", steps=1000, warmup_steps=100)
    assert s(0) == pytest.approx(0.01) and s(49) == pytest.approx(0.5) and s(99) == 1.0
    assert s(100) == 1.0
    assert s(550) == pytest.approx(0.5)  # half way through the cosine
    assert 0 < s(999) < 1e-4
    values = [s(i) for i in range(100, 1000)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert Schedule.create("gpt1-pretrain", 100_000).warmup_steps == 2000  # the paper's
    assert Schedule.create("gpt1-pretrain", 500).warmup_steps == 50  # capped for short runs


def test_gpt1_finetune_schedule_is_linear_after_0_2_percent_warmup():
    s = Schedule.create("gpt1-finetune", steps=2000)
    assert s.warmup_steps == 4
    assert s(3) == 1.0 and s(4) == 1.0
    assert s(1002) == pytest.approx(0.5)
    assert s(1999) == pytest.approx(1 / 1996)
    assert Schedule.create("constant", 10)(9) == 1.0


def test_schedule_rejects_bad_values():
    with pytest.raises(ValueError, match="'cosine'"):
        Schedule.create("cosine", 10)
    with pytest.raises(ValueError, match="warmup_steps.*11"):
        Schedule("constant", 10, 11)
    with pytest.raises(ValueError, match="step must be in"):
        Schedule.create("constant", 10)(10)


def test_plot_schedule_returns_the_learning_rate_curve():
    s = Schedule.create("gpt1-pretrain", 50, 5)
    fig = plot_schedule(s, lr=2.5e-4)
    assert isinstance(fig, plt.Figure)
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == list(range(1, 51))
    assert np.allclose(line.get_ydata(), [2.5e-4 * s(i) for i in range(50)])
    plt.close(fig)


# --------------------------------------------------------------------- config and batching


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(lr=0.0), "lr must be a positive number, got 0.0"),
        (dict(lr=float("nan")), "lr must be a positive number, got nan"),
        (dict(steps=0), "steps must be a positive integer, got 0"),
        (dict(batch_size=-4), "batch_size must be a positive integer, got -4"),
        (dict(checkpoint_steps=(3, 99)), r"checkpoint_steps \[99\] are outside 1..steps=6"),
        (dict(precision="fp16"), "precision must be one of .* got 'fp16'"),
        (dict(schedule="linear"), "schedule must be one of .* got 'linear'"),
        (dict(device="tpu"), "device must be .* got 'tpu'"),
        (dict(grad_clip=-1.0), "grad_clip must be a number >= 0, got -1.0"),
    ],
)
def test_bad_config_values_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        quick(**changes)


def test_global_batch_split_and_indivisible_batches():
    plan = plan_batches(quick(batch_size=32, micro_batch_size=4), world_size=2, rank=1, seq_len=64)
    assert (plan.micro_batch_size, plan.accumulation, plan.rank, plan.seq_len) == (4, 4, 1, 64)
    assert plan_batches(quick(batch_size=32), world_size=4).accumulation == 1
    with pytest.raises(ValueError, match="batch_size=10 is not divisible by the 4 ranks"):
        plan_batches(quick(batch_size=10), world_size=4)
    with pytest.raises(ValueError, match="batch_size=32 is not a multiple of micro_batch_size=3 x 2"):
        plan_batches(quick(batch_size=32, micro_batch_size=3), world_size=2)


def test_devices_and_precision():
    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert resolve_precision("fp32", cpu) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    expected = torch.bfloat16 if cpu_supports_bf16() else torch.float32
    assert resolve_precision("auto", cpu) == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' was requested but CUDA is not available"):
            resolve_device("cuda")
        assert resolve_device("auto").type in ("mps", "cpu")


# ------------------------------------------------------------------------------ token data


def test_sampler_windows_are_deterministic_shifted_slices():
    a = TokenSampler(TRAIN, seq_len=16, batch_size=4, seed=1)
    b = TokenSampler(TRAIN, seq_len=16, batch_size=4, seed=1)
    x, y = a.next_batch()
    assert x.dtype == torch.int64 and x.shape == y.shape == (4, 16)
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x.numpy(), y.numpy()):
        start = next(i for i in range(len(TRAIN)) if np.array_equal(TRAIN[i : i + 16], row_x))
        assert np.array_equal(TRAIN[start + 1 : start + 17], row_y)
    assert torch.equal(b.next_batch()[0], x)
    assert not torch.equal(TokenSampler(TRAIN, 16, 4, seed=2).next_batch()[0], x)


def test_sampler_shards_the_same_windows_as_one_process_and_resumes(tmp_path):
    path = tmp_path / "tokens.npy"
    np.save(path, TRAIN)
    tokens = np.load(path, mmap_mode="r")  # a memmap, as the packed corpus is
    single = TokenSampler(tokens, 16, 8, seed=3)
    ranks = [TokenSampler(tokens, 16, 4, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(3):
        x, _ = single.next_batch()
        assert torch.equal(x, torch.cat([r.next_batch()[0] for r in ranks]))
    resumed = TokenSampler(tokens, 16, 4, seed=3, rank=1, world_size=2)
    resumed.load_state_dict(ranks[1].state_dict())
    assert torch.equal(resumed.next_batch()[0], ranks[1].next_batch()[0])


def test_sampler_rejects_unusable_arrays():
    with pytest.raises(ValueError, match="1-D integer numpy array"):
        TokenSampler(TRAIN.astype(np.float32), 16, 4)
    with pytest.raises(ValueError, match="holds 10 tokens, fewer than one window of seq_len \\+ 1 = 17"):
        TokenSampler(TRAIN[:10], 16, 4)


def test_evaluator_is_the_mean_loss_over_its_windows():
    model = micro_gpt(dropout=0.0).eval()
    evaluator = TokenEvaluator(VAL, seq_len=32, sequences=10, batch_size=4)
    assert len(evaluator.starts) == 10 and evaluator.starts[0] == 0
    assert evaluator.starts[-1] == len(VAL) - 33
    windows = torch.from_numpy(VAL[evaluator.starts[:, None] + np.arange(33)].astype(np.int64))
    with torch.no_grad():
        expected = model(windows[:, :-1], windows[:, 1:]).loss.item()
        metrics = evaluator(model)
    assert metrics["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["val_ppl"] == pytest.approx(math.exp(expected), rel=1e-5)


# ------------------------------------------------------------------------------- training


@pytest.mark.train
def test_training_lowers_the_loss_and_logs_history(tmp_path):
    config = quick(steps=40, batch_size=8, log_every=10, eval_every=20, eval_sequences=16, checkpoint_every=20)
    t = train_language_model(micro_gpt(), TRAIN, VAL, config, run_dir=tmp_path)
    h = t.history
    assert list(h["step"]) == [0, 10, 20, 30, 40]
    assert list(h.columns[:5]) == ["step", "tokens", "lr", "loss", "grad_norm"]
    assert {"tokens_per_s", "mfu", "seconds", "val_loss", "val_ppl"} <= set(h.columns)
    assert h["tokens"].iloc[-1] == 40 * 8 * 32
    assert h["val_loss"].iloc[-1] < h["val_loss"].iloc[0] - 1.0  # learns the text's bytes
    assert h["loss"].iloc[-1] < math.log(512) - 1.0
    assert h["val_loss"].iloc[[1, 3]].isna().all()  # evaluated every 20 updates only
    assert (h["mfu"].dropna() > 0).all() and (h["tokens_per_s"].dropna() > 0).all()
    on_disk = ckpt.read_history(tmp_path)
    assert list(on_disk["loss"].dropna()) == list(h["loss"].dropna())
    assert [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(tmp_path)] == [40]


def test_gradient_accumulation_matches_one_big_batch():
    params = []
    for micro in (8, 2):
        config = quick(steps=2, batch_size=8, micro_batch_size=micro, precision="fp32")
        t = trainer(micro_gpt(dropout=0.0), config)
        t.train()
        params.append(torch.cat([p.detach().flatten() for p in t.model.parameters()]))
    # atol 1e-5 = lr x 3e-3: Adam divides each gradient by its own scale, so a near-zero gradient
    # (a rare token's embedding) turns float rounding of the sum (~1e-8) into a visible step.
    torch.testing.assert_close(params[0], params[1], rtol=1e-5, atol=1e-5)


def _losses_and_params(t: Trainer):
    return (list(t.history["loss"]), torch.cat([p.detach().flatten() for p in t.model.parameters()]))


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    """2k updates straight == k updates, a new process-like Trainer resuming, k more: bit for bit."""
    k = 4
    config = quick(steps=2 * k, batch_size=4, micro_batch_size=2)  # dropout on, accumulation on
    straight = trainer(micro_gpt(), config)
    straight.train()

    first = trainer(micro_gpt(), config, tmp_path)
    first.train(until=k)
    assert ckpt.checkpoint_step(ckpt.latest_checkpoint(tmp_path)) == k
    torch.manual_seed(1234)  # the resuming process's RNG must not matter
    second = trainer(micro_gpt(seed=99), config, tmp_path, resume=True)
    assert second.step == k
    second.train()

    losses, params = _losses_and_params(straight)
    resumed_losses, resumed_params = _losses_and_params(second)
    assert resumed_losses == losses
    assert torch.equal(resumed_params, params)
    assert list(second.history["step"]) == list(range(1, 2 * k + 1))


def test_ctrl_c_saves_a_checkpoint_at_the_update_boundary_and_resumes(tmp_path):
    config = quick(steps=6)
    straight = trainer(micro_gpt(), config)
    straight.train()

    calls = []

    def interrupting_loss(model, batch):
        calls.append(1)
        if len(calls) == 3:  # during update 3
            signal.raise_signal(signal.SIGINT)
        return lm_loss(model, batch)

    with pytest.raises(KeyboardInterrupt):
        trainer(micro_gpt(), config, tmp_path, loss_fn=interrupting_loss).train()
    assert [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(tmp_path)] == [3]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    resumed = trainer(micro_gpt(), config, tmp_path, resume=True)
    resumed.train()
    (losses, params), (expected_losses, expected_params) = map(_losses_and_params, (resumed, straight))
    assert losses == expected_losses
    assert torch.equal(params, expected_params)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    calls = []

    def poisoned_loss(model, batch):
        calls.append(1)
        loss, metrics = lm_loss(model, batch)
        return (loss * math.nan if len(calls) == 3 else loss), metrics

    config = quick(steps=8, log_every=5, checkpoint_every=2, keep_last=3)
    t = trainer(micro_gpt(), config, tmp_path, loss_fn=poisoned_loss)
    with pytest.raises(TrainingDiverged, match="diverged at step 3: loss nan.*step-00000002"):
        t.train()
    assert [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(tmp_path)] == [2]
    good = ckpt.load_model(ckpt.latest_checkpoint(tmp_path))
    assert all(torch.isfinite(p).all() for p in good.parameters())


def test_checkpoint_retention_keeps_chosen_steps_and_the_latest(tmp_path):
    config = quick(steps=7, checkpoint_every=1, checkpoint_steps=(2, 3), keep_last=2)
    trainer(micro_gpt(), config, tmp_path).train()
    assert [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(tmp_path)] == [2, 3, 6, 7]


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_checkpoints_never_carry_wrapper_prefixes(tmp_path):
    model = micro_gpt()
    t = trainer(torch.compile(model), quick(steps=1, compile=False), tmp_path)
    assert t.model is model
    t.train()
    path = ckpt.latest_checkpoint(tmp_path)
    names, _ = ckpt.read_safetensors(path / ckpt.MODEL_FILE)
    assert not any(n.startswith(("_orig_mod.", "module.")) for n in names)
    torch.testing.assert_close(ckpt.load_model(path).wte.weight, model.wte.weight)


# ----------------------------------------------------------------------------- bad resumes


def test_resume_refuses_other_models_recipes_and_data(tmp_path):
    config = quick(steps=4)
    trainer(micro_gpt(), config, tmp_path, metadata={"train_tokens": "a.bin"}).train(until=2)
    with pytest.raises(FileExistsError, match="already holds checkpoints .*step-00000002.*resume=True"):
        trainer(micro_gpt(), config, tmp_path)
    with pytest.raises(ValueError, match="different model config: n_layer=2 \\(this model: 3\\)"):
        trainer(micro_gpt(n_layer=3), config, tmp_path, resume=True)
    with pytest.raises(ValueError, match="lr=0.003 \\(this run: 0.001\\)"):
        trainer(micro_gpt(), quick(steps=4, lr=1e-3), tmp_path, resume=True)
    with pytest.raises(ValueError, match="different data: train_tokens='a.bin' \\(this run: 'b.bin'\\)"):
        trainer(micro_gpt(), config, tmp_path, resume=True, metadata={"train_tokens": "b.bin"})
    with pytest.raises(FileNotFoundError, match="has no checkpoint to resume from"):
        trainer(micro_gpt(), config, tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match=r"until must be an integer in \(0, 4\], got 9"):
        trainer(micro_gpt(), config).train(until=9)


class DictBatches:
    """A fine-tuning-shaped source: dict batches, its own sharding and state."""

    def __init__(self, plan):
        self.sampler = TokenSampler.from_plan(TRAIN, plan)

    def next_batch(self):
        x, y = self.sampler.next_batch()
        return {"input_ids": x, "labels": y}

    def state_dict(self):
        return self.sampler.state_dict()

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state)


def test_custom_batches_and_loss_metrics_plug_in(tmp_path):
    def loss_with_metrics(model, batch):
        logits = model(batch["input_ids"]).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), batch["labels"].flatten())
        accuracy = (logits.argmax(-1) == batch["labels"]).float().mean()
        return loss, {"accuracy": accuracy.item(), "logit_scale": logits.detach().abs().mean()}

    config = quick(steps=4, batch_size=4, micro_batch_size=2, log_every=2, eval_every=2, schedule="gpt1-finetune")
    t = Trainer(
        micro_gpt(),
        DictBatches,
        config,
        loss_fn=loss_with_metrics,
        run_dir=tmp_path,
        evaluate=lambda model: {"dev_accuracy": 0.25},
    )
    h = t.train()
    assert list(h.columns[:5]) == ["step", "tokens", "lr", "loss", "grad_norm"]
    assert {"accuracy", "logit_scale"} <= set(h.columns)
    assert list(h["step"]) == [0, 2, 4] and list(h["dev_accuracy"]) == [0.25] * 3
    assert list(h["tokens"]) == [0, 2 * 4 * 32, 4 * 4 * 32]
    assert ((h["accuracy"][1:] >= 0) & (h["accuracy"][1:] <= 1)).all()
    assert ckpt.read_state(ckpt.latest_checkpoint(tmp_path))["batches"] == {"next_window": 16}


# ---------------------------------------------------------------------------- metrics sinks


class RecordingSink:
    """A :class:`MetricsSink` that keeps what it receives, and how many rows ``history_rows`` (a
    Trainer's ``log.rows``) held at each call."""

    def __init__(self) -> None:
        self.received: list[tuple[int, dict]] = []
        self.history_rows: list = []
        self.history_lengths: list[int] = []
        self.closed = False

    def log(self, step, scalars):
        self.received.append((step, dict(scalars)))
        self.history_lengths.append(len(self.history_rows))

    def close(self):
        self.closed = True


def _evaluator() -> TokenEvaluator:
    return TokenEvaluator(VAL, seq_len=32, sequences=4, batch_size=4)


def test_a_sink_receives_every_history_row_as_it_is_logged(tmp_path):
    """Every row, step 0's evaluation included, in order; a resumed run sends only its new rows."""
    config = quick(steps=6, log_every=2, eval_every=3, checkpoint_every=3)
    sink = RecordingSink()
    first = trainer(micro_gpt(), config, tmp_path, evaluate=_evaluator(), sink=sink)
    sink.history_rows = first.log.rows
    first.train(until=3)
    assert sink.received == [(row["step"], {k: v for k, v in row.items() if k != "step"}) for row in first.log.rows]
    assert [step for step, _ in sink.received] == [0, 2, 3] == list(first.history["step"])
    assert sink.history_lengths == [1, 2, 3]  # sent the moment the row joins the history
    assert not sink.closed  # the caller made it, the caller closes it

    resumed_sink = RecordingSink()
    resumed = trainer(micro_gpt(), config, tmp_path, resume=True, evaluate=_evaluator(), sink=resumed_sink)
    resumed.train()
    assert [step for step, _ in resumed_sink.received] == [4, 6]
    assert resumed_sink.received[-1][1]["loss"] == resumed.history["loss"].iloc[-1]
    assert "val_loss" in resumed_sink.received[-1][1] and "val_loss" not in resumed_sink.received[0][1]


@pytest.mark.train
def test_tensorboard_holds_the_scalars_of_the_csv_log_at_the_same_steps(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = quick(steps=8, log_every=2, eval_every=4, eval_sequences=4)
    with TensorBoardSink(tmp_path / "tensorboard") as sink:
        trainer(micro_gpt(), config, tmp_path / "run", evaluate=_evaluator(), sink=sink).train()
    history = ckpt.read_history(tmp_path / "run")
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    columns = [c for c in history.columns if c != "step"]
    assert sorted(events.Tags()["scalars"]) == sorted(columns)
    for column in columns:
        logged = history.dropna(subset=[column])
        scalars = events.Scalars(column)
        assert [e.step for e in scalars] == list(logged["step"]), column
        # TensorBoard keeps 32-bit floats
        np.testing.assert_allclose([e.value for e in scalars], logged[column], rtol=1e-6, err_msg=column)
    assert list(history["step"]) == [0, 2, 4, 6, 8] and history["val_loss"].notna().sum() == 3


def test_a_sink_adds_no_host_synchronisation(monkeypatch, tmp_path):
    """The calls that copy a tensor to the host are the same with TensorBoard as without: the
    sink gets the numbers of the metrics log's one ``tolist()`` per history row."""
    syncs = collections.Counter()
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"):
        real = getattr(torch.Tensor, name)

        def counting(self, *args, _real=real, _name=name, **kwargs):
            syncs[_name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)

    def count(sink):
        syncs.clear()
        t = trainer(micro_gpt(), quick(steps=6, log_every=2), sink=sink)
        t.train()
        assert len(t.history) == 3
        return dict(syncs)

    without = count(None)
    with TensorBoardSink(tmp_path / "tensorboard") as sink:
        assert count(sink) == without
    assert without["tolist"] >= 3  # the counter sees the metrics log's read-backs (the model reads its targets too)


def test_tensorboard_without_its_package_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # what a missing tensorboard raises
    with pytest.raises(MissingExtra, match=r"pip install 'gpt-workbench\[tensorboard\]'") as error:
        TensorBoardSink(tmp_path / "tensorboard")
    assert isinstance(error.value, ImportError) and isinstance(error.value, RuntimeError)
    assert not (tmp_path / "tensorboard").exists()


def test_tensorboard_shows_a_resumed_run_once(tmp_path):
    """A killed session logged steps 1-6, its last checkpoint was at 3: the resumed session's rows
    from step 4 on replace the old ones, as history.csv's do."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TensorBoardSink(tmp_path) as killed:
        for step in range(1, 7):
            killed.log(step, {"loss": 10.0 + step})
    with TensorBoardSink(tmp_path) as resumed:
        for step in range(4, 9):
            resumed.log(step, {"loss": 20.0 + step})
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [
        (1, 11),
        (2, 12),
        (3, 13),
        *((s, 20 + s) for s in range(4, 9)),
    ]
