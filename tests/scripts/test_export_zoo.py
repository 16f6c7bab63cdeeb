"""scripts/export_zoo.py's command line: an unknown model or a missing runs folder is refused
before anything is exported or any card is rewritten."""

from __future__ import annotations

import pytest

from tests.helpers import load_script


@pytest.fixture(scope="module")
def export_zoo():
    return load_script("export_zoo")


def test_unknown_model_is_refused_by_name(export_zoo, tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("nothing may be exported or written")

    monkeypatch.setattr(export_zoo, "export", fail)
    monkeypatch.setattr(export_zoo, "write_card", fail)
    with pytest.raises(SystemExit) as raised:
        export_zoo.main([str(tmp_path), "groupdnet_shapes64", "gropnet_shapes64"])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "unknown MODEL gropnet_shapes64" in error and "groupnet_shapes64" in error


def test_missing_runs_folder_is_refused(export_zoo, tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        export_zoo.main([str(tmp_path / "nowhere"), "groupnet_shapes64"])
    assert raised.value.code == 2
    assert "nowhere is not a folder" in capsys.readouterr().err


def test_help_is_not_read_as_a_runs_folder(export_zoo, capsys):
    with pytest.raises(SystemExit) as raised:
        export_zoo.main(["--help"])
    assert raised.value.code == 0
    assert "RUNS_DIR" in capsys.readouterr().out


def test_models_and_seed_reach_the_export(export_zoo, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(export_zoo, "export", lambda *a: calls.append(("export", *a)))
    monkeypatch.setattr(export_zoo, "write_card", lambda m: calls.append(("card", m)))
    assert export_zoo.main(["--seed", "2", str(tmp_path), "mulnet_shapes64"]) == 0
    assert calls == [("export", tmp_path, "mulnet_shapes64", 2), ("card", "mulnet_shapes64")]
    calls.clear()
    assert export_zoo.main(["--cards-only", str(tmp_path)]) == 0
    assert calls == [("card", m) for m in export_zoo.DESCRIPTIONS]
