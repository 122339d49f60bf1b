/** The loss curve reads a run's events as a killed and resumed run leaves them. */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { lossCurveSvg, readLossHistory, writeLossCurve } from "./loss-curve.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-loss-curve-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("steps redone after a resume count once (the later entry); a torn last line is ignored", () => {
  const events = path.join(root, "events.jsonl");
  const e = (o: object) => JSON.stringify(o);
  fs.writeFileSync(
    events,
    [
      e({ type: "train.step", step: 1, loss: 3, lr: 1e-3 }),
      e({ type: "train.step", step: 2, loss: 2.5, lr: 1e-3 }),
      e({ type: "train.checkpoint", step: 2 }),
      e({ type: "train.step", step: 3, loss: 9 }), // killed before checkpoint-4: redone below
      e({ type: "train.start", step: 2, resumed: true }),
      e({ type: "train.step", step: 3, loss: 2.2, lr: 5e-4 }),
      e({ type: "train.eval", step: 3, eval_loss: 2.4 }),
      '{"type": "train.step", "step": 4, "lo',
    ].join("\n"),
  );
  const h = readLossHistory(events);
  assert.deepEqual(h.train, [{ step: 1, value: 3 }, { step: 2, value: 2.5 }, { step: 3, value: 2.2 }]);
  assert.deepEqual(h.eval, [{ step: 3, value: 2.4 }]);
  assert.deepEqual(h.checkpoints, [2]);
  const svg = lossCurveSvg(h);
  assert.equal((svg.match(/<circle [^>]*fill="#7aa6d8"/g) ?? []).length, 3, "one point per step");
  assert.match(svg, /<title>step 3: eval loss 2\.4000<\/title>/);
  const page = path.join(root, "loss.html");
  writeLossCurve(page, events, { title: "a <run>" });
  assert.match(fs.readFileSync(page, "utf8"), /<title>a &lt;run&gt;<\/title>.*3 steps, last loss 2\.2000/s);
  assert.match(lossCurveSvg(readLossHistory(path.join(root, "none.jsonl"))), /no steps logged yet/);
});
