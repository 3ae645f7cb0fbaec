"""The README's encoder example runs as written, with the extras it names."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_encoder_example_runs(tmp_path, monkeypatch, capsys):
    for module in ("torch", "open_clip", "transformers", "pandas"):
        pytest.importorskip(module)
    text = README.read_text(encoding="utf-8")
    section = text.split("## From images and reports to embeddings", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "TransformersEncoder" in code and "pd.DataFrame" in code
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "gap_norm" in out
    assert (tmp_path / "tiny-siglip" / "config.json").is_file()
