"""Expert batches (eCLIP) against plain fine-tuning, on the synthetic lesion task.

Three arms are trained for the same steps, on the same data and under the
same seeds, with :class:`skgap.train.ExpertCLIPTrainer`:

- ``plain``: CLIP fine-tuning on (image, report) pairs only;
- ``expert``: plus expert batches from heatmaps centred on the lesion;
- ``random gaze``: plus expert batches from heatmaps centred on a random
  place (the control: as many expert batches, no information in the gaze).

Each seed draws its own data set (:func:`skgap.datasets.make_lesion_task`)
and its own training randomness; within a seed the three arms share both.
On held-out pairs the script measures

- zero-shot accuracy: each image against one prompt per lesion class;
- report R@1: each image against the distinct report texts of the
  held-out set (lesion class x lung zone), hit when its own report ranks
  first (the reports repeat, so this is retrieval among the distinct ones);
- the centroid gap :func:`skgap.metrics.modality_gap`;

and reports each arm's mean and the paired differences (arm minus ``plain``,
and ``expert`` minus ``random gaze``) with a 95% t interval over seeds.
Training throughput (images through the image tower per second, expert
images included) is printed per arm.

The model is a tiny open_clip ViT built with random weights (nothing can
be downloaded here), so the towers learn the task from scratch: the figures
say whether the mechanics help on this task at this size, not what eCLIP
does for a pretrained model on real gaze.

Run::

    python benchmarks/bench_expert.py                  # CPU: small size (minutes)
    python benchmarks/bench_expert.py --smoke          # seconds, for the tests
    python benchmarks/bench_expert.py --device cuda --image-size 64 --n-train 2000 \\
        --steps 1500 --batch-size 64 --seeds 5 --width 256 --layers 6
"""

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import open_clip
import torch
from scipy import stats

from skgap.datasets import make_lesion_task
from skgap.metrics import modality_gap
from skgap.train import ExpertCLIPTrainer

ARMS = ("plain", "expert", "random gaze")


def register_model(folder, image_size, width, layers, embed_dim):
    name = f"bench-expert-vit-{image_size}-{width}-{layers}"
    cfg = {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": layers, "width": width,
                       "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": width,
                     "heads": max(1, width // 32), "layers": layers},
    }
    path = Path(folder) / f"{name}.json"
    path.write_text(json.dumps(cfg))
    open_clip.add_model_config(path)
    return name


def evaluate(est, test):
    """Zero-shot accuracy, report R@1 among distinct reports, and the gap."""
    enc = est.encoder_
    V = enc.encode_images(list(test.images))
    T = enc.encode_texts(test.texts)
    P = enc.encode_texts(test.prompts)
    zero_shot = float(np.mean((V @ P.T).argmax(axis=1) == test.labels))
    distinct = sorted(set(test.texts))
    own = np.array([distinct.index(t) for t in test.texts])
    D = enc.encode_texts(distinct)
    report_r1 = float(np.mean((V @ D.T).argmax(axis=1) == own))
    return {"zero-shot acc": zero_shot, "report R@1": report_r1,
            "gap": modality_gap(V, T)[1]}


def train_arm(arm, model, args, train, control, seed, out):
    heat = None if arm == "plain" else list(
        (train if arm == "expert" else control).heatmaps)
    est = ExpertCLIPTrainer(
        model, device=args.device, batch_size=args.batch_size, max_steps=args.steps,
        lr=args.lr, head_lr=args.head_lr, weight_decay=0.05,
        cold_start_steps=args.steps // 10, warmup_steps=3 * args.steps // 10,
        cooldown_steps=4 * args.steps // 10, min_prob=0.05, max_prob=0.5,
        processor_patch_size=8, processor_width=args.width, processor_heads=4,
        validation_fraction=0.0, eval_every=args.steps, output_dir=out,
        random_state=seed,
    )
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(list(train.images), train.texts, heatmaps=heat,
                snippets=None if heat is None else train.snippets)
    seconds = time.perf_counter() - tic
    n_expert = sum(r["expert_batches"] for r in est.history_[1:])
    images = args.steps * args.batch_size + n_expert * args.batch_size
    return est, images / seconds, n_expert


def interval(diffs):
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        return float(d.mean()), float("nan")
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size)
    return float(d.mean()), float(half)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="seconds-long run for the tests")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--n-train", type=int, default=240)
    p.add_argument("--n-test", type=int, default=120)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--head-lr", type=float, default=1e-3)
    args = p.parse_args()
    if args.smoke:
        args.seeds, args.n_train, args.n_test, args.steps, args.batch_size = 2, 24, 12, 10, 8
        args.width, args.layers = 32, 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"device {args.device}; {args.seeds} seeds; {args.n_train} train / {args.n_test} "
          f"held-out pairs of {args.image_size}px; {args.steps} steps of {args.batch_size}; "
          f"tiny ViT width {args.width}, {args.layers} layers, random init")
    results = {arm: [] for arm in ARMS}
    speed = {arm: [] for arm in ARMS}
    experts = {arm: [] for arm in ARMS}
    with tempfile.TemporaryDirectory() as tmp:
        model = register_model(tmp, args.image_size, args.width, args.layers, 32)
        for seed in range(args.seeds):
            n = args.n_train + args.n_test
            data = make_lesion_task(n, image_size=args.image_size, random_state=seed)
            control = make_lesion_task(n, image_size=args.image_size, heatmaps="random",
                                       random_state=seed)
            train = type(data)(**{k: v[:args.n_train] for k, v in data.items()
                                  if k not in ("class_names", "prompts")},
                               class_names=data.class_names, prompts=data.prompts)
            ctrl = type(data)(heatmaps=control.heatmaps[:args.n_train])
            test = type(data)(**{k: v[args.n_train:] for k, v in data.items()
                                 if k not in ("class_names", "prompts")},
                              class_names=data.class_names, prompts=data.prompts)
            for arm in ARMS:
                est, ips, n_exp = train_arm(arm, model, args, train, ctrl, seed,
                                            Path(tmp) / f"{arm}-{seed}")
                results[arm].append(evaluate(est, test))
                speed[arm].append(ips)
                experts[arm].append(n_exp)
            print(f"seed {seed}: " + "; ".join(
                f"{arm}: " + ", ".join(f"{k} {v:.3f}" for k, v in results[arm][-1].items())
                for arm in ARMS), flush=True)
    metrics = list(results["plain"][0])
    chance = 1 / len(data.class_names)
    print(f"\nmeans over {args.seeds} seeds (zero-shot chance {chance:.3f})")
    for arm in ARMS:
        cells = ", ".join(f"{m} {np.mean([r[m] for r in results[arm]]):.3f}" for m in metrics)
        print(f"  {arm:<12s} {cells}; expert batches/run {np.mean(experts[arm]):.1f}; "
              f"train images/s {np.median(speed[arm]):.0f}")
    print("\npaired differences, mean [95% t interval over seeds]")
    for a, b in (("expert", "plain"), ("random gaze", "plain"), ("expert", "random gaze")):
        cells = []
        for m in metrics:
            mean, half = interval([x[m] - y[m] for x, y in zip(results[a], results[b])])
            cells.append(f"{m} {mean:+.3f} [{mean - half:+.3f}, {mean + half:+.3f}]")
        print(f"  {a} - {b}: " + "; ".join(cells))


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    main()
