"""Model files: config + weights round trip, deployed and half-precision files, safe loading."""

from __future__ import annotations

import pickle

import pytest
import torch

from sr_kit.config import LMSWNConfig
from sr_kit.models import CheckpointError, build_model, deploy, load_model, save_model


def _small_lmswn():
    torch.manual_seed(0)
    return build_model(LMSWNConfig(scale=2, channels=16, num_blocks=2, head="dilated"))


def test_round_trip_rebuilds_the_exact_network(tmp_path):
    model = _small_lmswn().eval()
    path = save_model(model, tmp_path / "m.pt", meta={"command": "test"})
    loaded = load_model(path)
    assert loaded.config == model.config
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # atomic write


def test_deployed_and_half_precision_files(tmp_path):
    model = _small_lmswn().eval()
    fused = deploy(model)
    save_model(fused, tmp_path / "d.pt", graph="deploy")
    save_model(fused, tmp_path / "h.pt", graph="deploy", half=True)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(load_model(tmp_path / "d.pt")(x), ref, atol=1e-5, rtol=0)
        # float16 weights: about 3 decimal digits, so a looser but still tight tolerance
        torch.testing.assert_close(load_model(tmp_path / "h.pt")(x), ref, atol=5e-3, rtol=0)
    assert (tmp_path / "h.pt").stat().st_size < 0.7 * (tmp_path / "d.pt").stat().st_size


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    bad = tmp_path / "evil.pt"
    torch.save({"format": "sr-kit-model/1", "payload": Evil()}, bad)
    with pytest.raises(CheckpointError, match="not a loadable"):
        load_model(bad)
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match=r"raw\.pkl"):
        load_model(tmp_path / "raw.pkl")


def test_bad_files_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="no such model file"):
        load_model(tmp_path / "missing.pt")
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="expected format"):
        load_model(tmp_path / "plain.pt")
    model = _small_lmswn()
    save_model(model, tmp_path / "m.pt")
    data = torch.load(tmp_path / "m.pt", weights_only=True)
    data["config"]["channels"] = 24  # weights no longer fit
    torch.save(data, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="weights do not fit lmswn"):
        load_model(tmp_path / "wrong.pt")
    data["config"]["asym"] = "maybe"
    torch.save(data, tmp_path / "badcfg.pt")
    with pytest.raises(CheckpointError, match="stored config is not valid"):
        load_model(tmp_path / "badcfg.pt")


def test_provenance_with_non_plain_values_still_loads_safely(tmp_path):
    model = _small_lmswn()
    meta = {"torch": torch.__version__, "path": tmp_path, "metrics": [{"psnr": 30.5}]}
    save_model(model, tmp_path / "m.pt", meta=meta)
    data = torch.load(tmp_path / "m.pt", weights_only=True)
    assert data["meta"] == {"torch": str(torch.__version__), "path": str(tmp_path),
                            "metrics": [{"psnr": 30.5}]}  # fmt: skip
    assert load_model(tmp_path / "m.pt").config == model.config


def test_the_committed_checkpoints_still_load():
    """checkpoints/*.pt were written before run configs existed; they load as they are."""
    from pathlib import Path

    from sr_kit.models import load_model
    from sr_kit.models.checkpoint import read_model_file

    repo = Path(__file__).resolve().parents[1]
    files = sorted((repo / "checkpoints").glob("*.pt"))
    assert [f.name for f in files] == ["lmswn_x4_embedded_cpu.pt", "safdnet_x4_embedded_cpu.pt"]
    for f in files:
        model = load_model(f)
        meta = read_model_file(f)["meta"]
        assert model.config.name == meta["model"] and model.config.scale == 4
        assert meta["steps"] > 0 and meta["metrics"]
