"""The README's examples run as written, with the extras they name."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _example(heading):
    text = README.read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_quickstart_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("pandas")
    code = _example("## Quickstart")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "verdict" in out and "gap_norm" in out
    # The figures the README's prose quotes.
    summary = namespace["summary"]
    row = summary[(summary.lam == 1) & (summary.metric == "modality_ARI")].iloc[0]
    assert row["verdict"] == "helps" and row["diff"] == pytest.approx(-0.97, abs=0.01)
    # The default rule on the search it prints: lambda = 0 unless some lambda helps at
    # family-wise level 5% (Holm-adjusted p below 0.05, mean above lambda 0's).
    res = namespace["search"].cv_results_
    lams = np.asarray(res["param_lam"], dtype=float)
    mean, p_holm = np.asarray(res["mean_test_score"]), np.asarray(res["p_holm"])
    helps = (p_holm < 0.05) & (mean > mean[lams == 0][0])
    if helps.any():
        chosen = int(np.flatnonzero(res["selected"])[0])
        assert helps[chosen]
    else:
        chosen = int(np.flatnonzero(lams == 0)[0])
    assert namespace["search"].lam_ == pytest.approx(lams[chosen])
    assert np.flatnonzero(res["selected"]).tolist() == [chosen]


def test_readme_encoder_example_runs(tmp_path, monkeypatch, capsys):
    for module in ("torch", "open_clip", "transformers", "pandas"):
        pytest.importorskip(module)
    code = _example("## From images and reports to embeddings")
    assert "TransformersEncoder" in code and "pd.DataFrame" in code
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "gap_norm" in out
    assert (tmp_path / "tiny-siglip" / "config.json").is_file()
