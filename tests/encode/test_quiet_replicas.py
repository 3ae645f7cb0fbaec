"""The tiny random model helpers print nothing of transformers' own (skgap/encode/_replicas.py)."""

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("torch")


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_save_random_model_is_quiet_and_restores_the_logging(tmp_path, kind, capfd):
    from skgap.encode import save_random_model

    logging = transformers.utils.logging
    before = (logging.get_verbosity(), logging.is_progress_bar_enabled())
    save_random_model(tmp_path / kind, kind)
    out, err = capfd.readouterr()
    assert "[transformers]" not in out + err
    assert "Writing model shards" not in out + err
    assert (logging.get_verbosity(), logging.is_progress_bar_enabled()) == before
