"""Throughput of OpenCLIPEncoder against a plain open_clip loop, in one run.

Both sides use the same model object, preprocessing, tokenizer, inputs and
batch size. The plain loop is the pattern of open_clip's README: open each
image with PIL, preprocess, stack, ``encode_image`` under ``torch.no_grad()``
in float32, normalise, copy to NumPy; texts likewise. The encoder adds what it
is for: a DataLoader (``--num-workers`` decoding processes), pinned memory and
non-blocking copies on CUDA, ``torch.inference_mode`` and autocast
(``--precision``, bf16/fp16 on CUDA by default, fp32 on the CPU).

Timings alternate between the two sides (ABBA order), ``--repeats`` times,
after one warm-up pass each. Throughput comes from the fastest repeat; each
ratio is the median over repeats of plain seconds / encoder seconds measured
side by side (>= 1.0: the encoder is not slower), in wall-clock time and in
this process's CPU time (steadier on a shared, busy CPU machine).

Run::

    python benchmarks/bench_encode.py                      # CPU here: small sizes
    python benchmarks/bench_encode.py --device cuda --n-images 2048 --n-texts 8192 \\
        --batch-size 256 --num-workers 8
"""

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from skgap.encode import OpenCLIPEncoder


def make_inputs(folder, n_images, n_texts, seed=0):
    """PNG files of varied sizes (so resizing does real work) and captions."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n_images):
        h, w = rng.integers(200, 400, size=2)
        arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        path = Path(folder) / f"img{i:05d}.png"
        Image.fromarray(arr).save(path, compress_level=1)
        paths.append(str(path))
    words = "a chest x-ray of the lung with small left pleural effusion and no pneumothorax".split()
    texts = [" ".join(rng.choice(words, size=rng.integers(5, 40))) for _ in range(n_texts)]
    return paths, texts


def plain_images(model, preprocess, device, paths, batch_size):
    out = []
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            batch = torch.stack(
                [preprocess(Image.open(p)) for p in paths[start : start + batch_size]]
            ).to(device)
            feats = model.encode_image(batch)
            feats = feats / feats.norm(dim=-1, keepdim=True)
            out.append(feats.cpu().numpy())
    return np.concatenate(out)


def plain_texts(model, tokenizer, device, texts, batch_size):
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            tokens = tokenizer(texts[start : start + batch_size]).to(device)
            feats = model.encode_text(tokens)
            feats = feats / feats.norm(dim=-1, keepdim=True)
            out.append(feats.cpu().numpy())
    return np.concatenate(out)


def timed(fn):
    """Wall-clock and CPU seconds of this process for ``fn()``, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default=None, help="default: random weights")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--n-images", type=int, default=32)
    parser.add_argument("--n-texts", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for both sides (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    enc = OpenCLIPEncoder(
        model=args.model,
        pretrained=args.pretrained,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        num_workers=args.num_workers,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random weights: a benchmark
        enc.fit()
    rt = enc._runtime  # the same model, preprocessing and tokenizer for both sides
    device = rt.device

    with tempfile.TemporaryDirectory() as folder:
        paths, texts = make_inputs(folder, args.n_images, args.n_texts)
        bs = args.batch_size
        sides = {
            ("image", "plain"): lambda: plain_images(rt.model, rt.preprocess, device, paths, bs),
            ("image", "encoder"): lambda: enc.encode_images(paths),
            ("text", "plain"): lambda: plain_texts(rt.model, rt.tokenizer, device, texts, bs),
            ("text", "encoder"): lambda: enc.encode_texts(texts),
        }
        # Warm-up on a slice (allocator, kernels, page cache).
        plain_images(rt.model, rt.preprocess, device, paths[: args.batch_size], args.batch_size)
        enc.encode_images(paths[: args.batch_size])
        plain_texts(rt.model, rt.tokenizer, device, texts[: args.batch_size], args.batch_size)
        enc.encode_texts(texts[: args.batch_size])

        times = {key: [] for key in sides}
        outputs = {}
        for r in range(args.repeats):
            for modality in ("image", "text"):
                # ABBA order: a load change during the run hits both sides alike.
                order = ("plain", "encoder") if r % 2 == 0 else ("encoder", "plain")
                for side in order:
                    seconds, outputs[(modality, side)] = timed(sides[(modality, side)])
                    times[(modality, side)].append(seconds)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"model {args.model} ({'random weights' if args.pretrained is None else args.pretrained}), "
        f"device {device} [{name}], encoder precision {enc.precision_}, batch {args.batch_size}, "
        f"workers {args.num_workers}, torch threads {torch.get_num_threads()}, "
        f"{args.repeats} paired repeats"
    )
    print(
        f"{'':8}{'plain items/s':>15}{'encoder items/s':>17}{'wall ratio':>12}{'CPU ratio':>11}"
        f"{'max |diff|':>12}"
    )
    for modality, n in (("image", args.n_images), ("text", args.n_texts)):
        plain_t, ours_t = times[(modality, "plain")], times[(modality, "encoder")]
        wall = statistics.median(p[0] / o[0] for p, o in zip(plain_t, ours_t))
        cpu = statistics.median(p[1] / o[1] for p, o in zip(plain_t, ours_t))
        diff = np.abs(outputs[(modality, "plain")] - outputs[(modality, "encoder")]).max()
        print(
            f"{modality + 's':8}{n / min(t[0] for t in plain_t):15.1f}"
            f"{n / min(t[0] for t in ours_t):17.1f}{wall:12.2f}{cpu:11.2f}{diff:12.2e}"
        )
    print(
        "items/s: fastest repeat (wall clock). Ratios: median over repeats of plain / encoder "
        "seconds, timed side by side; >= 1.0 means the encoder is not slower. The CPU ratio "
        "(this process's CPU seconds) is the steadier figure on a shared CPU machine; it "
        "ignores work done in DataLoader worker processes and on a GPU, where the wall "
        "ratio is the one to read."
    )


if __name__ == "__main__":
    main()
