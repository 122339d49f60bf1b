/**
 * The hypernetwork's forward (gates) and backward (parameter gradients for given dL/dG) against
 * PyTorch's nn.Linear / ReLU / softmax and autograd in float64 (benchmarks/python/hypernet_reference.py),
 * both softmax modes: within 1e-7 (the arithmetic is float64 on both sides; our gradients are
 * returned as float32, which rounds them at ~6e-9 here).
 */
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { Hypernetwork, paramNames, type SoftmaxMode } from "@bdc/customize";
import { mulberry32 } from "@bdc/lm-local";
import { torchOrSkip } from "../torch.ts";

const script = path.resolve(import.meta.dirname, "../../benchmarks/python/hypernet_reference.py");

for (const softmax of ["all", "per-rank"] as const satisfies ReadonlyArray<SoftmaxMode>) {
  test(`softmax ${softmax}: gates and gradients equal PyTorch's (1e-7)`, (t) => {
    const python = torchOrSkip(t);
    if (python === undefined) return;
    const D = 7;
    const K = 3;
    const rand = mulberry32(17);
    const centroids = Float32Array.from({ length: K * D }, () => rand() - 0.5);
    const net = Hypernetwork.init({ encoder: { model: "m", dimension: D }, experts: ["a", "b", "c"], rank: 2, hidden: 6, layers: [0, 1], targets: ["q_proj"], softmax, gateScale: "mean" }, centroids, 3);
    const e = Float32Array.from({ length: D }, () => rand() - 0.5);
    const { gates, trace } = net.forward(e);
    const dG = new Map(net.moduleKeys().map((k) => [k, Array.from({ length: net.R }, () => rand() * 2 - 1)]));
    const grads = net.backward(trace, dG);
    const modules = Object.fromEntries(
      net.moduleKeys().map((k) => {
        const p = net.module(k);
        return [k, { w1: [...p.w1], b1: [...p.b1], w2: [...p.w2], b2: [...p.b2], dG: dG.get(k) }];
      }),
    );
    const r = spawnSync(python, [script], { input: JSON.stringify({ features: [...trace.features], hidden: 6, rank: 2, K, softmax, modules }), encoding: "utf8", maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, r.stderr);
    const ref = JSON.parse(r.stdout) as Record<string, { gates: number[]; grads: Record<"w1" | "b1" | "w2" | "b2", number[]> }>;
    let worst = 0;
    for (const k of net.moduleKeys()) {
      ref[k]!.gates.forEach((g, i) => (worst = Math.max(worst, Math.abs(g - trace.perModule.get(k)!.gates[i]!))));
      const n = paramNames(k);
      for (const [which, name] of [["w1", n.w1], ["b1", n.b1], ["w2", n.w2], ["b2", n.b2]] as const) {
        ref[k]!.grads[which].forEach((g, i) => (worst = Math.max(worst, Math.abs(g - grads.get(name)![i]!))));
      }
      assert.equal(gates.get(k)!.length, net.R);
    }
    t.diagnostic(`max |ours - torch| = ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-7, `max |ours - torch| = ${worst}`);
  });
}
