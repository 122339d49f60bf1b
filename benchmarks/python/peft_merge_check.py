#!/usr/bin/env python3
"""PEFT's add_weighted_adapter against our merges (see benchmarks/src/peft-merge-check.ts, which
prepares --input). For each combination: PEFT merges the three experts on transformers' model of
the tiny checkpoint (DARE fed our random masks, call by call), and each module's update B A *
scaling of PEFT's merged adapter is compared with ours. Writes OUT/results.json; CPU, float32.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    import numpy as np
    import peft
    import peft.utils.merge_utils as mu
    import transformers
    from peft import PeftModel
    from safetensors.torch import load_file

    inp = args.input
    os.makedirs(args.out, exist_ok=True)
    spec = json.load(open(os.path.join(inp, "combos.json")))
    try:
        base = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(inp, "model"), dtype=torch.float32)
    except TypeError:
        base = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(inp, "model"), torch_dtype=torch.float32)
    names = [f"e{i}" for i in range(len(spec["experts"]))]
    model = PeftModel.from_pretrained(base, os.path.join(inp, spec["experts"][0]), adapter_name=names[0])
    for n, folder in zip(names[1:], spec["experts"][1:]):
        model.load_adapter(os.path.join(inp, folder), adapter_name=n)

    # DARE: our masks, handed out in call order (the same module and adapter order as ours).
    queue: list[torch.Tensor] = []
    original = mu.random_pruning

    def ours_random_pruning(tensor, density, rescale):
        mask = queue.pop(0).reshape(tensor.shape).to(tensor.dtype)
        pruned = tensor * mask
        return pruned / density if rescale else pruned

    results = {"peft": peft.__version__, "transformers": transformers.__version__, "torch": torch.__version__, "combos": {}}
    for c in spec["combos"]:
        entry: dict = {"peft_type": c["peft"]}
        try:
            queue.clear()
            if c["masks"]:
                folder = os.path.join(inp, c["masks"])
                for f in sorted(os.listdir(folder)):
                    queue.append(torch.from_numpy(np.fromfile(os.path.join(folder, f), dtype=np.uint8).astype(np.float32)))
                mu.random_pruning = ours_random_pruning
            kwargs = {"density": c["density"]} if c["density"] is not None else {}
            model.add_weighted_adapter(names, c["weights"], c["name"], combination_type=c["peft"], **kwargs)
            mu.random_pruning = original
            entry["masks_left"] = len(queue)
            ours = load_file(os.path.join(inp, c["dir"], "adapter_model.safetensors"))
            ours_conf = json.load(open(os.path.join(inp, c["dir"], "adapter_config.json")))
            ours_scale = ours_conf["lora_alpha"] / ours_conf["r"]
            worst = 0.0
            ratio = []
            for mod_name, module in model.named_modules():
                if not hasattr(module, "lora_A") or c["name"] not in module.lora_A:
                    continue
                theirs = module.get_delta_weight(c["name"]).float()
                key = f"base_model.model.{mod_name.replace('base_model.model.', '')}"
                a = ours[f"{key}.lora_A.weight"]
                b = ours[f"{key}.lora_B.weight"]
                mine = (b @ a) * ours_scale
                worst = max(worst, ((theirs - mine).abs().max() / max(theirs.abs().max(), 1e-30)).item())
                ratio.append((theirs.norm() / max(mine.norm(), 1e-30)).item())
            entry.update({"max_relative_diff": worst, "norm_ratio_peft_over_ours": [min(ratio), max(ratio)]})
        except Exception as e:  # one failing combination must not lose the others
            import traceback

            mu.random_pruning = original
            entry["error"] = f"{type(e).__name__}: {e}"
            entry["traceback"] = traceback.format_exc()[-2000:]
        results["combos"][c["name"]] = entry
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    print(json.dumps(results, indent=1)[:8000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
