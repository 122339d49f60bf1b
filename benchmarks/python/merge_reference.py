#!/usr/bin/env python3
"""An independent NumPy implementation of the LoRA merges of plugins/lora-merge, to check them.

Reads a JSON job on stdin:
  {"adapters": [PEFT adapter folders], "weights": [...], "method": {...}, "rank": R,
   "masks": folder of the random masks used by DARE (<module>.<k>.u8, one byte per entry) or null,
   "out": folder}
method: {"sparsify": null | {"method": "magnitude"|"random", "density": d, "rescale": bool},
         "sign": null | "total" | "frequency", "lambda": x}  or  {"cat": true}
and writes, per adapted module (layer.target), <out>/<module>.delta.f64 (the merged full delta,
float64 little-endian, [out, in] row-major) and <out>/report.json with, per module, the singular
values of the delta and the energy a rank-R truncation keeps (np.linalg.svd, full).

Optional keys:
- "space": "factors": PEFT's non-SVD combinations instead: the A's merged with weights
  sign(w s) sqrt(|w s|) and the B's with sqrt(|w s|) (s = the adapter's scaling), lambda applied
  to B; the delta written is B A. DARE masks are then <module>.A.<k>.u8 and <module>.B.<k>.u8.
- "twin": {"shared_rank": Rs, "exclusive_rank": Re}: Twin-Merging's parts: the merged delta is the
  shared part; expert k's exclusive part is its delta (zero where it does not adapt the module)
  minus the shared part. Written: <module>.shared.f64 and <module>.exclusive.<k>.f64, each
  truncated to its rank by a full SVD (U_r S_r V_r^T).

Semantics follow PEFT's merge_utils (magnitude_based_pruning: top int(density * n) by |x|;
random_pruning; calculate_majority_sign_mask; disjoint_merge), written here from their
definitions with NumPy only (Debian's python3-numpy).
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
import sys

import numpy as np

MODULE = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.default)?\.weight$")
DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=DTYPES[meta["dtype"]]).reshape(meta["shape"]).astype(np.float64)
    return out


def read_adapter(folder: str) -> tuple[dict, dict[str, tuple[np.ndarray, np.ndarray]]]:
    with open(os.path.join(folder, "adapter_config.json")) as f:
        conf = json.load(f)
    tensors = read_safetensors(os.path.join(folder, "adapter_model.safetensors"))
    mods: dict[str, dict[str, np.ndarray]] = {}
    for name, t in tensors.items():
        m = MODULE.search(name)
        if m:
            mods.setdefault(f"{m.group(1)}.{m.group(2)}", {})[m.group(3)] = t
    return conf, {k: (v["A"], v["B"]) for k, v in mods.items()}


def scale_of(conf: dict) -> float:
    r = conf["r"]
    return conf["lora_alpha"] / (math.sqrt(r) if conf.get("use_rslora") else r)


def magnitude_mask(t: np.ndarray, density: float) -> np.ndarray:
    flat = np.abs(t.reshape(-1))
    k = int(density * flat.size)
    mask = np.zeros(flat.size, dtype=bool)
    if k > 0:
        # Stable descending order: ties keep the lower index first.
        order = np.argsort(-flat, kind="stable")
        mask[order[:k]] = True
    return mask.reshape(t.shape)


def merge(tasks: list[np.ndarray], weights: list[float], method: dict, masks: list[np.ndarray] | None) -> np.ndarray:
    sp = method.get("sparsify")
    pruned = []
    for k, t in enumerate(tasks):
        if sp is None or sp["density"] >= 1:
            pruned.append(t)
        elif sp["method"] == "magnitude":
            pruned.append(t * magnitude_mask(t, sp["density"]))
        else:
            p = t * masks[k]
            pruned.append(p / sp["density"] if sp["rescale"] else p)
    stacked = np.stack(pruned)
    w = np.asarray(weights, dtype=np.float64).reshape((-1,) + (1,) * (stacked.ndim - 1))
    if method.get("sign") is None:
        out = (stacked * w).sum(axis=0)
    else:
        mass = stacked.sum(axis=0) if method["sign"] == "total" else np.sign(stacked).sum(axis=0)
        majority = np.where(mass >= 0, 1.0, -1.0)
        agree = np.sign(stacked) == majority
        out = (stacked * w * agree).sum(axis=0) / np.maximum(agree.sum(axis=0), 1)
    return out * method["lambda"]


def truncate(m: np.ndarray, rank: int) -> np.ndarray:
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


def read_masks(folder: str | None, prefix: str, count: int, shape: tuple[int, ...]) -> list[np.ndarray] | None:
    if not folder:
        return None
    return [np.fromfile(os.path.join(folder, f"{prefix}.{n}.u8"), dtype=np.uint8).reshape(shape).astype(bool) for n in range(count)]


def main() -> int:
    job = json.load(sys.stdin)
    adapters = [read_adapter(a) for a in job["adapters"]]
    os.makedirs(job["out"], exist_ok=True)
    modules = sorted({k for _, mods in adapters for k in mods}, key=lambda k: (int(k.split(".")[0]), k))
    report = {}
    for key in modules:
        present = [(i, conf, mods[key]) for i, (conf, mods) in enumerate(adapters) if key in mods]
        deltas = [scale_of(conf) * (b @ a) for _, conf, (a, b) in present]
        weights = [job["weights"][i] for i, _, _ in present]
        if job["method"].get("cat"):
            delta = sum(w * d for w, d in zip(weights, deltas))
        elif job.get("space") == "factors":
            ws = [w * scale_of(conf) for w, (_, conf, _) in zip(weights, present)]
            wa = [math.copysign(math.sqrt(abs(w)), w) for w in ws]
            wb = [math.sqrt(abs(w)) for w in ws]
            once = {**job["method"], "lambda": 1.0}
            a_s = [a for _, _, (a, _) in present]
            b_s = [b for _, _, (_, b) in present]
            a = merge(a_s, wa, once, read_masks(job.get("masks"), f"{key}.A", len(present), a_s[0].shape))
            b = merge(b_s, wb, once, read_masks(job.get("masks"), f"{key}.B", len(present), b_s[0].shape)) * job["method"]["lambda"]
            delta = b @ a
        else:
            masks = read_masks(job.get("masks"), key, len(present), deltas[0].shape)
            delta = merge(deltas, weights, job["method"], masks)
        if job.get("twin"):
            tw = job["twin"]
            truncate(delta, tw["shared_rank"]).astype("<f8").tofile(os.path.join(job["out"], f"{key}.shared.f64"))
            for k, (conf, mods) in enumerate(adapters):
                own = scale_of(conf) * (mods[key][1] @ mods[key][0]) if key in mods else np.zeros_like(delta)
                truncate(own - delta, tw["exclusive_rank"]).astype("<f8").tofile(os.path.join(job["out"], f"{key}.exclusive.{k}.f64"))
        delta.astype("<f8").tofile(os.path.join(job["out"], f"{key}.delta.f64"))
        s = np.linalg.svd(delta, compute_uv=False)
        total = float((s**2).sum())
        kept = float((s[: job["rank"]] ** 2).sum())
        report[key] = {"singular": s[: job["rank"] + 2].tolist(), "energy_kept": 1.0 if total == 0 else kept / total, "shape": list(delta.shape)}
    with open(os.path.join(job["out"], "report.json"), "w") as f:
        json.dump(report, f)
    print(json.dumps({"modules": len(report), "numpy": np.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
