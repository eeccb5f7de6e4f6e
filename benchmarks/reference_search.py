"""Reference-bank scoring speed: pathview's chunked exact k-NN against a per-query numpy loop.

    .venv/bin/python benchmarks/reference_search.py [--bank 1000000] [--queries 2000] [--dim 73] [--device cpu]

The bank is random (speed does not depend on the values); the naive way runs on a subset of
the queries and is extrapolated, which the output says. Both give the same distances (checked).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pathview.analysis.reference import K_NEIGHBOURS, knn_mean_distance


def naive(queries: np.ndarray, bank: np.ndarray, k: int) -> np.ndarray:
    out = np.empty(len(queries), np.float32)
    for i, q in enumerate(queries):
        d = np.sqrt(((bank - q) ** 2).sum(1))
        out[i] = np.partition(d, k - 1)[:k].mean()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bank", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=73, help="73 = the built-in encoder; 1024 = UNI")
    ap.add_argument("--naive-queries", type=int, default=40)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    bank = rng.standard_normal((args.bank, args.dim), dtype=np.float32)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)

    t = time.perf_counter()
    fast = knn_mean_distance(queries, bank, k=K_NEIGHBOURS, device=args.device)
    t_fast = time.perf_counter() - t
    m = min(args.naive_queries, args.queries)
    t = time.perf_counter()
    slow = naive(queries[:m], bank, K_NEIGHBOURS)
    t_naive = (time.perf_counter() - t) * args.queries / m
    assert np.allclose(fast[:m], slow, rtol=1e-3, atol=1e-3), "the two ways disagree"
    print(f"bank {args.bank:,} x {args.dim}, {args.queries:,} queries, k={K_NEIGHBOURS}, device {args.device}")
    print(f"pathview knn_mean_distance: {t_fast:.2f} s ({args.queries / t_fast:,.0f} queries/s)")
    print(f"naive numpy loop: {t_naive:.1f} s (extrapolated from {m} queries)")
    print(f"ratio: {t_naive / t_fast:.1f}x")


if __name__ == "__main__":
    main()
