"""Training curves: logs/metrics.csv always; TensorBoard and MLflow (local file store) opt-in by config."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from semid import training
from semid.cli import app
from semid.core.config import ConfigError
from semid.core.run import RunFolder
from semid.models.seqrec.config import SASRecConfig

SMALL = ["d_model=16", "max_epochs=2", "val_users=50", "threads=1"]


def _invoke(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_tensorboard_and_mlflow_get_the_same_curves_and_the_model_keeps_its_identity(tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="loggers=[mlflow] needs semid[tracking] (mlflow-skinny)")
    pytest.importorskip("tensorboardX", reason="loggers=[tensorboard] needs semid[tracking] (tensorboardX)")
    out = tmp_path / "toy"
    _invoke("prepare", "--dataset", "toy", "--out", str(out))
    _invoke("train", "sasrec", "--out", str(out), *SMALL, "loggers=[tensorboard,mlflow]")
    model = RunFolder(out).model_dir("sasrec-ce")
    assert (model / "logs" / "metrics.csv").is_file()  # always
    assert list((model / "tensorboard").rglob("events.out.tfevents.*"))
    client = mlflow.tracking.MlflowClient(RunFolder(out).mlruns.resolve().as_uri())
    (exp,) = [e for e in client.search_experiments() if e.name == "toy"]
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "sasrec-ce" and run.data.tags["model"] == "sasrec-ce"
    assert "val/recall10" in run.data.metrics and "train/loss" in run.data.metrics
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val/recall10")] != []
    # where curves are sent is not part of the model: the same config without loggers is up to date
    assert "up to date" in " ".join(_invoke("train", "sasrec", "--out", str(out), *SMALL).split())


def test_an_unknown_logger_is_named():
    with pytest.raises(Exception, match="loggers"):
        SASRecConfig(loggers=["wandb"])
    with pytest.raises(ConfigError, match="loggers"):
        from semid.core.config import build
        build(SASRecConfig, {"loggers": ["wandb"]})


def test_compile_without_a_cpp_compiler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no compiler on it
    monkeypatch.delenv("CXX", raising=False)
    assert training.cxx_compiler() is None
    with pytest.raises(ConfigError, match="compile=true on a CPU needs a C\\+\\+ compiler"):
        training.fit(None, None, None, SASRecConfig(compile=True, accelerator="cpu"), tmp_path)


@pytest.mark.skipif(training.cxx_compiler() is None, reason="torch.compile's CPU kernels need a C++ compiler (g++)")
def test_compile_traces_the_networks_forward_and_keeps_its_parameters():
    """``compile=true`` compiles the trained network in place (same parameters, same state-dict keys,
    the same outputs); validation-only methods stay eager; off by default."""
    import torch

    from semid.training import SemidModule

    assert SASRecConfig().compile is False
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    module = SemidModule(SASRecConfig(compile=True), {})
    module.model = net
    keys = list(net.state_dict())
    x = torch.randn(5, 4)
    eager = net(x)
    module.on_fit_start()
    assert net._compiled_call_impl is not None and list(net.state_dict()) == keys
    torch.testing.assert_close(net(x), eager)
    plain = torch.nn.Linear(4, 2)
    module = SemidModule(SASRecConfig(), {})
    module.model = plain
    module.on_fit_start()
    assert plain._compiled_call_impl is None
