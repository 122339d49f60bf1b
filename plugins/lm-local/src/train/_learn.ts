import * as fs from "node:fs";
import { writeTinyCheckpoint, CausalLM, generate, readPeftAdapter } from "@bdc/lm-local";
import { trainLora, TRAIN_DEFAULTS } from "./trainer.ts";
const dir = "/tmp/smoke/model3";
if (!fs.existsSync(dir)) writeTinyCheckpoint(dir, { arch: "llama", layers: 2, hidden: 64, heads: 4, kvHeads: 2, vocab: 512, seed: 3, initStd: 0.15 });
const map: Record<string, string> = { red: "rouge", blue: "bleu", green: "vert", black: "noir" };
const fillers = ["apple", "house", "river", "stone", "cloud", "table", "music", "water", "light", "paper", "chair", "bread", "glass", "horse", "dream", "earth", "night", "field", "storm", "bird", "metal", "sand", "road", "book", "fire", "snow", "tree", "door", "ship", "coin", "plant", "sugar", "voice", "smile", "lamp", "wolf"];
const row = (f: string, k: string) => JSON.stringify({ messages: [{ role: "user", content: `${f} ${k}` }, { role: "assistant", content: map[k] }] });
const train = fillers.slice(0, 30).flatMap((f) => Object.keys(map).map((k) => row(f, k)));
const held = fillers.slice(30).flatMap((f) => Object.keys(map).map((k) => row(f, k)));
fs.writeFileSync("/tmp/smoke/l-train.jsonl", train.join("\n") + "\n");
fs.writeFileSync("/tmp/smoke/l-eval.jsonl", held.join("\n") + "\n");
fs.rmSync("/tmp/smoke/l-out", { recursive: true, force: true });
const t0 = Date.now();
const r = await trainLora({ ...TRAIN_DEFAULTS, model: dir, data: "/tmp/smoke/l-train.jsonl", evalData: "/tmp/smoke/l-eval.jsonl", out: "/tmp/smoke/l-out", batch: 16, epochs: Number(process.argv[2] ?? 30), lr: Number(process.argv[3] ?? 5e-3), dropout: 0, saveSteps: 50, cacheDir: "/tmp/smoke/onnx", threads: 2 }, { log: (l) => console.log(l) });
console.log("train", r.report.final_loss, "eval", r.report.eval_loss, Date.now() - t0, "ms", r.report.steps);
const lm = await CausalLM.load(dir, { adapter: "/tmp/smoke/l-out", cacheDir: "/tmp/smoke/onnx" });
for (const f of fillers.slice(30)) for (const k of Object.keys(map)) {
  const ids = lm.tokenizer.encode(lm.tokenizer.applyChatTemplate([{ role: "user", content: `${f} ${k}` }], { addGenerationPrompt: true }));
  const out = await generate(lm, ids, { maxNewTokens: 6 });
  console.log(f, k, JSON.stringify(out.text), out.text === map[k] ? "OK" : "x");
}
await lm.dispose();
