"""The logit lens: at the last layer it is the model's own scoring; at every layer it is the
residual stream read through the final LayerNorm and the LM head, computed here by hand."""

import numpy as np
import pytest
import torch

from workbench.data.tokenizer import gpt2_tokenizer
from workbench.evaluation.lens import lens_logprobs, minimal_pair_lens
from workbench.evaluation.scoring import score
from workbench.models.config import GPTConfig
from workbench.models.gpt import GPT
from workbench.models.lstm import LSTMConfig, LSTMLanguageModel

LINES = ["the cat sat on the mat", "on the mat the cat sat", "a dog", "it was the best of times"]


@pytest.fixture(scope="module")
def model_and_tokenizer():
    tok = gpt2_tokenizer()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_ctx=32, d_model=32, n_head=2, d_ff=64, n_layer=3, norm="pre"))
    return model.eval(), tok


def test_last_layer_is_the_models_own_score(model_and_tokenizer):
    model, tok = model_and_tokenizer
    lens = lens_logprobs(model, tok, LINES, batch_size=3)
    assert lens.shape == (len(LINES), 4)
    scored = score(model, tok, [("", " " + line) for line in LINES])["logprob"].to_numpy()
    np.testing.assert_allclose(lens[:, -1], scored, atol=1e-4)


def test_every_layer_reads_its_state_through_the_final_norm_and_head(model_and_tokenizer):
    model, tok = model_and_tokenizer
    line = LINES[3]
    ids = torch.tensor([[tok.eos_id, *tok.encode(" " + line)]])
    with torch.no_grad():
        states = model(ids, output_hidden_states=True).hidden_states
        expected = []
        for layer, state in enumerate(states):
            normed = state if layer == len(states) - 1 else model.ln_f(state)
            logprobs = torch.log_softmax(model.lm_head(normed), -1)[0, :-1]
            expected.append(logprobs.gather(1, ids[0, 1:, None]).sum().item())
    np.testing.assert_allclose(lens_logprobs(model, tok, [line])[0], expected, atol=1e-4)
    # a batch of lines of different lengths scores each line as it scores alone (padding is never read)
    alone = np.stack([lens_logprobs(model, tok, [x])[0] for x in LINES])
    np.testing.assert_allclose(lens_logprobs(model, tok, LINES, batch_size=4), alone, atol=1e-4)


def test_minimal_pairs_compare_the_two_lines_at_each_layer(model_and_tokenizer):
    model, tok = model_and_tokenizer
    pairs = [(LINES[0], LINES[1]), (LINES[1], LINES[0])]
    correct = minimal_pair_lens(model, tok, pairs)
    assert correct.shape == (4, 2)
    scores = lens_logprobs(model, tok, [LINES[0], LINES[1]])
    np.testing.assert_array_equal(correct[:, 0], scores[0] > scores[1])
    np.testing.assert_array_equal(correct[:, 1], scores[1] > scores[0])


def test_bad_inputs_are_named(model_and_tokenizer):
    model, tok = model_and_tokenizer
    with pytest.raises(ValueError, match="does not fit the model's context 32"):
        lens_logprobs(model, tok, ["word " * 40])
    lstm = LSTMLanguageModel(LSTMConfig(vocab_size=tok.vocab_size, d_model=16, hidden=16, n_layer=1))
    with pytest.raises(ValueError, match="reads a GPT's residual stream, got LSTMLanguageModel"):
        lens_logprobs(lstm, tok, LINES)
