"""GPU benchmarks: cvtool on CuPy against PyTorch on the same GPU, in one run.

Sections (each optional, ``--only knn,mlp,cnn,augment``):

- knn: Fashion-MNIST 60k x 10k, k=5, L2 and L1; cvtool ``kneighbors`` vs
  torch (L2: ||a||^2 + ||b||^2 - 2ab + topk; L1: ``torch.cdist(p=1)`` + topk,
  in row chunks so it fits); prediction agreement between the two.
- mlp: one epoch of [784,100,10] at mini-batch 128 (sigmoid, cross-entropy,
  SGD) and [784,30,10] at mini-batch 10; cvtool ``fit`` vs a torch loop.
- cnn: one epoch of nielsen-ch6 and keras-course at batch 128 with Adam.
- augment: random affine + flip on 10,000 images, cvtool on the device vs the
  same call on the CPU.

Times are medians after a warm-up, with device synchronisation
(``backend.synchronize`` / ``torch.cuda.synchronize``). On a machine without
a GPU (``--backend numpy --device cpu``) the same script is a dry run on
small sizes (``--quick``) so that it is known to work before GPU time is spent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cvtool import backend  # noqa: E402
from cvtool.data.datasets import load_dataset  # noqa: E402


def timed(fn, sync, repeat: int) -> tuple[float, object]:
    """Median seconds of fn() over `repeat` runs after one warm-up; and its last result."""
    result = fn()
    sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bench_knn(data, xp, torch, device, repeat, rows):
    from cvtool.knn import kneighbors

    xtr, xte = data.x_train, data.x_test
    a_tr, a_te = xp.asarray(xtr.reshape(len(xtr), -1)), xp.asarray(xte.reshape(len(xte), -1))
    t_tr = torch.as_tensor(xtr.reshape(len(xtr), -1), dtype=torch.float32, device=device)
    t_te = torch.as_tensor(xte.reshape(len(xte), -1), dtype=torch.float32, device=device)
    sync_x = lambda: backend.synchronize(xp)  # noqa: E731
    sync_t = (lambda: torch.cuda.synchronize()) if device == "cuda" else (lambda: None)

    def torch_knn(metric):
        out = []
        step = 1000 if metric == "l1" else len(t_te)
        for s in range(0, len(t_te), step):
            q = t_te[s : s + step]
            if metric == "l2":
                d = (q * q).sum(1, keepdim=True) + (t_tr * t_tr).sum(1) - 2 * q @ t_tr.T
            else:
                d = torch.cdist(q, t_tr, p=1)
            out.append(torch.topk(d, 5, largest=False).indices)
        return torch.cat(out)

    for metric in ("l2", "l1"):
        sec_c, (_, idx_c) = timed(
            lambda m=metric: kneighbors(a_tr, a_te, 5, m, xp=xp), sync_x, repeat
        )
        sec_t, idx_t = timed(lambda m=metric: torch_knn(m), sync_t, repeat)
        same = float(np.mean(backend.to_numpy(idx_c)[:, 0] == idx_t[:, 0].cpu().numpy()))
        rows.append({"bench": f"knn {metric} k=5", "cvtool_s": sec_c, "torch_s": sec_t,
                     "ratio": sec_c / sec_t, "nearest_agree": same})  # fmt: skip


def bench_augment(data, xp, repeat, rows):
    from cvtool.augment import random_affine_batch

    x_host = data.x_train[:10000]
    kwargs = dict(rotation=15, zoom=0.1, shift=2, hflip=True)
    x_dev = xp.asarray(x_host)
    rng = np.random.default_rng(0)
    sec_d, _ = timed(
        lambda: random_affine_batch(x_dev, rng, xp=xp, **kwargs),
        lambda: backend.synchronize(xp),
        repeat,
    )
    sec_h, _ = timed(
        lambda: random_affine_batch(x_host, rng, xp=np, **kwargs), lambda: None, repeat
    )
    rows.append({"bench": f"augment {len(x_host)} images", "cvtool_s": sec_d, "cpu_s": sec_h,
                 "ratio": sec_d / sec_h, "images_per_s": len(x_host) / sec_d})  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="cupy")
    ap.add_argument("--device", default="cuda", help="torch device: cuda or cpu")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--only", default="knn,mlp,cnn,augment")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes (dry run on the CPU)")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    import torch

    xp = backend.get_xp(args.backend)
    data = load_dataset(args.dataset)
    if args.quick:
        data.x_train, data.y_train = data.x_train[:2000], data.y_train[:2000]
        data.x_test, data.y_test = data.x_test[:500], data.y_test[:500]
    info = {"backend": backend.backend_name(xp), "torch": torch.__version__, "device": args.device}
    if args.device == "cuda":
        info["card"] = torch.cuda.get_device_name(0)
    rows: list[dict] = []
    sections = set(args.only.split(","))
    if "knn" in sections:
        bench_knn(data, xp, torch, args.device, args.repeat, rows)
    if "mlp" in sections or "cnn" in sections:
        from benchmarks.gpu_nets import bench_nets

        bench_nets(data, xp, torch, args.device, args.repeat, rows, sections, args.quick)
    if "augment" in sections:
        bench_augment(data, xp, args.repeat, rows)
    print(json.dumps(info))
    keys = sorted({k for r in rows for k in r} - {"bench"})
    print("bench".ljust(34) + "".join(k.rjust(15) for k in keys))
    for r in rows:
        cells = "".join(
            (f"{r[k]:.4g}" if isinstance(r.get(k), float) else str(r.get(k, ""))).rjust(15)
            for k in keys
        )
        print(r["bench"].ljust(34) + cells)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
