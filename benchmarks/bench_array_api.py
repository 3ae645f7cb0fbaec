"""Transform throughput on torch tensors under scikit-learn's array API dispatch.

With ``sklearn.set_config(array_api_dispatch=True)`` the shifter runs on the
tensor's own device (CUDA on a GPU machine) with no trip through NumPy. The
baseline, measured in the same run on the same device, is ``X.clone()`` (one
read and one write of the tensor). The NumPy path on the same data (CPU) is
printed beside it.

Usage::

    python benchmarks/bench_array_api.py                    # 1M x 1024 on CUDA if present
    python benchmarks/bench_array_api.py --device cpu --n 200000
    python benchmarks/bench_array_api.py --smoke            # tiny, for CI
"""

import argparse
import os

# scikit-learn refuses dispatch unless this is set before SciPy is imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")


import sklearn  # noqa: E402
from _util import best_synced_time, header  # noqa: E402

from skgap.transform._shift import ModalityGapShifter


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows (pairs)")
    parser.add_argument("--d", type=int, default=512, help="width of each modality")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to benchmark")
        return
    if args.smoke:
        args.n, args.d, args.repeat = 2000, 16, 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    header(
        "array API dispatch: ModalityGapShifter.transform on torch",
        n=args.n, d=args.d, device=device,
    )

    gen = torch.Generator(device="cpu").manual_seed(0)
    X = torch.randn(args.n, 2 * args.d, generator=gen, dtype=torch.float32)
    X[:, : args.d] += 0.5
    X = X.to(device)
    sync = torch.cuda.synchronize if X.is_cuda else (lambda: None)
    with sklearn.config_context(array_api_dispatch=True):
        shifter = ModalityGapShifter(lam=1.0).fit(X)
        t_clone = best_synced_time(lambda: X.clone(), sync, args.repeat)
        t_shift = best_synced_time(lambda: shifter.transform(X), sync, args.repeat)
        out = shifter.transform(X)
    gbytes = 2 * X.numel() * X.element_size() / 1e9  # one read and one write
    print(f"X.clone()                 {t_clone:8.4f} s   {gbytes / t_clone:7.1f} GB/s")
    print(
        f"shifter.transform(X)      {t_shift:8.4f} s   {gbytes / t_shift:7.1f} GB/s   "
        f"x{t_shift / t_clone:.2f} of clone; out: {type(out).__module__}.{type(out).__name__} "
        f"on {out.device}, {out.dtype}"
    )
    if not X.is_cuda:
        Xn = X.numpy()
        shifter_np = ModalityGapShifter(lam=1.0).fit(Xn)
        t_np = best_synced_time(lambda: shifter_np.transform(Xn), sync, args.repeat)
        print(
            f"NumPy path (same data)    {t_np:8.4f} s   {gbytes / t_np:7.1f} GB/s   "
            f"x{t_np / t_clone:.2f} of clone"
        )


if __name__ == "__main__":
    main()
