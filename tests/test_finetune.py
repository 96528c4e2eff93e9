import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.finetune import TaskModel, extend_vocabulary, task_loss, transfer
from workbench.transforms import collate


def _gpt(seed, **changes):
    torch.manual_seed(seed)
    return GPT(GPTConfig.from_preset("gpt1-micro", dropout=0.0, **changes))


def _batch(kind, batch=3, group=4, time=9, vocab=512):
    g = torch.Generator().manual_seed(0)
    shape = (batch, time) if kind in ("classification", "entailment") else (batch, 2 if kind == "similarity" else group, time)
    ids = torch.randint(0, vocab, shape, generator=g)
    extract = torch.randint(3, time, shape[:-1], generator=g)
    labels = torch.randint(0, 2 if kind != "multiple_choice" else group, (batch,), generator=g)
    return dict(input_ids=ids, extract=extract, labels=labels)


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
    l3.backward()
    assert model.head.weight.grad is not None and model.gpt.wte.weight.grad is not None


def test_bad_labels_and_kinds_are_named():
    model = TaskModel(_gpt(0), "classification", n_classes=2)
    batch = _batch("classification")
    batch["labels"] = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        task_loss(model, batch)
    with pytest.raises(ValueError, match="unknown task kind 'regression'"):
        TaskModel(_gpt(0), "regression")
    with pytest.raises(ValueError, match=r"multiple_choice inputs must be \[batch, group, time\]"):
        TaskModel(_gpt(0), "multiple_choice")(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, dtype=torch.long))


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
