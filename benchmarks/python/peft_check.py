#!/usr/bin/env python3
"""Checks our LoRA training against the real libraries: transformers + PEFT (not installed on the
development machines; the project's GPU machine has both). Reads a folder prepared by
benchmarks/src/peft-check.ts (prepare) and writes results.json and a PEFT-saved adapter into --out,
which peft-check.ts (verify) then reads back with our own loader.

  1. load:   transformers' AutoModelForCausalLM on our tiny checkpoint + PeftModel.from_pretrained on
             the adapter `bdc lm train` wrote; its log-probabilities vs ours (`bdc lm score --adapter`).
  2. train:  get_peft_model(LoraConfig(...)) with the same initial adapter (set_peft_model_state_dict),
             the same micro-batches (plan.json), torch.optim.AdamW, transformers' get_*_schedule_with_warmup,
             clip_grad_norm_: per-step losses and final weights vs ours.
  3. init:   PEFT's own initialisation of lora_A / lora_B (kaiming_uniform(a=sqrt(5)) / zeros) vs ours:
             bounds and moments.
  4. save:   model.save_pretrained(out/peft-saved) for our reader to load (verify step).

Runs on the CPU in float32 (deterministic, like our CPU runs).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True, help="the folder peft-check.ts prepare wrote")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import peft
    import transformers
    from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict, get_peft_model_state_dict
    from safetensors.torch import load_file

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    inp = args.input
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(inp, "check.json")) as f:
        check = json.load(f)
    results: dict = {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}
    model_dir = os.path.join(inp, "model")

    def base():
        try:
            m = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
        except TypeError:  # transformers before `dtype` replaced `torch_dtype`
            m = transformers.AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager")
        return m.float().eval()

    def section(name, fn):
        try:
            results[name] = fn()
        except Exception as e:  # one failing part must not lose the others' results
            import traceback

            results[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1, default=str)

    # 1. PEFT loads the adapter our trainer wrote; log-probabilities against ours.
    tokens = torch.tensor([check["tokens"]])

    def logprobs(m):
        with torch.no_grad():
            logits = m(input_ids=tokens).logits[0].double()
        return torch.log_softmax(logits[:-1], -1).gather(1, tokens[0, 1:, None])[:, 0]

    def load():
        model = PeftModel.from_pretrained(base(), os.path.join(inp, "trained"))
        lp = logprobs(model)
        ours = torch.tensor(check["our_logprobs"], dtype=torch.float64)
        # 4. The adapter saved by PEFT itself, for our reader (verify step), with PEFT's log-probabilities of it.
        model.save_pretrained(os.path.join(args.out, "peft-saved"))
        return {
            "max_abs_logprob_diff": (lp - ours).abs().max().item(),
            "adapter_changes_logprobs_by": (lp - logprobs(base())).abs().max().item(),
            "tokens": len(check["tokens"]),
            "peft_config": model.peft_config["default"].to_dict(),
            "saved_logprobs": lp.tolist(),
        }

    section("load", load)

    # 2. The same training with real PEFT + transformers.
    conf = check["lora"]

    def train():
        return train_with_peft(conf)

    def train_with_peft(conf):
        layers = conf.get("layers")
        only = {} if layers is None else {"layers_to_transform": layers, "layers_pattern": "layers"}
        peft_model = get_peft_model(base().train(), LoraConfig(r=conf["rank"], lora_alpha=conf["alpha"], lora_dropout=0.0, target_modules=conf["targets"], use_rslora=conf["rslora"], task_type="CAUSAL_LM", **only))
        init_state = load_file(os.path.join(inp, "init", "adapter_model.safetensors"))
        missing = set_peft_model_state_dict(peft_model, init_state)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        o = check["optimizer"]
        opt = torch.optim.AdamW(params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"], weight_decay=o["weight_decay"], foreach=False)
        with open(os.path.join(inp, "plan.json")) as f:
            plan = json.load(f)
        total = len(plan["steps"])
        make = {"linear": transformers.get_linear_schedule_with_warmup, "cosine": transformers.get_cosine_schedule_with_warmup}[o["schedule"]]
        sched = make(opt, o["warmup"], total)
        losses = []
        for step in plan["steps"]:
            opt.zero_grad(set_to_none=True)
            step_loss = 0.0
            for mb in step["micro_batches"]:
                ids = torch.tensor(mb["ids"])
                B, S = ids.shape
                mask = torch.zeros(B, S, dtype=torch.long)
                for b, segs in enumerate(mb["segments"]):
                    assert len(segs) == 1, "padding plans only (one example per row)"
                    mask[b, : segs[0][1]] = 1
                logits = peft_model(input_ids=ids, attention_mask=mask, position_ids=torch.tensor(mb["positions"])).logits
                picked = logits.reshape(B * S, -1)[torch.tensor(mb["loss_index"])]
                loss = -(torch.log_softmax(picked.float(), -1).gather(1, torch.tensor(mb["labels"])[:, None])[:, 0]).sum() / step["scored_tokens"]
                loss.backward()
                step_loss += loss.item()
            torch.nn.utils.clip_grad_norm_(params, o["max_grad_norm"])
            opt.step()
            sched.step()
            losses.append(step_loss)
        ours_losses = check["our_losses"]
        final = get_peft_model_state_dict(peft_model)
        ours_final = load_file(os.path.join(inp, "trained", "adapter_model.safetensors"))
        weight_diff = 0.0
        for name, t in final.items():
            key = name if name in ours_final else name.replace(".default", "")
            weight_diff = max(weight_diff, (t.float() - ours_final[key].float()).abs().max().item())
        return {
            "steps": total,
            "losses": losses,
            "our_losses": ours_losses,
            "max_relative_loss_diff": max(abs(a - b) / abs(b) for a, b in zip(ours_losses, losses)),
            "max_weight_diff": weight_diff,
            "unexpected_keys": list(getattr(missing, "unexpected_keys", []) or []),
            "tensors": len(final),
        }

    section("train", train)

    # 3. PEFT's initialisation: A uniform in +-1/sqrt(in) (kaiming_uniform, a=sqrt(5)), B zeros.
    def init():
        fresh = get_peft_model(base(), LoraConfig(r=conf["rank"], lora_alpha=conf["alpha"], target_modules=conf["targets"], task_type="CAUSAL_LM"))
        stats = []
        for name, p in fresh.named_parameters():
            if "lora_A" in name:
                fan_in = p.shape[1]
                stats.append({"name": name, "max_abs_times_sqrt_in": p.abs().max().item() * math.sqrt(fan_in), "var_times_3in": p.var().item() * 3 * fan_in})
            if "lora_B" in name:
                assert p.abs().max().item() == 0.0, name
        return {"modules": len(stats), "max_abs_times_sqrt_in": max(s["max_abs_times_sqrt_in"] for s in stats), "mean_var_times_3in": sum(s["var_times_3in"] for s in stats) / len(stats), "b_all_zero": True}

    section("init", init)
    print(json.dumps(results, indent=1, default=str)[:6000])
    return 0 if all("error" not in v for v in results.values() if isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
