"""Every GPU measurement in one script (< 5 minutes on one GPU), one table.

Parts (``--parts``, all by default), each against a baseline timed in the same
run on the same device:

``transform``
    ``ModalityGapShifter.transform`` of an ``n x 2d`` float32 torch tensor under
    scikit-learn's array API dispatch, against ``X.clone()`` (a device-to-device
    copy: one read, one write). Goal: <= 2x the copy.
``cone``
    ``ConeStats(max_uniformity_samples=1000).fit`` on the same tensor, against
    one ``X.sum(dim=0)`` pass.
``cv``
    The cross-validated lambda search (11 lambdas x 5 folds, binary, ``roc_auc``):
    ``ModalityGapShifterCV`` on NumPy (the CPU path, one BLAS thread per fit)
    against a torch prototype on the device -- per fold the shifter is fitted on
    the device (array API), each lambda's features are written out there and a
    float64 L-BFGS (``torch.optim.LBFGS``, strong Wolfe) minimises the same
    objective as ``LogisticRegression`` (mean log-loss plus
    ``|w|^2 / (2 C n)``), warm-started along the lambda path. The table gives
    the speed-up and the largest difference of mean CV AUC between the two.
``encode``
    ``skgap.encode.OpenCLIPEncoder`` images/s and texts/s against a plain
    open_clip loop (preprocess, stack, ``encode_*`` under ``torch.autocast``
    on CUDA -- AMP -- or float32 on the CPU), same architecture with random
    weights (nothing is downloaded), same inputs (PNG files of 200-400 px,
    captions of 5-40 words) and batch size.
``archive``
    The distributed encoder: :func:`skgap.encode.encode_archive` on a local
    dask cluster of one worker process per visible GPU (each pinned to its
    device), images/s (each with its caption) in total and per GPU over the
    encoding window (first shard's start to last shard's end, from the commit
    records; model loads excluded), against ``OpenCLIPEncoder`` on one GPU in
    this process, same model, inputs and batch size. Goal: per GPU, no slower
    than the single process (ratio <= 1 per GPU, i.e. total ratio <= 1/n_gpu).

Usage::

    python benchmarks/gpu_suite.py                  # full sizes, CUDA (1M x 1024 tensors)
    python benchmarks/gpu_suite.py --parts cv,encode
    python benchmarks/gpu_suite.py --smoke          # tiny, CPU torch (CI)
"""

import argparse
import os

if __name__ == "__main__":  # not on import (a test imports this module): it is process-wide
    os.environ.setdefault("SCIPY_ARRAY_API", "1")

import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from _util import best_synced_time as best_time, header  # noqa: E402

PARTS = ("transform", "cone", "cv", "encode", "archive")


def _sync(device):
    import torch

    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def make_tensor(n, d, device, seed=0):
    """A paired float32 tensor with a modality gap, built on the device."""
    import torch

    gen = torch.Generator(device=device).manual_seed(seed)
    X = torch.randn(n, 2 * d, generator=gen, dtype=torch.float32, device=device)
    X[:, :d] += 0.5
    X[:, d:] -= 0.3
    return X


def part_transform(args, device, X):
    from skgap import ModalityGapShifter

    sync = _sync(device)
    with sklearn.config_context(array_api_dispatch=True):
        shifter = ModalityGapShifter(lam=1.0).fit(X)
        t_copy = best_time(lambda: X.clone(), sync, args.repeat)
        t_shift = best_time(lambda: shifter.transform(X), sync, args.repeat)
        out = shifter.transform(X)
    assert out.device == X.device and out.dtype == X.dtype
    return [("transform", "ModalityGapShifter.transform", t_shift, "X.clone()", t_copy, "<= 2")]


def part_cone(args, device, X):
    from skgap import ConeStats

    sync = _sync(device)
    with sklearn.config_context(array_api_dispatch=True):
        t_sum = best_time(lambda: X.sum(dim=0), sync, args.repeat)
        t_cone = best_time(
            lambda: ConeStats(max_uniformity_samples=1000).fit(X), sync, args.repeat
        )
    return [("cone", "ConeStats(k=1000).fit", t_cone, "X.sum(dim=0)", t_sum, "<= 1.5")]


def torch_lambda_search(X, y, folds, lams, C=1.0, tol=1e-4, max_iter=100):
    """Mean CV AUC of every lambda, fitted on the tensor's device (the prototype).

    ``X`` is a float32 tensor, ``y`` a NumPy 0/1 vector, ``folds`` a list of
    (train, test) NumPy index arrays. Returns an array (n_folds, n_lams).
    """
    import torch
    from sklearn.metrics import roc_auc_score

    from skgap import ModalityGapShifter

    device = X.device
    y_t = torch.as_tensor(y, dtype=torch.float64, device=device)
    scores = np.empty((len(folds), len(lams)))
    for f, (train, test) in enumerate(folds):
        tr = torch.as_tensor(train, device=device)
        te = torch.as_tensor(test, device=device)
        X_tr, X_te, y_tr = X[tr], X[te], y_t[tr]
        n, D = X_tr.shape
        theta = torch.zeros(D + 1, dtype=torch.float64, device=device, requires_grad=True)
        for k in np.argsort(lams, kind="stable"):
            with sklearn.config_context(array_api_dispatch=True):
                shifter = ModalityGapShifter(lam=float(lams[k])).fit(X_tr)
                Z = shifter.transform(X_tr).to(torch.float64)
                Z_te = shifter.transform(X_te).to(torch.float64)
            opt = torch.optim.LBFGS(
                [theta], lr=1, max_iter=max_iter, tolerance_grad=tol,
                tolerance_change=64 * np.finfo(float).eps, history_size=10,
                line_search_fn="strong_wolfe",
            )

            def closure():
                opt.zero_grad()
                raw = Z @ theta[:D] + theta[D]
                loss = torch.mean(torch.nn.functional.softplus(raw) - y_tr * raw)
                loss = loss + 0.5 / (C * n) * torch.sum(theta[:D] ** 2)
                loss.backward()
                return loss

            opt.step(closure)
            with torch.no_grad():
                raw_te = (Z_te @ theta[:D] + theta[D]).cpu().numpy()
            scores[f, k] = roc_auc_score(y[test], raw_te)
    return scores


def part_cv(args, device, _X):
    import torch
    from sklearn.model_selection import StratifiedKFold

    from skgap import ModalityGapShifterCV
    from skgap.datasets import make_paired_embeddings

    X, y = make_paired_embeddings(
        args.cv_n, args.cv_d, 2, preset="coco-clip", noise=12.0, random_state=0
    )
    lams = np.linspace(0.0, 1.0, args.lams)
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(X, y))
    start = time.perf_counter()
    cpu = ModalityGapShifterCV(lams, cv=folds, scoring="roc_auc", select="best").fit(X, y)
    t_cpu = time.perf_counter() - start
    sync = _sync(device)
    Xt = torch.as_tensor(X, device=device)
    sync()
    start = time.perf_counter()
    scores = torch_lambda_search(Xt, y, folds, lams)
    sync()
    t_dev = time.perf_counter() - start
    mean = scores.mean(axis=0)
    diff = np.max(np.abs(mean - cpu.cv_results_["mean_test_score"]))
    same = "same" if int(np.argmax(mean)) == cpu.best_index_ else "other"
    note = f"max |dAUC| {diff:.1e}, {same} lambda"
    return [
        (
            "cv",
            f"torch L-BFGS on {device.type}, {args.cv_n}x{2 * args.cv_d}",
            t_dev, "ModalityGapShifterCV (CPU)", t_cpu, note,
        )
    ]


def _plain_loop(model, preprocess, tokenizer, device, paths, texts, batch_size, amp):
    import torch
    from PIL import Image

    ctx = (
        (lambda: torch.autocast(device_type="cuda", dtype=torch.float16))
        if amp
        else (lambda: torch.autocast(device_type="cpu", enabled=False))
    )

    def images():
        out = []
        with torch.no_grad(), ctx():
            for s in range(0, len(paths), batch_size):
                batch = torch.stack([preprocess(Image.open(p)) for p in paths[s : s + batch_size]])
                f = model.encode_image(batch.to(device, non_blocking=True))
                out.append((f / f.norm(dim=-1, keepdim=True)).float().cpu().numpy())
        return np.concatenate(out)

    def texts_():
        out = []
        with torch.no_grad(), ctx():
            for s in range(0, len(texts), batch_size):
                f = model.encode_text(tokenizer(texts[s : s + batch_size]).to(device))
                out.append((f / f.norm(dim=-1, keepdim=True)).float().cpu().numpy())
        return np.concatenate(out)

    return images, texts_


def part_encode(args, device, _X):
    import open_clip
    import torch
    from bench_encode import make_inputs

    from skgap.encode import OpenCLIPEncoder

    amp = device.type == "cuda"
    enc = OpenCLIPEncoder(
        model=args.model, pretrained=None, device=str(device), batch_size=args.batch_size,
        num_workers=args.num_workers,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights: a benchmark
        enc.fit()
        model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=None)
    model = model.to(device).eval()
    tokenizer = open_clip.get_tokenizer(args.model)
    sync = _sync(device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        paths, texts = make_inputs(folder, args.n_images, args.n_texts)
        plain_img, plain_txt = _plain_loop(
            model, preprocess, tokenizer, device, paths, texts, args.batch_size, amp
        )
        label = f"plain open_clip ({'AMP fp16' if amp else 'fp32'})"
        for name, ours, plain, count in [
            ("images/s", lambda: enc.encode_images(paths), plain_img, args.n_images),
            ("texts/s", lambda: enc.encode_texts(texts), plain_txt, args.n_texts),
        ]:
            t_ours = best_time(ours, sync, args.enc_repeat)
            t_plain = best_time(plain, sync, args.enc_repeat)
            rows.append(
                (
                    "encode",
                    f"OpenCLIPEncoder {name} {count / t_ours:,.0f}",
                    t_ours, f"{label} {count / t_plain:,.0f}", t_plain, "<= 1 (not slower)",
                )
            )
    del torch
    return rows



def _time_encoder(encoder, table, sync, repeat):
    """Best time of ``encoder.transform(table)``."""
    return best_time(lambda: encoder.transform(table), sync, repeat)

def part_archive(args, device, _X):
    import torch
    from bench_encode import make_inputs
    from distributed import Client

    from skgap.encode import OpenCLIPEncoder, encode_archive
    from skgap.encode._archive import local_cluster

    n_gpu = torch.cuda.device_count() if device.type == "cuda" else 1
    shared = dict(model=args.model, pretrained=None, batch_size=args.batch_size,
                  num_workers=args.num_workers)
    sync = _sync(device)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights: a benchmark
        paths, texts = make_inputs(folder, args.n_images, args.n_images)
        table = {"image": paths, "text": texts}
        # The encoder in this process is freed (with its GPU memory) on return.
        t_single = _time_encoder(OpenCLIPEncoder(device=str(device), **shared).fit(), table,
                                 sync, args.enc_repeat)
        # 'auto' spreads local worker i over GPU i; on the CPU, the CPU.
        enc = OpenCLIPEncoder(device="auto" if device.type == "cuda" else str(device), **shared)
        with local_cluster(n_gpu, dashboard_address=":0") as cluster, Client(cluster) as client:
            summary = encode_archive(
                table, enc, f"{folder}/archive", client=client,
                shard_size=max(1, args.n_images // (4 * n_gpu)), progress=False, verbose=False,
            )
    first = min(r["started"] for r in summary.shards)
    busy = max(r["started"] + r["seconds"] for r in summary.shards) - first
    devices = sorted({r["device"] for r in summary.shards})
    n = args.n_images
    return [
        (
            "archive",
            f"encode_archive {n_gpu} worker(s) {n / busy:,.0f}/s, {n / busy / n_gpu:,.0f}/GPU",
            busy, f"OpenCLIPEncoder 1 process {n / t_single:,.0f}/s", t_single,
            f"<= 1/{n_gpu} ({', '.join(devices)})",
        )
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    parser.add_argument("--n", type=int, default=1_000_000, help="rows of the transform tensor")
    parser.add_argument("--d", type=int, default=512, help="width of each modality")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cv-n", type=int, default=100_000, help="rows of the lambda search")
    parser.add_argument("--cv-d", type=int, default=512)
    parser.add_argument("--lams", type=int, default=11)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--n-images", type=int, default=2048)
    parser.add_argument("--n-texts", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-workers", type=int, default=8)
    parser.add_argument("--enc-repeat", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU torch (CI)")
    args = parser.parse_args(argv)
    import torch

    if args.smoke:
        args.device = args.device or "cpu"
        args.n, args.d, args.repeat = 2000, 16, 1
        args.cv_n, args.cv_d, args.lams, args.folds = 300, 8, 3, 2
        args.model, args.n_images, args.n_texts = "ViT-S-32", 2, 4
        args.batch_size, args.num_workers, args.enc_repeat = 2, 0, 1
        torch.set_num_threads(1)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {PARTS}")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    header(
        "GPU suite",
        device=f"{device} [{name}]", torch=torch.__version__, n=args.n, d=args.d,
        cv_n=args.cv_n, model=args.model,
    )
    X = make_tensor(args.n, args.d, device) if {"transform", "cone"} & set(parts) else None
    funcs = {"transform": part_transform, "cone": part_cone, "cv": part_cv, "encode": part_encode,
             "archive": part_archive}
    rows = []
    start = time.perf_counter()
    for part in parts:
        t0 = time.perf_counter()
        rows += funcs[part](args, device, X)
        print(f"   [{part} done in {time.perf_counter() - t0:.1f} s]", flush=True)
    print(
        f"{'part':<10s}{'candidate':<46s}{'s':>9s}  {'baseline':<40s}{'s':>9s}  "
        f"{'ratio':>7s}  goal"
    )
    for part, cand, t_c, base, t_b, goal in rows:
        print(
            f"{part:<10s}{cand:<46s}{t_c:9.4f}  {base:<40s}{t_b:9.4f}  x{t_c / t_b:6.2f}  {goal}"
        )
    print(f"ratio = candidate / baseline seconds; total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
