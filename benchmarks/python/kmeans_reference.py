#!/usr/bin/env python3
"""scikit-learn's KMeans on the vectors our spherical k-means clusters (benchmarks/src/kmeans.ts):
the time of KMeans(n_clusters=k, n_init=4).fit on float32 unit rows, and the cosine objective of its
partition (each cluster's normalised mean direction, summed cosines: what spherical k-means
maximises), so both are compared on one objective. Reads --vectors (raw float32 [n, d]); prints
one JSON line. Debian's python3-sklearn.
"""
import argparse
import json
import os
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--d", type=int, required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--n-init", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import sklearn
    from sklearn.cluster import KMeans

    x = np.fromfile(args.vectors, dtype=np.float32).reshape(args.n, args.d)
    times, objectives = [], []
    for rep in range(args.repeats):
        t = time.perf_counter()
        km = KMeans(n_clusters=args.k, n_init=args.n_init, random_state=rep, algorithm="lloyd").fit(x)
        times.append(time.perf_counter() - t)
        obj = 0.0
        for c in range(args.k):
            members = x[km.labels_ == c]
            if len(members) == 0:
                continue
            m = members.astype(np.float64).sum(axis=0)
            m /= np.linalg.norm(m)
            obj += float((members @ m).sum())
        objectives.append(obj)
    print(json.dumps({"seconds": times, "objectives": objectives, "sklearn": sklearn.__version__, "threads": os.environ.get("OMP_NUM_THREADS")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
