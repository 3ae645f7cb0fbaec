"""ExpertCLIPTrainer on a tiny random-weight open_clip model and the synthetic lesion task."""

import json
import pickle

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")
from sklearn.base import clone  # noqa: E402

from skgap.datasets import make_lesion_task  # noqa: E402
from skgap.encode import OpenCLIPEncoder  # noqa: E402
from skgap.encode._loading import RANDOM_SEED  # noqa: E402
from skgap.train import ExpertCLIPTrainer, HeatmapProcessor, expert_probability  # noqa: E402
from skgap.train import _expert  # noqa: E402

pytestmark = pytest.mark.usefixtures("hub_offline", "torch_one_thread")

TINY = "skgap-expert-test-tiny"
TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("configs") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)
    return TINY


@pytest.fixture(scope="module")
def data():
    return make_lesion_task(24, image_size=32, random_state=0)


def make(tiny, tmp_path, **kw):
    params = dict(device="cpu", batch_size=6, max_steps=6, cold_start_steps=2, warmup_steps=2,
                  cooldown_steps=1, processor_patch_size=8, processor_width=16,
                  processor_heads=2, eval_every=3, lr=1e-3, head_lr=1e-2, random_state=0,
                  output_dir=tmp_path / "model")
    params.update(kw)
    return ExpertCLIPTrainer(tiny, **params)


def fit(est, data, heatmaps=True):
    return est.fit(list(data.images), data.texts,
                   heatmaps=list(data.heatmaps) if heatmaps else None,
                   snippets=data.snippets if heatmaps else None)


def state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_fit_records_history_and_exports_an_encoder(tiny, data, tmp_path):
    est = fit(make(tiny, tmp_path), data)
    hist = est.history_
    assert [r["step"] for r in hist] == list(range(7))
    evaluated = [r["step"] for r in hist if "gap" in r]
    assert evaluated == [0, 3, 6]
    for r in hist[1:]:
        assert np.isfinite(r["loss"]) and r["temperature"] > 0
        # The reconstruction term is mixed in during the cold start only.
        assert np.isfinite(r["mse"]) == (r["step"] <= 2)
    last = hist[-1]
    for key in ("gap", "R_image", "R_text", "alignment", "uniformity_image",
                "i2t_recall@1", "t2i_recall@1", "valid_clip"):
        assert np.isfinite(last[key])
    assert 0 <= last["gap"] <= 2 and 0 <= last["R_image"] <= 1
    assert est.n_steps_ == 6 and est.n_expert_pairs_ == 24
    # encoder_ loads the fine-tuned weights: its embeddings are the model's own.
    assert isinstance(est.encoder_, OpenCLIPEncoder)
    X = est.encoder_.fit_transform(list(zip(list(data.images[:4]), data.texts[:4])))
    assert X.shape == (4, 32) and X.dtype == np.float32
    tokens = open_clip.get_tokenizer(tiny)(data.texts[:4])
    with torch.no_grad():
        T = torch.nn.functional.normalize(est.model_.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(X[:, 16:], T, atol=1e-5)
    # ... and differ from the untrained model's.
    with pytest.warns(UserWarning, match="random weights"):
        X0 = OpenCLIPEncoder(tiny, device="cpu").fit_transform(
            list(zip(list(data.images[:4]), data.texts[:4])))
    assert not np.allclose(X0, X, atol=1e-3)
    clone(est)
    restored = pickle.loads(pickle.dumps(est))
    assert [r["loss"] for r in restored.history_[1:]] == [r["loss"] for r in hist[1:]]
    assert not hasattr(restored, "model_")
    np.testing.assert_array_equal(restored.encoder_.transform(
        list(zip(list(data.images[:4]), data.texts[:4]))), X)


def test_expert_batches_follow_the_schedule(tiny, data, tmp_path):
    est = fit(make(tiny, tmp_path, max_steps=50, cold_start_steps=5, warmup_steps=0,
                   cooldown_steps=0, min_prob=0.5, max_prob=0.5, eval_every=100,
                   validation_fraction=0.0), data)
    steps = est.history_[1:]
    assert all(r["expert_batches"] == 0 for r in steps[:6])  # p = 0 up to step S_c
    rest = [r["expert_batches"] for r in steps[6:]]
    assert all(r["expert_probability"] == 0.5 for r in steps[6:])
    # 44 Bernoulli(0.5) draws: 22 +- 3.3; four standard deviations either way.
    assert 22 - 13 <= sum(rest) <= 22 + 13
    lam = [r["mixup_lambda"] for r in steps if r["expert_batches"]]
    assert all(0 < v < 1 for v in lam)
    never = fit(make(tiny, tmp_path, max_steps=10, min_prob=0.0, max_prob=0.0), data)
    assert sum(r["expert_batches"] for r in never.history_[1:]) == 0


def test_processor_and_projections_learn_when_the_towers_are_frozen(tiny, data, tmp_path):
    est = make(tiny, tmp_path, train_image_tower=False, train_text_tower=False,
               cold_start_steps=0, warmup_steps=0, cooldown_steps=0, min_prob=1.0,
               max_prob=1.0, max_steps=4)
    fit(est, data)
    # The run builds its processor first thing after seeding torch with its seed.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.RandomState(0).randint(2**31 - 1)))
        init = state(HeatmapProcessor(3, 8, 16, 2))
    after = state(est.processor_)
    assert all(not torch.allclose(init[k], after[k]) for k in init)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)  # the seed of the encode stage's random weights
        base = open_clip.create_model(tiny).state_dict()
    fine = est.model_.state_dict()
    changed = {k for k in base if not torch.allclose(base[k], fine[k])}
    assert "visual.proj" in changed and "text_projection" in changed
    assert "logit_scale" in changed  # the learned temperature is written back
    assert changed <= {"visual.proj", "text_projection", "logit_scale"}


def test_processor_receives_gradients_through_the_image_tower(tiny, data, tmp_path, monkeypatch):
    grads = []
    real = torch.optim.AdamW.step

    def spy(self, *a, **k):
        grads.append([p.grad is not None and bool(p.grad.abs().sum() > 0)
                      for g in self.param_groups[1:2] for p in g["params"]])
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    fit(make(tiny, tmp_path, cold_start_steps=0, warmup_steps=0, cooldown_steps=0,
             min_prob=1.0, max_prob=1.0, max_steps=3, mixup_alpha=0.0), data)
    # Step 0 has p = 0; from step 1 on every step has an expert batch.
    assert grads[1] and all(grads[1]) and all(grads[2])


def test_plain_fine_tuning_without_heatmaps(tiny, data, tmp_path):
    est = fit(make(tiny, tmp_path, max_steps=5), data, heatmaps=False)
    assert est.processor_ is None and est.n_expert_pairs_ == 0
    assert all(r["expert_batches"] == 0 and np.isnan(r["mse"]) for r in est.history_[1:])


def test_resume_after_kill_reproduces_the_uninterrupted_run(tiny, data, tmp_path, monkeypatch):
    full = fit(make(tiny, tmp_path, max_steps=6, checkpoint_dir=tmp_path / "a",
                    checkpoint_every=2, min_prob=0.6, max_prob=0.9), data)
    calls = []
    real = _expert._Run.train_step

    def killed(self, step):
        calls.append(step)
        if step == 3 and len(calls) == 4:
            raise KeyboardInterrupt("killed")
        return real(self, step)

    monkeypatch.setattr(_expert._Run, "train_step", killed)
    est = make(tiny, tmp_path, max_steps=6, checkpoint_dir=tmp_path / "b",
               checkpoint_every=2, min_prob=0.6, max_prob=0.9)
    with pytest.raises(KeyboardInterrupt):
        fit(est, data)
    assert (tmp_path / "b" / _expert.CHECKPOINT_NAME).is_file()
    calls.clear()
    fit(est, data)
    assert calls == [2, 3, 4, 5]  # resumed at the checkpoint of step 2
    a, b = full.model_.state_dict(), est.model_.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)
    for k, v in full.processor_.state_dict().items():
        torch.testing.assert_close(v, est.processor_.state_dict()[k], atol=1e-6, rtol=1e-5)
    assert [r["expert_batches"] for r in full.history_[1:]] == \
        [r["expert_batches"] for r in est.history_[1:]]
    assert sum(r["expert_batches"] for r in full.history_[1:]) > 0
    np.testing.assert_allclose([r["loss"] for r in full.history_[1:]],
                               [r["loss"] for r in est.history_[1:]], rtol=1e-5)
    # Another run's settings are refused rather than mixed in.
    with pytest.raises(ValueError, match="checkpoint of another run"):
        fit(make(tiny, tmp_path, max_steps=6, checkpoint_dir=tmp_path / "b",
                 checkpoint_every=2, lr=5e-4), data)
    other = make_lesion_task(24, image_size=32, random_state=1)
    with pytest.raises(ValueError, match="run on other data"):
        fit(make(tiny, tmp_path, max_steps=6, checkpoint_dir=tmp_path / "b",
                 checkpoint_every=2, min_prob=0.6, max_prob=0.9), other)


def test_bad_inputs(tiny, data, tmp_path):
    images, texts = list(data.images), data.texts
    heat = list(data.heatmaps)
    with pytest.raises(ValueError, match=r"heatmaps\[1\] has size 16x16 but its image is 32x32"):
        make(tiny, tmp_path).fit(images, texts, heatmaps=[heat[0], np.ones((16, 16))] + heat[2:])
    with pytest.raises(ValueError, match=r"heatmaps\[0\] has negative values"):
        make(tiny, tmp_path).fit(images, texts, heatmaps=[-heat[0]] + heat[1:])
    with pytest.raises(ValueError, match=r"heatmaps\[2\] is all zero"):
        make(tiny, tmp_path).fit(images, texts, heatmaps=heat[:2] + [0 * heat[2]] + heat[3:])
    with pytest.raises(ValueError, match="phases exceed the run"):
        make(tiny, tmp_path, max_steps=4, cold_start_steps=2, warmup_steps=2,
             cooldown_steps=1).fit(images, texts, heatmaps=heat)
    with pytest.raises(ValueError, match="texts has 3 entries but there are 24 images"):
        make(tiny, tmp_path).fit(images, texts[:3])
    with pytest.raises(ValueError, match="snippets were given without heatmaps"):
        make(tiny, tmp_path).fit(images, texts, snippets=data.snippets)
    with pytest.raises(ValueError, match="min_prob=0.6 exceeds max_prob=0.2"):
        make(tiny, tmp_path, min_prob=0.6, max_prob=0.2).fit(images, texts, heatmaps=heat)


def test_schedule_in_steps_is_the_three_phase_formula():
    S, Sc, Sw, Sa, lo, hi = 40, 5, 10, 12, 0.1, 0.7

    def reference(s):
        if s <= Sc:
            return 0.0
        if s <= Sc + Sw:
            return lo + (hi - lo) * (s - Sc) / Sw
        if s <= Sc + Sw + Sa:
            return hi - (hi - lo) * (s - Sc - Sw) / Sa
        return lo

    steps = np.arange(S)
    got = expert_probability(steps, S, cold_start=Sc, warmup=Sw, anneal=Sa, min_prob=lo,
                             max_prob=hi, unit="steps")
    np.testing.assert_allclose(got, [reference(s) for s in steps])
    # The same schedule given as fractions of the run.
    frac = expert_probability(steps, S, cold_start=Sc / S, warmup=Sw / S, anneal=Sa / S,
                              min_prob=lo, max_prob=hi)
    np.testing.assert_allclose(frac, got)
    with pytest.raises(ValueError, match=r"5 \+ 10 \+ 30 = 45 steps > n_steps = 40"):
        expert_probability(0, S, cold_start=5, warmup=10, anneal=30, unit="steps")
    with pytest.raises(ValueError, match="integer >= 0"):
        expert_probability(0, S, cold_start=0.5, unit="steps")
    with pytest.raises(ValueError, match="unit must be"):
        expert_probability(0, S, unit="epochs")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_and_gradient_accumulation(tiny, data, tmp_path, precision):
    est = fit(make(tiny, tmp_path, precision=precision, grad_accumulation=2, max_steps=5,
                   min_prob=1.0, max_prob=1.0), data)
    assert est.precision_ == precision
    steps = est.history_[1:]
    assert all(np.isfinite(r["loss"]) for r in steps)
    # Each micro-batch draws its own expert batch: two per step after step S_c = 2.
    assert [r["expert_batches"] for r in steps] == [0, 0, 0, 2, 2]
