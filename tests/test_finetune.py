import numpy as np
import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.data.transforms import collate, lm_targets
from workbench.models.lstm import LSTMConfig, LSTMLanguageModel
from workbench.training.finetuning import TaskModel, check_labels, make_batch, task_loss
from workbench.training.surgery import extend_vocabulary, transfer


def _gpt(seed, **changes):
    torch.manual_seed(seed)
    return GPT(GPTConfig.from_preset("gpt1-micro", dropout=0.0, **changes))


def _batch(kind, batch=3, group=4, time=9, vocab=512):
    g = torch.Generator().manual_seed(0)
    shape = (
        (batch, time)
        if kind in ("classification", "entailment")
        else (batch, 2 if kind == "similarity" else group, time)
    )
    ids = torch.randint(0, vocab, shape, generator=g)
    extract = torch.randint(3, time, shape[:-1], generator=g)
    labels = torch.randint(0, 2 if kind != "multiple_choice" else group, (batch,), generator=g)
    return dict(input_ids=ids, extract=extract, labels=labels)


@pytest.mark.parametrize(
    "kind, head", [("classification", "linear"), ("multiple_choice", "linear"), ("multiple_choice", "likelihood")]
)
def test_auxiliary_lm_loss_without_logits_equals_the_loss_over_them(kind, head):
    model = TaskModel(_gpt(0), kind, n_classes=2, head=head, delim_id=3).eval()
    batch = _batch(kind)
    _, lm_logits = model(batch["input_ids"], batch["extract"], with_lm=True)
    targets = lm_targets(batch["input_ids"], batch["extract"])
    expected = torch.nn.functional.cross_entropy(lm_logits.flatten(0, -2), targets.flatten(), ignore_index=-100)
    expected.backward()
    grads = {name: p.grad.clone() for name, p in model.body.named_parameters()}
    model.zero_grad()
    _, metrics = task_loss(model, batch, lm_weight=0.5)
    torch.testing.assert_close(metrics["lm_loss"], expected.detach())
    model(batch["input_ids"], batch["extract"], lm_targets=targets)[1].backward()
    for name, p in model.body.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("kind", ["classification", "entailment", "similarity", "multiple_choice"])
def test_heads_read_the_extract_state(kind):
    model = TaskModel(_gpt(0), kind, n_classes=2).eval()
    batch = _batch(kind)
    logits, lm = model(batch["input_ids"], batch["extract"], with_lm=True)
    expected = (3, 4) if kind == "multiple_choice" else (3, 2)
    assert logits.shape == expected
    assert lm.shape == (*batch["input_ids"].shape, 512)
    # Changing a token after [extract] cannot change the task logits (causal model).
    ids = batch["input_ids"].clone()
    ids[..., -1] = (ids[..., -1] + 1) % 512
    after = model(ids, batch["extract"].clamp(max=ids.size(-1) - 2))[0]
    before = model(batch["input_ids"], batch["extract"].clamp(max=ids.size(-1) - 2))[0]
    assert torch.allclose(after, before, atol=1e-6)


def test_similarity_adds_both_orderings():
    model = TaskModel(_gpt(0), "similarity").eval()
    batch = _batch("similarity")
    swapped = model(batch["input_ids"].flip(1), batch["extract"].flip(1))[0]
    assert torch.allclose(model(batch["input_ids"], batch["extract"])[0], swapped, atol=1e-5)


def test_l3_objective_adds_lambda_times_lm_loss():
    model = TaskModel(_gpt(0), "classification").eval()
    batch = _batch("classification")
    l2, m0 = task_loss(model, batch, lm_weight=0.0)
    l3, m5 = task_loss(model, batch, lm_weight=0.5)
    assert "lm_loss" not in m0 and m5["lm_loss"] > 0
    assert torch.isclose(l3, l2 + 0.5 * m5["lm_loss"], atol=1e-5)
    assert torch.isclose(m5["task_loss"], l2)
    l3.backward()
    assert model.head.weight.grad is not None and model.body.wte.weight.grad is not None


def test_bad_labels_and_kinds_are_named():
    model = TaskModel(_gpt(0), "classification", n_classes=2)
    with pytest.raises(ValueError, match="example 1: label 2 does not fit a classification head with 2 outputs"):
        check_labels(model, [([[1, 2]], 1), ([[1, 2]], 2)])
    with pytest.raises(ValueError, match="unknown task kind 'regression'"):
        TaskModel(_gpt(0), "regression")
    with pytest.raises(ValueError, match=r"multiple_choice inputs must be \[batch, group, time\]"):
        TaskModel(_gpt(0), "multiple_choice")(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, dtype=torch.long))


# GPT-1 Table 5's LSTM row: the same heads and input transformations on an LSTM body.


def _lstm(seed=0, vocab=512, **changes):
    torch.manual_seed(seed)
    options = dict(vocab_size=vocab, d_model=16, hidden=24, n_layer=2, n_ctx=16, dropout=0.0)
    config = LSTMConfig(**{**options, **changes})
    return LSTMLanguageModel(config)


@pytest.mark.parametrize("kind", ["classification", "multiple_choice"])
def test_lstm_body_heads_and_lm_loss(kind):
    model = TaskModel(_lstm(), kind, n_classes=2).eval()
    batch = _batch(kind)
    logits, lm = model(batch["input_ids"], batch["extract"], with_lm=True)
    assert logits.shape == ((3, 4) if kind == "multiple_choice" else (3, 2))
    assert lm.shape == (*batch["input_ids"].shape, 512)
    l2, _ = task_loss(model, batch, lm_weight=0.0)
    l3, metrics = task_loss(model, batch, lm_weight=0.5)
    # L1 is the LSTM's own LM loss on the same inputs, computed by its forward.
    flat_ids = batch["input_ids"].reshape(-1, batch["input_ids"].size(-1))
    targets = lm_targets(flat_ids, batch["extract"].reshape(-1))
    own = model.body(flat_ids, targets=targets).loss
    assert torch.allclose(metrics["lm_loss"], own, atol=1e-6)
    assert torch.allclose(l3, l2 + 0.5 * own, atol=1e-6)
    l3.backward()
    assert model.head.weight.grad is not None and model.body.wte.weight.grad is not None


@pytest.mark.parametrize("kind", ["classification", "multiple_choice"])
def test_lstm_body_reads_its_state_at_extract(kind):
    model = TaskModel(_lstm(), kind).eval()
    sequences = [[1, 5, 6, 7, 2], [1, 8, 2], [1, 9, 10, 2], [1, 3, 4, 11, 12, 13, 2], [1, 14, 2], [1, 15, 16, 2]]
    ids, extract = collate(sequences, pad_id=0)
    if kind == "multiple_choice":
        ids, extract = ids.view(3, 2, -1), extract.view(3, 2)
    base = model(ids, extract)[0]
    positions = torch.arange(ids.size(-1))
    after = positions > extract.unsqueeze(-1)  # the padding: never read
    assert after.any()
    padded = torch.where(after, torch.full_like(ids, 100), ids)
    assert torch.allclose(model(padded, extract)[0], base, atol=1e-6)
    before = ids.clone()
    before[..., 1] = 200  # a real token before [extract]: the state there reads it
    changed = (model(before, extract)[0] - base).abs()
    per_sequence = changed.amax(-1) if kind == "classification" else changed  # MC: one score per sequence
    assert (per_sequence > 1e-4).all()


def test_wrong_body_type_is_named():
    with pytest.raises(ValueError, match="TaskModel needs a GPT body or an LSTMLanguageModel body, got Linear"):
        TaskModel(torch.nn.Linear(2, 2), "classification")


def _toy_task(n=32):
    """Separable token ids: the label is which of two tokens follows [start]; [extract] comes 3 tokens later."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(5, 20, (n, 2), generator=g).tolist()
    return [([[1, 3 + i % 2, *noise[i], 2]], i % 2) for i in range(n)]


def _finetune_config(**changes):
    from workbench.training.config import TrainConfig

    options = dict(
        batch_size=8,
        lr=1e-2,
        schedule="constant",
        eval_every=0,
        checkpoint_every=0,
        log_every=1,
        progress=False,
        device="cpu",
        precision="fp32",
    )
    return TrainConfig(**{**options, **changes})


def test_lstm_body_finetunes_on_a_toy_task():
    from workbench.training.finetuning import finetune

    train = _toy_task()
    model = TaskModel(_lstm(vocab=20, n_layer=1), "classification")
    batch = make_batch(train, "classification", pad_id=0)

    def loss():
        with torch.no_grad():
            return task_loss(model.eval(), batch, lm_weight=0.0)[0].item()

    first = loss()
    finetune(model, train, _finetune_config(steps=30), pad_id=0, lm_weight=0.5)
    assert loss() < 0.5 * first


def test_trainer_handles_an_lstm_body(tmp_path):
    """find_gpt finds no GPT: FLOPs per token fall back to 6N, and the checkpoint records the LSTM's config."""
    from workbench.training.finetuning import finetune
    from workbench.training.trainer import find_gpt

    model = TaskModel(_lstm(vocab=20, n_layer=1), "classification")
    assert find_gpt(model) is None
    trainer = finetune(model, _toy_task(), _finetune_config(steps=2), pad_id=0, run_dir=tmp_path)
    assert trainer.step == 2
    assert trainer.flops_per_token == 6.0 * sum(p.numel() for p in model.parameters())
    assert trainer.model_config == model.body.config.to_dict()
    assert {"task_loss", "lm_loss", "mfu"} <= set(trainer.history.columns)
    assert (tmp_path / "history.csv").exists()


@pytest.mark.parametrize("n_layers", [0, 1, 2])
def test_transfer_copies_embeddings_and_first_k_blocks(n_layers):
    pretrained, target = _gpt(1), _gpt(2)
    with torch.no_grad():  # stand-in for pretraining: every tensor moves away from its init
        for p in pretrained.parameters():
            p.add_(0.1 * torch.randn_like(p))
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = transfer(pretrained, target, n_layers)
    copied = set(report.loc[report["copied"], "parameter"])
    assert {"wte.weight", "wpe.weight"} <= copied
    for name, value in target.state_dict().items():
        if name == "lm_head.weight":
            continue
        source = pretrained.state_dict()[name]
        if name in copied:
            assert torch.equal(value, source), name
        else:
            assert torch.equal(value, fresh[name]) and not torch.equal(value, source), name
    assert sum(name.startswith("blocks.") for name in copied) == n_layers * 12


def test_transfer_into_a_larger_vocabulary_and_errors():
    pretrained = _gpt(1)
    target = extend_vocabulary(_gpt(2), 515)
    assert target.config.vocab_size == 515 and target.lm_head.weight is target.wte.weight
    transfer(pretrained, target, 2)
    assert torch.equal(target.wte.weight[:512], pretrained.wte.weight)
    with pytest.raises(ValueError, match=r"n_layers must be in \[0, 2\], got 3"):
        transfer(pretrained, _gpt(2), 3)
    with pytest.raises(ValueError, match="d_model differs"):
        transfer(pretrained, GPT(GPTConfig.from_preset("gpt1-micro", d_model=32)), 1)


def test_collated_batch_trains_end_to_end():
    model = TaskModel(_gpt(0), "multiple_choice")
    ids, extract = collate([[1, 5, 6, 2], [1, 5, 2], [1, 7, 8, 9, 2], [1, 3, 2]], pad_id=0)
    batch = dict(input_ids=ids.view(2, 2, -1), extract=extract.view(2, 2), labels=torch.tensor([0, 1]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = task_loss(model, batch)[0].item()
    for _ in range(20):
        loss, _ = task_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first


def _encoded_task(name, split, n, n_ctx=64):
    from workbench.data.prepare import corpus_tokenizer
    from workbench.data.tasks import get_task, load_task
    from workbench.data.transforms import encode_examples

    tok = corpus_tokenizer(vocab_size=512)  # the micro presets' vocabulary
    return tok, encode_examples(get_task(name).kind, load_task(name, split)[:n], tok, n_ctx)


def test_task_batches_shard_by_rank_and_resume():
    from workbench.training.config import BatchPlan
    from workbench.training.finetuning import TaskBatches

    encoded = [([[1, i, 2]], i % 2) for i in range(10)]
    single = TaskBatches(encoded, "classification", 0, BatchPlan(4, 1, None, seed=3))
    ranks = [
        TaskBatches(encoded, "classification", 0, BatchPlan(2, 1, None, seed=3, rank=r, world_size=2)) for r in (0, 1)
    ]
    for _ in range(5):  # crosses epoch boundaries (10 examples, 4 per step)
        whole = single.next_batch()["input_ids"]
        parts = torch.cat([r.next_batch()["input_ids"] for r in ranks])
        assert torch.equal(whole, parts)
    state = single.state_dict()
    expected = single.next_batch()["input_ids"]
    restored = TaskBatches(encoded, "classification", 0, BatchPlan(4, 1, None, seed=3))
    restored.load_state_dict(state)
    assert torch.equal(restored.next_batch()["input_ids"], expected)


def test_batches_grouped_by_length_pad_less_and_keep_every_example_once_per_epoch():
    from workbench.training.config import BatchPlan
    from workbench.training.finetuning import LENGTH_GROUP_BATCHES, TaskBatches

    rng = np.random.default_rng(0)
    n, size = 4 * 8 * LENGTH_GROUP_BATCHES + 5, 8  # four groups of batches and a ragged end
    encoded = [([[1] + [7] * int(length) + [2]], i) for i, length in enumerate(rng.integers(1, 60, n))]
    plan = BatchPlan(size, 1, None, seed=3)
    grouped, plain = (TaskBatches(encoded, "classification", 0, plan, group) for group in (True, False))
    per_epoch = n // size
    seen, grouped_padding, plain_padding = [], 0, 0
    for _ in range(per_epoch):
        batch, other = grouped.next_batch(), plain.next_batch()
        seen += batch["labels"].tolist()
        grouped_padding += int((batch["input_ids"] == 0).sum())
        plain_padding += int((other["input_ids"] == 0).sum())
    assert len(seen) == len(set(seen)) == per_epoch * size  # each example at most once, the ragged end dropped
    assert grouped_padding < plain_padding / 4
    first_lengths = [len(encoded[i][0][0]) for i in seen[:size]]
    assert max(first_lengths) - min(first_lengths) < 59  # a batch holds neighbours in length, not a random draw
    assert grouped.next_batch()["labels"].tolist() != seen[:size]  # the next epoch is another order
    again = TaskBatches(encoded, "classification", 0, plan, True)
    assert [again.next_batch()["labels"].tolist() for _ in range(per_epoch)] == [
        seen[i : i + size] for i in range(0, len(seen), size)
    ]  # the order is a function of the seed


@pytest.mark.data
@pytest.mark.parametrize("task", ["sentiment", "next_line", "same_work", "name_substitution"])
def test_real_tasks_encode_and_batch(task):
    from workbench.data.tasks import get_task
    from workbench.training.finetuning import make_batch, model_kind

    tok, encoded = _encoded_task(task, "dev", 4)
    kind = model_kind(get_task(task).kind)
    batch = make_batch(encoded, kind, tok.pad_id)
    assert batch["labels"].shape == (4,)
    ids, extract = batch["input_ids"], batch["extract"]
    assert (ids.gather(-1, extract.unsqueeze(-1)) == tok.extract_id).all()
    assert (ids[..., 0] == tok.start_id).all()


@pytest.mark.data
@pytest.mark.train
def test_finetune_learns_a_real_task(tmp_path):
    from workbench.training.config import TrainConfig
    from workbench.training.finetuning import accuracy, finetune

    tok, train = _encoded_task("sentiment", "train", 64)
    _, dev = _encoded_task("sentiment", "dev", 32)
    torch.manual_seed(0)
    gpt = GPT(GPTConfig.from_preset("gpt1-micro", vocab_size=tok.vocab_size))
    model = TaskModel(gpt, "classification")
    config = TrainConfig(
        steps=60,
        batch_size=8,
        lr=3e-3,
        schedule="gpt1-finetune",
        eval_every=30,
        checkpoint_every=0,
        progress=False,
        device="cpu",
        precision="fp32",
    )
    trainer = finetune(model, train, config, tok.pad_id, dev=dev, run_dir=tmp_path, lm_weight=0.0)
    history = trainer.history
    assert {"task_loss", "accuracy", "dev_accuracy"} <= set(history.columns)
    # Memorising 64 examples is within reach of 60 updates: train accuracy rises far above chance.
    assert accuracy(model, train, tok.pad_id) >= 0.9
    assert (tmp_path / "history.csv").exists()


@pytest.mark.data
def test_pretrain_then_finetune_from_the_command_line(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from workbench.cli import main
    from workbench.training import checkpoint as ckpt

    common = [
        "--train.steps",
        "2",
        "--train.batch-size",
        "4",
        "--train.device",
        "cpu",
        "--train.precision",
        "fp32",
        "--train.progress",
        "false",
    ]
    pretrain = ["pretrain", "--preset", "gpt1-micro", "--out", str(tmp_path / "pre")]
    assert main([*pretrain, "--tensorboard", str(tmp_path / "tb-pre"), *common]) == 0
    assert (
        main(
            [
                "finetune",
                "--task",
                "sentiment",
                "--checkpoint",
                str(tmp_path / "pre"),
                "--layers",
                "1",
                "--n-train",
                "8",
                "--epochs",
                "none",
                "--train.eval-every",
                "0",
                "--out",
                str(tmp_path / "ft"),
                "--tensorboard",
                str(tmp_path / "tb-ft"),
                *common,
            ]
        )
        == 0
    )
    assert "embeddings + 1 blocks" in capsys.readouterr().out
    # --tensorboard: the history rows as TensorBoard scalars, beside history.csv
    for run, log_dir in (("pre", "tb-pre"), ("ft", "tb-ft")):
        history = ckpt.read_history(tmp_path / run).dropna(subset=["loss"])  # not step 0's evaluation
        events = EventAccumulator(str(tmp_path / log_dir))
        events.Reload()
        assert [(e.step, e.value) for e in events.Scalars("loss")] == list(
            zip(history["step"], history["loss"].astype("float32"))
        )
    assert main(["finetune", "--task", "sentiment", "--preset", "gpt1-micro", "--layers", "1", *common]) == 2
    assert "workbench finetune: error: --layers 1 needs --checkpoint" in capsys.readouterr().err
    # --head reaches the model: the likelihood head on a multiple-choice task, and a clear refusal elsewhere
    likelihood = ["--checkpoint", str(tmp_path / "pre"), "--head", "likelihood", "--n-train", "8", "--epochs", "none"]
    out = ["--train.eval-every", "0", "--out", str(tmp_path / "ft-likelihood"), *common]
    assert main(["finetune", "--task", "corrupted_pair", *likelihood, *out]) == 0
    assert (tmp_path / "ft-likelihood" / "history.csv").exists()
    assert main(["finetune", "--task", "sentiment", *likelihood, *out]) != 0
    assert "scores the choices of a multiple_choice task, not a classification task" in capsys.readouterr().err


def _likelihood_batch(delim):
    """Two examples of two choices: [start] context [delim] answer [extract], right-padded; the
    second example has no context (its answer follows [start])."""
    sequences = [[1, 40, 41, delim, 50, 51, 52, 2], [1, 40, 41, delim, 60, 61, 2], [1, 70, 71, 72, 2], [1, 80, 2]]
    ids, extract = collate(sequences, pad_id=0)
    return sequences, dict(input_ids=ids.view(2, 2, -1), extract=extract.view(2, 2), labels=torch.tensor([0, 1]))


@pytest.mark.parametrize("body", ["gpt", "lstm"])
def test_likelihood_head_scores_each_answer_by_its_log_probability(body):
    delim = 3
    network = _gpt(0) if body == "gpt" else _lstm()
    model = TaskModel(network, "multiple_choice", head="likelihood", delim_id=delim).eval()
    sequences, batch = _likelihood_batch(delim)
    scores, _ = model(batch["input_ids"], batch["extract"])
    expected = []
    for sequence in sequences:
        ids = torch.tensor([sequence])
        logprobs = torch.log_softmax(model.body.lm_head(model.hidden_states(ids)), -1)[0]
        first = sequence.index(delim) + 1 if delim in sequence else 1  # the first answer token
        expected.append(sum(logprobs[p - 1, sequence[p]] for p in range(first, len(sequence) - 1)))
    torch.testing.assert_close(scores, torch.stack(expected).view(2, 2), rtol=1e-5, atol=1e-5)
    # The scale is learnt: the scores move with it, and gradients reach it and the body.
    with torch.no_grad():
        model.likelihood_scale.fill_(2.0)
    torch.testing.assert_close(model(batch["input_ids"], batch["extract"])[0], 2 * scores)
    task_loss(model.train(), batch, lm_weight=0.5)[0].backward()
    assert model.likelihood_scale.grad is not None and model.likelihood_scale.grad != 0
    assert all(p.grad is not None for p in model.body.parameters() if p.requires_grad)


def test_likelihood_head_trains():
    delim = 3
    model = TaskModel(_gpt(0), "multiple_choice", head="likelihood", delim_id=delim)
    _, batch = _likelihood_batch(delim)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = task_loss(model.train(), batch, lm_weight=0.0)[0].item()
    for _ in range(20):
        loss, _ = task_loss(model, batch, lm_weight=0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first
