/**
 * Training rows -> token ids and the loss mask: chat rows rendered with the model's template
 * with loss on the assistant turns only, prompt/completion and text rows, truncation counted,
 * and every bad line named by file:line.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { BdcError } from "@bdc/core";
import { writeTinyCheckpoint } from "../checkpoint/make-tiny.ts";
import { loadTokenizer, type LoadedTokenizer } from "../checkpoint/tokenizer.ts";
import { loadTrainingData } from "./data.ts";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-train-data-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const tokenizers = new Map<string, LoadedTokenizer>();
function tokenizer(arch: "llama" | "qwen2" | "mistral"): LoadedTokenizer {
  let t = tokenizers.get(arch);
  if (t === undefined) {
    const dir = path.join(root, arch);
    writeTinyCheckpoint(dir, { arch, layers: 1, hidden: 32, heads: 2, kvHeads: 1, vocab: 512 });
    t = loadTokenizer(dir);
    tokenizers.set(arch, t);
  }
  return t;
}

function file(name: string, rows: ReadonlyArray<unknown | string>): string {
  const f = path.join(root, name);
  fs.writeFileSync(f, rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");
  return f;
}

/** The text of the tokens that carry loss. */
const lossText = (t: LoadedTokenizer, ids: ReadonlyArray<number>, mask: Uint8Array) => t.decode(ids.filter((_, i) => mask[i] === 1));

for (const arch of ["llama", "qwen2", "mistral"] as const) {
  test(`${arch}: chat rows are the rendered template, with loss on the assistant turns only`, () => {
    const t = tokenizer(arch);
    const messages = [
      { role: "user", content: "add 2 and 3" },
      { role: "assistant", content: "5" },
      { role: "user", content: "and times 4?" },
      { role: "assistant", content: "20" },
    ];
    const { examples, report } = loadTrainingData(file(`chat-${arch}.jsonl`, [{ messages }]), t, { maxLength: 512 });
    const e = examples[0]!;
    assert.equal(t.decode([...e.ids]), t.applyChatTemplate(messages), "the ids are the whole rendered conversation");
    const learned = lossText(t, e.ids, e.lossMask);
    assert.ok(learned.startsWith("5") && learned.includes("20"), `loss on both answers: ${JSON.stringify(learned)}`);
    assert.ok(!learned.includes("add 2") && !learned.includes("times 4"), "no loss on the user turns");
    // The prompt part is tokenised exactly as generation tokenises the prompt.
    const prompt = t.encode(t.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true }));
    assert.deepEqual(e.ids.slice(0, prompt.length), prompt);
    assert.equal(e.lossMask[prompt.length], 1, "the first answer token carries loss");
    assert.deepEqual(report.formats, { messages: 1 });
  });
}

test("prompt/completion rows: loss on the completion and EOS; message lists; text rows; the first token never", () => {
  const t = tokenizer("llama");
  const eos = t.eosTokenIds[0]!;
  const { examples, report } = loadTrainingData(
    file("pc.jsonl", [
      { prompt: "def add(a, b):", completion: " return a + b" },
      { prompt: [{ role: "user", content: "hi" }], completion: [{ role: "assistant", content: "hello" }] },
      { text: "just text" },
    ]),
    t,
    { maxLength: 512 },
  );
  const [pc, conv, text] = examples as [typeof examples[0], typeof examples[0], typeof examples[0]];
  assert.equal(pc.ids.at(-1), eos);
  assert.equal(lossText(t, pc.ids.slice(0, -1), pc.lossMask.slice(0, -1)), " return a + b");
  assert.equal(pc.lossMask.at(-1), 1, "EOS is learned");
  assert.ok(lossText(t, conv.ids, conv.lossMask).startsWith("hello"));
  assert.equal(text.lossMask[0], 0);
  assert.ok(text.lossMask.slice(1).every((m) => m === 1));
  assert.deepEqual(report.formats, { "prompt-completion": 1, "prompt-completion (messages)": 1, text: 1 });
});

test("rows longer than max_length are cut and counted; a row left without completion tokens is dropped", () => {
  const t = tokenizer("llama");
  const long = "word ".repeat(200);
  const { examples, report } = loadTrainingData(
    file("long.jsonl", [
      { prompt: "short", completion: long },
      { prompt: long, completion: "lost" },
      { prompt: "ok", completion: "fine" },
    ]),
    t,
    { maxLength: 40 },
  );
  assert.equal(report.rows, 3);
  assert.equal(report.truncated, 2);
  assert.equal(report.droppedNoCompletion, 1);
  assert.equal(examples.length, 2);
  assert.ok(examples.every((e) => e.ids.length <= 40));
});

test("bad rows are errors naming file:line, all of them at once", () => {
  const t = tokenizer("llama");
  const f = file("bad.jsonl", [
    { messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "ok" }] },
    "{not json",
    { messages: [{ role: "user", content: "no answer" }] },
    { question: "?", answer: "!" },
    "",
    { prompt: "a", completion: 3 },
  ]);
  assert.throws(
    () => loadTrainingData(f, t, { maxLength: 64 }),
    (e: unknown) => {
      if (!(e instanceof BdcError) || e.code !== "BDC_TRAIN_DATA") return false;
      for (const want of [/bad\.jsonl:2: not JSON/, /bad\.jsonl:3: the conversation has no assistant turn/, /bad\.jsonl:4: a row needs "messages", "prompt" \+ "completion", or "text" \(it has "question", "answer"\)/, /bad\.jsonl:6: "prompt" and "completion" must both be strings/]) {
        assert.match(e.message, want);
      }
      assert.doesNotMatch(e.message, /bad\.jsonl:1:/);
      return true;
    },
  );
});

test("an empty file, or nothing left after truncation, is an error that says what to do", () => {
  const t = tokenizer("llama");
  assert.throws(() => loadTrainingData(file("empty.jsonl", []), t, { maxLength: 64 }), (e: unknown) => e instanceof BdcError && e.code === "BDC_TRAIN_DATA" && /has no rows/.test(e.message));
  assert.throws(
    () => loadTrainingData(file("all-cut.jsonl", [{ prompt: "word ".repeat(100), completion: "x" }]), t, { maxLength: 10 }),
    (e: unknown) => e instanceof BdcError && /none of its 1 rows is left/.test(e.message) && /raise max_length/.test(e.hint ?? ""),
  );
  assert.throws(() => loadTrainingData(path.join(root, "missing.jsonl"), t, { maxLength: 10 }), (e: unknown) => e instanceof BdcError && e.code === "BDC_FILE_NOT_FOUND");
});
