#!/usr/bin/env python3
"""The sentence-embedding pipeline of benchmarks/src/sentence-embed.ts in PyTorch (Debian's
python3-torch): the same tiny BERT-like model (token + type embeddings, one masked self-attention
layer with a residual), the same token ids, batches and padding, then sentence-transformers' mean
pooling and L2 normalisation. Reads --weights (raw float32 E [V, H] then T [2, H]) and --ids (one
JSON list of token ids per line, in batch order); writes the vectors (raw float32 [n, H]) to --out
and prints one JSON line with the seconds of each repeat.
"""
import argparse
import json
import math
import time

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    v, h = args.vocab, args.hidden
    w = torch.from_numpy(__import__("numpy").fromfile(args.weights, dtype="float32"))
    emb = w[: v * h].reshape(v, h)
    types = w[v * h : v * h + 2 * h].reshape(2, h)
    with open(args.ids) as f:
        seqs = [json.loads(line) for line in f]
    batches = []
    for s in range(0, len(seqs), args.batch):
        chunk = seqs[s : s + args.batch]
        length = max(len(c) for c in chunk)
        ids = torch.zeros((len(chunk), length), dtype=torch.long)
        mask = torch.zeros((len(chunk), length), dtype=torch.float32)
        for b, c in enumerate(chunk):
            ids[b, : len(c)] = torch.tensor(c)
            mask[b, : len(c)] = 1
        batches.append((ids, mask))

    def run():
        out = []
        with torch.inference_mode():
            for ids, mask in batches:
                h0 = emb[ids] + types[torch.zeros_like(ids)]
                scores = h0 @ h0.transpose(1, 2) / math.sqrt(h) - (1 - mask[:, None, :]) * 1e4
                states = h0 + torch.softmax(scores, dim=-1) @ h0
                m = mask[:, :, None]
                pooled = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out)

    run()  # warm-up
    seconds = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        vectors = run()
        seconds.append(time.perf_counter() - t)
    vectors.numpy().astype("float32").tofile(args.out)
    print(json.dumps({"seconds": seconds, "torch": torch.__version__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
