#!/usr/bin/env python3
"""The PyTorch side of the device check (benchmarks/src/device-check.ts): what a GPU user would
compare the project with, measured on the same machine in the same run. Eager PyTorch with
Hugging Face transformers (attn_implementation="eager") and PEFT, on CUDA.

  make  --config JSON --out DIR [--dtype bfloat16] [--seed 0] [--device cuda]
        A random-weight LlamaForCausalLM of that config (transformers' own init, std
        initializer_range), saved with save_pretrained (safetensors shards) in --dtype.
        -> {"seconds": ..., "parameters": ...}
  bench --model DIR --dtype float32|float16|bfloat16 --ids FILE --logits-out FILE
        [--prompt-tokens 512] [--decode-tokens 128] [--repeats 3] [--train 1x256,4x512]
        [--rank 8] [--targets q_proj,v_proj] [--device cuda]
        Logits of the ids in FILE (one JSON list) written as raw float32 [len, vocab] to
        --logits-out; prefill tokens/s (one forward of --prompt-tokens); greedy decode tokens/s
        (one token per step on the DynamicCache); one LoRA training step (PEFT r --rank on
        --targets, AdamW, loss over every position) per BxT in --train; peak memory per phase
        (torch.cuda.max_memory_allocated). Every phase is timed after a warm-up, medians of
        --repeats, with torch.cuda.synchronize() around each timing.
        -> one JSON object on stdout; a phase that fails records {"error": "..."} and the
           others still run.
Needs torch, transformers, peft (and safetensors); the GPU machine has them. Exit status 2 with
a last stderr line "device_check_torch: error: ..." when the script cannot run at all.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def timed(device: str, fn) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def phase(results: dict, name: str, fn) -> None:
    """Runs one measurement; a failure is recorded, not fatal (the run is unattended)."""
    try:
        results[name] = fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported in the results
        results[name] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:500]}
        traceback.print_exc(file=sys.stderr)


def make(args: argparse.Namespace) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    config = LlamaConfig(**json.loads(args.config))
    t0 = time.perf_counter()
    with torch.device(args.device):
        model = LlamaForCausalLM(config)
    model = model.to(DTYPES[args.dtype])
    model.save_pretrained(args.out, max_shard_size="5GB")  # safetensors: the default since transformers 4.35
    return {"seconds": time.perf_counter() - t0, "parameters": sum(p.numel() for p in model.parameters())}


def bench(args: argparse.Namespace) -> dict:
    import transformers
    from transformers import LlamaForCausalLM

    device = args.device
    dtype = DTYPES[args.dtype]
    out: dict = {"torch": torch.__version__, "transformers": transformers.__version__, "dtype": args.dtype, "device": device}
    if device.startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
    reset_peak(device)
    try:  # transformers >= 4.56 names it dtype; older ones torch_dtype
        model = LlamaForCausalLM.from_pretrained(args.model, dtype=dtype, attn_implementation="eager")
    except TypeError:
        model = LlamaForCausalLM.from_pretrained(args.model, torch_dtype=dtype, attn_implementation="eager")
    model = model.to(device=device, dtype=dtype).eval()
    out["load_peak_mb"] = peak_mb(device)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)

    def logits() -> dict:
        ids = torch.tensor([json.load(open(args.ids))], device=device)
        with torch.no_grad():
            values = model(ids).logits[0].float().cpu().contiguous()
        with open(args.logits_out, "wb") as f:
            f.write(values.numpy().tobytes())
        return {"shape": list(values.shape), "file": args.logits_out}

    def prefill() -> dict:
        ids = torch.randint(0, vocab, (1, args.prompt_tokens), generator=gen).to(device)
        reset_peak(device)
        with torch.no_grad():
            model(ids)  # warm-up at the timed shape
            times = [timed(device, lambda: model(ids)) for _ in range(args.repeats)]
        s = statistics.median(times)
        return {"tokens": args.prompt_tokens, "seconds": s, "tokens_per_second": args.prompt_tokens / s, "peak_mb": peak_mb(device)}

    def decode() -> dict:
        ids = torch.randint(0, vocab, (1, 32), generator=gen).to(device)
        reset_peak(device)

        def run(n: int) -> float:
            with torch.no_grad():
                o = model(ids, use_cache=True)
                cache = o.past_key_values
                nxt = o.logits[:, -1:].argmax(-1)
                sync(device)
                t0 = time.perf_counter()
                for _ in range(n):
                    o = model(nxt, past_key_values=cache, use_cache=True)
                    cache = o.past_key_values
                    nxt = o.logits[:, -1:].argmax(-1)
                sync(device)
                return time.perf_counter() - t0

        run(4)  # warm-up
        times = [run(args.decode_tokens) for _ in range(args.repeats)]
        s = statistics.median(times)
        return {"tokens": args.decode_tokens, "seconds": s, "tokens_per_second": args.decode_tokens / s, "peak_mb": peak_mb(device)}

    phase(out, "logits", logits)
    phase(out, "prefill", prefill)
    phase(out, "decode", decode)

    shapes = [tuple(int(v) for v in s.split("x")) for s in args.train.split(",") if s]
    if shapes:
        def train_setup():
            import peft

            out["peft"] = peft.__version__
            lora = peft.LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0, target_modules=args.targets.split(","), task_type="CAUSAL_LM")
            m = peft.get_peft_model(model, lora)
            m.train()
            opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
            return m, opt

        try:
            peft_model, opt = train_setup()
        except Exception as e:  # noqa: BLE001
            out["train"] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:500]}
            traceback.print_exc(file=sys.stderr)
        else:
            train: dict = {}
            for batch, tokens in shapes:
                def step_time(batch=batch, tokens=tokens) -> dict:
                    ids = torch.randint(0, vocab, (batch, tokens), generator=gen).to(device)

                    def step() -> None:
                        loss = peft_model(input_ids=ids, labels=ids).loss
                        loss.backward()
                        opt.step()
                        opt.zero_grad(set_to_none=True)

                    reset_peak(device)
                    step()  # warm-up
                    times = [timed(device, step) for _ in range(args.repeats)]
                    s = statistics.median(times)
                    return {"seconds": s, "tokens_per_second": batch * tokens / s, "peak_mb": peak_mb(device)}

                phase(train, f"{batch}x{tokens}", step_time)
            out["train"] = train
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="device_check_torch")
    sub = p.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("make")
    m.add_argument("--config", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--dtype", default="bfloat16", choices=list(DTYPES))
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--device", default="cuda")
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--dtype", default="float32", choices=list(DTYPES))
    b.add_argument("--ids", required=True)
    b.add_argument("--logits-out", required=True)
    b.add_argument("--prompt-tokens", type=int, default=512)
    b.add_argument("--decode-tokens", type=int, default=128)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--train", default="1x256,4x512")
    b.add_argument("--rank", type=int, default=8)
    b.add_argument("--targets", default="q_proj,v_proj")
    b.add_argument("--device", default="cuda")
    args = p.parse_args(argv)
    try:
        result = make(args) if args.mode == "make" else bench(args)
    except Exception as e:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        print(f"device_check_torch: error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
