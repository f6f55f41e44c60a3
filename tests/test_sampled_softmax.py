"""Sampled softmax of the item-ID models (negatives=N): closed form, the logQ correction, the
sampler's distribution, chunked ranking against one matmul, and a toy run with a clear error for BCE."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from semid.core import config as cfgmod
from semid.core.errors import ConfigError
from semid.core.run import RunFolder
from semid.data.config import PrepareConfig
from semid.evaluate.stage import EvaluateConfig
from semid.evaluate.stage import run as evaluate
from semid.models import registry
from semid.models import stage as model_stage
from semid.models.seqrec import config as C
from semid.models.seqrec import losses
from semid.models.seqrec import model as models
from semid.sequences import IGNORE


def _model(kind: str = "sasrec", n_items: int = 20) -> torch.nn.Module:
    net = {"sasrec": models.SASRec, "bert4rec": models.BERT4Rec}[kind]
    return net(models.ModelArgs(n_items=n_items, d_model=16, layers=1, heads=2, dropout=0.0, max_len=10)).eval()


def test_sampled_softmax_matches_its_closed_form_and_removes_accidental_hits():
    torch.manual_seed(0)
    model = _model("bert4rec")  # with an output bias
    with torch.no_grad():
        model.bias.normal_()
    h = torch.randn(3, 16)
    target = torch.tensor([4, 0, 19])
    counts = np.arange(20)
    sampler = losses.ItemSampler(20, 6, counts)
    torch.manual_seed(5)
    neg = sampler.draw()
    torch.manual_seed(5)
    got = losses.sampled_softmax(h, target, model, sampler)
    w, b = model.item_weights().detach(), model.bias.detach()
    q = (counts + 1.0) ** 0.75
    log_e = np.log(6 * q / q.sum())
    rows = []
    for t, hr in zip(target.tolist(), h):
        logits = [float(hr @ w[t] + b[t]) - log_e[t]]
        logits += [float(hr @ w[j] + b[j]) - log_e[j] for j in neg.tolist() if j != t]  # hits removed
        rows.append(-logits[0] + math.log(sum(math.exp(v) for v in logits)))
    assert got.item() == pytest.approx(np.mean(rows), rel=1e-5)
    # a draw that holds a row's target: that column counts for nothing in that row
    sampler = losses.ItemSampler(20, 3)
    sampler.draw = lambda: torch.tensor([4, 4, 7])
    one = losses.sampled_softmax(h[:1], target[:1], model, sampler)
    only7 = losses.ItemSampler(20, 1)
    only7.draw = lambda: torch.tensor([7])
    expected = losses.sampled_softmax(h[:1], target[:1], model, only7)  # uniform: the shift is the same for all
    torch.testing.assert_close(one, expected)


@pytest.mark.parametrize("counts", [None, np.array([500, 1, 0, 40, 3, 2, 90, 7, 1, 0])])
def test_corrected_negatives_estimate_the_full_partition(counts):
    """With the logQ correction, the negatives' summed exp estimates Σ_{j≠t} exp(s_j) without bias,
    whatever the sampler: the sampled loss then approaches -s_t + log(E_t · Σ_{j≠t} exp s_j)."""
    torch.manual_seed(0)
    model = _model(n_items=10)
    h = torch.randn(4, 16)
    target = torch.tensor([0, 2, 5, 9])
    sampler = losses.ItemSampler(10, 400_000, counts)
    with torch.no_grad():
        got = losses.sampled_softmax(h, target, model, sampler)
        s = models.scores(model, h).double()
    log_e = sampler.log_expected.double()
    pos = s.gather(1, target[:, None]).squeeze(1)
    others = s.masked_fill(F.one_hot(target, 10).bool(), float("-inf"))
    want = -(pos - log_e[target]) + torch.logaddexp(pos - log_e[target], torch.logsumexp(others, 1))
    assert got.item() == pytest.approx(want.mean().item(), abs=0.01)
    wrong = -(pos - log_e[target]) + torch.logaddexp(pos - log_e[target], torch.logsumexp(others - log_e, 1)
                                                     + math.log(400_000))
    if counts is not None:  # an uncorrected draw would be far off
        assert abs(got.item() - wrong.mean().item()) > 0.1


def test_sampler_draws_by_popularity_and_stays_in_the_catalogue():
    counts = np.array([0, 0, 9, 99, 999])
    sampler = losses.ItemSampler(5, 200_000, counts)
    torch.manual_seed(0)
    got = torch.bincount(sampler.draw(), minlength=5).double() / 200_000
    q = (counts + 1.0) ** 0.75
    np.testing.assert_allclose(got.numpy(), q / q.sum(), atol=0.004)
    assert torch.exp(sampler.log_expected.double()).sum().item() == pytest.approx(200_000, rel=1e-6)
    uniform = losses.ItemSampler(5, 1000)
    draw = uniform.draw()
    assert draw.min() >= 0 and draw.max() < 5 and len(torch.unique(draw)) == 5
    assert not any(name in uniform.state_dict() for name in ("cdf", "log_expected"))  # not in checkpoints
    with pytest.raises(ValueError, match="counts for 4 items, the catalogue has 5"):
        losses.ItemSampler(5, 10, np.ones(4))
    with pytest.raises(ValueError, match="at least 1 negative and 2 items"):
        losses.ItemSampler(1, 10)


@pytest.mark.parametrize("kind", ["sasrec", "bert4rec"])
def test_chunked_ranking_equals_one_matmul(kind):
    torch.manual_seed(1)
    model = _model(kind, n_items=1000)
    h = torch.randn(5, 16)
    with torch.no_grad():
        full = torch.topk(models.scores(model, h), 12, dim=1)
        for chunk in (7, 100, 999, 1000):
            values, items = models.top_items(model, h, 12, chunk=chunk)
            assert torch.equal(items, full.indices), chunk
            torch.testing.assert_close(values, full.values)
        assert models.top_items(model, h, 5000, chunk=64)[1].shape == (5, 1000)


def test_sequence_loss_with_a_sampler_uses_only_target_positions():
    torch.manual_seed(0)
    model = _model()
    x = torch.tensor([[3, 7, 1, 0]])
    y = torch.tensor([[6, 0, 4, IGNORE]])
    sampler = losses.ItemSampler(20, 8)
    torch.manual_seed(3)
    got = losses.sequence_loss(model, x, y, "ce", sampler)
    torch.manual_seed(3)
    want = losses.sampled_softmax(model(x)[0, :3], y[0, :3], model, sampler)
    torch.testing.assert_close(got, want)


def test_bce_with_negatives_is_a_clear_error():
    with pytest.raises(ConfigError, match="negatives= sets the sampled softmax of loss=ce"):
        cfgmod.load(C.SASRecConfig, None, ["loss=bce", "negatives=100"])
    with pytest.raises(ConfigError, match="bad value for 'sampler'"):
        cfgmod.load(C.SASRecConfig, None, ["negatives=100", "sampler=zipf"])


@pytest.mark.parametrize("kind,sampler", [("sasrec", "popularity"), ("gru4rec", "uniform")])
def test_sampled_softmax_trains_and_keeps_default_folders_identity(tmp_path, kind, sampler):
    from semid.data import prepare

    out = tmp_path / "toy"
    prepare.run(PrepareConfig(dataset="toy"), out)
    run = RunFolder(out)
    spec = registry.get(kind)
    tiny = dict(max_items=8, batch_size=32, max_epochs=4, patience=4, val_users=50, val_every=1, threads=1, lr=0.01)
    default = model_stage._identity(spec, spec.config(**tiny), run, None)[0]
    assert "negatives" not in default and "sampler" not in default  # folders trained before stay up to date
    cfg = spec.config(**tiny, negatives=32, sampler=sampler, name=f"{kind}-sampled")
    assert model_stage._identity(spec, cfg, run, None)[0]["negatives"] == 32
    folder = model_stage.train(kind, cfg, out)
    m = json.loads(evaluate(EvaluateConfig(model=f"{kind}-sampled", bootstrap=10), out).read_text())
    assert m["metrics"]["recall@10"] > 0.05  # random is about 10 / 295
    assert (folder / "model.safetensors").is_file()
