"""Atomic checkpoints: round trip, and clear errors for missing, corrupt or foreign files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from atnas.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from atnas.errors import CheckpointError
from atnas.metatrain import MetaState
from tests.atnas.conftest import tiny_state


def test_round_trip_of_tensors_and_json(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "ck.pt"
    payload = {"t": torch.arange(6.0).view(2, 3), "meta": {"a": [1, 2], "b": None}}
    save_checkpoint(path, "thing", payload)
    data = load_checkpoint(path, "thing")
    assert torch.equal(data["t"], payload["t"]) and data["meta"] == payload["meta"]
    assert data["format"] == FORMAT and data["version"] == VERSION and data["kind"] == "thing"
    assert [p.name for p in path.parent.iterdir()] == ["ck.pt"]


def test_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, "thing", {"v": 1})
    save_checkpoint(path, "thing", {"v": 2})
    assert load_checkpoint(path, "thing")["v"] == 2


def test_failed_save_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, "thing", {"v": 1})
    with pytest.raises(Exception):  # noqa: B017 (torch's own pickling error type)
        save_checkpoint(path, "thing", {"v": lambda: 0})
    assert load_checkpoint(path, "thing")["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def _write(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p, "no such checkpoint"),
        (lambda p: (p.write_bytes(b"garbage, not a torch file"), p)[1], "not a readable"),
        (lambda p: (p.write_bytes(b""), p)[1], "not a readable"),
        (lambda p: _write(p, {"some": "dict"}), "not an atnas checkpoint"),
        (lambda p: _write(p, [1, 2, 3]), "not an atnas checkpoint"),
        (
            lambda p: _write(p, {"format": FORMAT, "version": 99, "kind": "meta_state"}),
            "version 99",
        ),
        (lambda p: _write(p, {"format": FORMAT, "version": VERSION, "kind": "other"}), "'other'"),
    ],
    ids=["missing", "garbage", "empty", "foreign-dict", "foreign-list", "version", "wrong-kind"],
)
def test_bad_checkpoints_raise_checkpoint_error(tmp_path: Path, make, fragment: str) -> None:
    path = make(tmp_path / "ck.pt")
    with pytest.raises(CheckpointError, match=fragment):
        load_checkpoint(path, "meta_state")
    with pytest.raises(CheckpointError):
        MetaState.load(path)


def test_truncated_meta_state_raises_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    tiny_state().save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        MetaState.load(path)


def test_meta_state_with_inconsistent_content_raises(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    state = tiny_state()
    state.save(path)
    data = torch.load(path, weights_only=True)
    data["supernet"] = {"nope": torch.zeros(1)}
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="inconsistent"):
        MetaState.load(path)
    del data["population"]
    torch.save(data, path)
    with pytest.raises(CheckpointError):
        MetaState.load(path)


def test_meta_state_round_trip_with_extra(tmp_path: Path) -> None:
    state = tiny_state()
    state.curve = [{"iteration": 1.0, "loss": 0.5}]
    path = tmp_path / "ck.pt"
    state.save(path, extra={"note": "hi"})
    loaded, extra = MetaState.load(path)
    assert extra == {"note": "hi"}
    assert loaded.curve == state.curve and loaded.config == state.config
    assert [(m.encode, m.fitness) for m in loaded.population] == [
        (m.encode, m.fitness) for m in state.population
    ]
    for k, v in state.supernet.state_dict().items():
        assert torch.equal(loaded.supernet.state_dict()[k], v)
