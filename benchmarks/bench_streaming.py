"""Out-of-core statistics: partial_fit over a memory-mapped file larger than RAM budget.

Writes a float32 file of ``n x (2 x d)`` paired embeddings (default 1M x 1024,
4 GB) in ``--dir``, then, in a fresh process (so that its peak RSS is clean):

- the baseline, one read pass over the file (``chunk.sum(axis=0)`` per chunk);
- ``ConeStats.partial_fit`` chunk by chunk (uniformity and the principal axis
  from the bottom-k row sample of ``max_uniformity_samples`` rows);
- ``ModalityGapShifter.partial_fit`` chunk by chunk, then ``transform`` of every
  chunk (output dropped);

and prints each time as a ratio to the read pass (the transform: to a copy
pass, ``np.copy`` of every chunk), and the process's peak RSS
(target: under 1 GB while the data are 4 GB). Each chunk is mapped on its own
(``np.memmap`` with an offset) and unmapped after use, so resident pages never
add up; the file is deleted at the end.

Usage::

    python benchmarks/bench_streaming.py                    # 1M x (2 x 512), 4 GB
    python benchmarks/bench_streaming.py --n 250000         # 1 GB
    python benchmarks/bench_streaming.py --smoke            # tiny, for CI
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def write_file(path, n, d, chunk):
    """CLIP-like paired rows: two cones (image, text) with a gap, raw norms."""
    rng = np.random.default_rng(0)
    axis_v = rng.standard_normal(d).astype(np.float32)
    axis_t = 0.3 * axis_v + rng.standard_normal(d).astype(np.float32)
    axis_v *= 2.0 / np.linalg.norm(axis_v)
    axis_t *= 2.0 / np.linalg.norm(axis_t)
    # Plain file writes: the page cache is not charged to this process's RSS.
    with open(path, "wb") as f:
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            block = rng.standard_normal((rows, 2 * d), dtype=np.float32) / np.float32(np.sqrt(d))
            block[:, :d] += axis_v
            block[:, d:] += axis_t
            block.tofile(f)


def chunks(path, n, width, chunk):
    """Map one chunk at a time; the mapping is released when the chunk is dropped."""
    row_bytes = width * 4
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        yield np.memmap(
            path, dtype=np.float32, mode="r", offset=start * row_bytes, shape=(rows, width)
        )


def worker(path, n, d, chunk, k):
    """Runs in a fresh process; prints one JSON line of timings and peak RSS."""
    import resource

    from skgap.measure._cone_stats import ConeStats
    from skgap.transform._shift import ModalityGapShifter

    def rss_mib():
        """Peak RSS of this process: VmHWM (Linux), else ru_maxrss.

        ru_maxrss can carry the parent's peak over fork and exec; VmHWM
        belongs to this process's own address space.
        """
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    out = {"rss_after_import_mib": rss_mib()}
    width = 2 * d

    start = time.perf_counter()
    total = np.zeros(width)
    for c in chunks(path, n, width, chunk):
        total += c.sum(axis=0)
    out["read_pass_s"] = time.perf_counter() - start

    start = time.perf_counter()
    for c in chunks(path, n, width, chunk):
        np.copy(c)
    out["copy_pass_s"] = time.perf_counter() - start

    start = time.perf_counter()
    stats = ConeStats(max_uniformity_samples=k, random_state=0)
    for c in chunks(path, n, width, chunk):
        stats.partial_fit(c)
    report = stats.report()  # the sampled statistics are computed here
    out["cone_stats_s"] = time.perf_counter() - start

    start = time.perf_counter()
    shifter = ModalityGapShifter(lam=1.0)
    for c in chunks(path, n, width, chunk):
        shifter.partial_fit(c)
    out["shifter_fit_s"] = time.perf_counter() - start

    start = time.perf_counter()
    for c in chunks(path, n, width, chunk):
        shifter.transform(c)
    out["shifter_transform_s"] = time.perf_counter() - start

    out["peak_rss_mib"] = rss_mib()
    out["gap_norm"] = report["gap_norm"]
    out["R_image"] = report["R_image"]
    out["uniformity_image"] = report["uniformity_image"]
    print(json.dumps(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows (pairs)")
    parser.add_argument("--d", type=int, default=512, help="width of each modality")
    parser.add_argument("--chunk", type=int, default=65_536, help="rows per chunk")
    parser.add_argument("--k", type=int, default=5000, help="max_uniformity_samples")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write the file")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        path, n, d, chunk, k = args.worker
        worker(path, int(n), int(d), int(chunk), int(k))
        return
    if args.smoke:
        args.n, args.d, args.chunk, args.k = 5000, 16, 1024, 500

    size = args.n * 2 * args.d * 4
    free = os.statvfs(args.dir)
    if free.f_bavail * free.f_frsize < 1.2 * size:
        sys.exit(f"not enough free disk in {args.dir} for {size / 2**30:.1f} GiB; use --n or --dir")
    fd, path = tempfile.mkstemp(prefix="skgap-stream-", suffix=".f32", dir=args.dir)
    os.close(fd)
    try:
        start = time.perf_counter()
        write_file(path, args.n, args.d, args.chunk)
        print(f"== out-of-core statistics on a {size / 2**30:.2f} GiB float32 memmap")
        print(
            f"   n={args.n}, d={args.d} per modality, chunk={args.chunk} rows "
            f"({args.chunk * 2 * args.d * 4 / 2**20:.0f} MiB), k={args.k}; "
            f"file written in {time.perf_counter() - start:.1f} s"
        )
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", path,
             str(args.n), str(args.d), str(args.chunk), str(args.k)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0:
            sys.exit(proc.stderr)
        res = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        os.remove(path)
    base = res["read_pass_s"]
    print(f"read pass (chunk.sum)          {base:8.2f} s")
    print(f"copy pass (np.copy per chunk)  {res['copy_pass_s']:8.2f} s")
    for key, label, ref, ref_name in [
        ("cone_stats_s", "ConeStats.partial_fit + report", base, "the read pass"),
        ("shifter_fit_s", "ModalityGapShifter.partial_fit", base, "the read pass"),
        ("shifter_transform_s", "ModalityGapShifter.transform", res["copy_pass_s"],
         "the copy pass"),
    ]:
        print(f"{label:<30s} {res[key]:8.2f} s   x{res[key] / ref:5.2f} of {ref_name}")
    print(
        f"peak RSS {res['peak_rss_mib']:.0f} MiB "
        f"(after imports {res['rss_after_import_mib']:.0f} MiB) "
        f"for {size / 2**20:.0f} MiB of data: x{res['peak_rss_mib'] * 2**20 / size:.3f} "
        f"(target < 1 GB: {res['peak_rss_mib'] < 1000})"
    )
    print(
        f"statistics: gap {res['gap_norm']:.4f}, R_image {res['R_image']:.4f}, "
        f"uniformity_image {res['uniformity_image']:.4f}"
    )


if __name__ == "__main__":
    main()
