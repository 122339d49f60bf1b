"""The DisenLoRA hypernetwork in PyTorch (float64), for plugins/customize's parity test.

Reads JSON on stdin: {"features": [d+K], "hidden": H, "rank": r, "K": K, "softmax": "all"|"per-rank",
"modules": {key: {"w1": [...], "b1": [...], "w2": [...], "b2": [...], "dG": [...]}}} and writes
{key: {"gates": [...], "grads": {"w1": [...], "b1": [...], "w2": [...], "b2": [...]}}}: the gates
of torch.nn.Linear -> ReLU -> Linear -> softmax, and the gradients of sum(dG * gates) by autograd.
"""
import json
import sys

import torch

torch.set_default_dtype(torch.float64)

req = json.load(sys.stdin)
f = torch.tensor(req["features"])
H, r, K = req["hidden"], req["rank"], req["K"]
R = K * r
out = {}
for key, m in req["modules"].items():
    fc1 = torch.nn.Linear(f.numel(), H)
    fc2 = torch.nn.Linear(H, R)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor(m["w1"]).view(H, f.numel()))
        fc1.bias.copy_(torch.tensor(m["b1"]))
        fc2.weight.copy_(torch.tensor(m["w2"]).view(R, H))
        fc2.bias.copy_(torch.tensor(m["b2"]))
    z = fc2(torch.relu(fc1(f)))
    if req["softmax"] == "all":
        gates = torch.softmax(z, dim=0)
    else:
        # Per rank j, a softmax across the experts k over the slots k*r + j.
        gates = torch.softmax(z.view(K, r), dim=0).reshape(R)
    (gates * torch.tensor(m["dG"])).sum().backward()
    out[key] = {
        "gates": gates.detach().tolist(),
        "grads": {"w1": fc1.weight.grad.reshape(-1).tolist(), "b1": fc1.bias.grad.tolist(), "w2": fc2.weight.grad.reshape(-1).tolist(), "b2": fc2.bias.grad.tolist()},
    }
json.dump(out, sys.stdout)
