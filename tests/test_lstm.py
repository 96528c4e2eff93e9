import pytest
import torch

from workbench import GPTConfig, count_parameters
from workbench.evaluation.scoring import score_token_requests
from workbench.models.lstm import LSTMConfig, LSTMLanguageModel, lstm_parameters, matching_lstm_config


def test_parameter_count_is_exact_and_tied():
    config = LSTMConfig(vocab_size=300, d_model=32, hidden=48, n_layer=3, n_ctx=16)
    model = LSTMLanguageModel(config)
    assert model.num_parameters() == lstm_parameters(config)
    assert model.lm_head.weight is model.wte.weight


def test_matching_config_is_about_the_gpt_size():
    gpt = GPTConfig.from_preset("gpt1-mini")
    lstm = matching_lstm_config(gpt)
    assert (lstm.vocab_size, lstm.d_model, lstm.n_ctx) == (gpt.vocab_size, gpt.d_model, gpt.n_ctx)
    assert abs(lstm_parameters(lstm) / count_parameters(gpt) - 1) < 0.15


def test_forward_loss_and_causality():
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=50, d_model=16, hidden=24, n_layer=2, n_ctx=8, dropout=0.0)).eval()
    idx = torch.randint(0, 50, (2, 8))
    out = model(idx, targets=idx)
    assert out.logits.shape == (2, 8, 50) and out.loss.item() > 0
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 50
    assert torch.allclose(model(changed).logits[:, :5], out.logits[:, :5])
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 50\)"):
        model(torch.tensor([[50]]))


def test_scores_through_the_generic_path():
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=50, d_model=16, hidden=24, n_layer=1, n_ctx=8, dropout=0.0))
    frame = score_token_requests(model, [([1, 2, 3], [4, 5]), ([1, 2, 3], [6])])
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    logp = model(ids).logits[0].log_softmax(-1)
    assert frame["logprob"][0] == pytest.approx((logp[2, 4] + logp[3, 5]).item(), abs=1e-5)
    with pytest.raises(ValueError, match="LSTMConfig.hidden must be a positive integer, got 0"):
        LSTMConfig(d_model=16, hidden=0)
