import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { BdcError } from "@bdc/core";
import { writeTinyCheckpoint } from "./make-tiny.ts";
import { loadTokenizer, type LoadedTokenizer } from "./tokenizer.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-tokenizer-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const dirs = { llama: path.join(tmp, "llama"), qwen2: path.join(tmp, "qwen2"), mistral: path.join(tmp, "mistral") };
const tok: Record<keyof typeof dirs, LoadedTokenizer> = {} as never;
before(() => {
  for (const arch of ["llama", "qwen2", "mistral"] as const) {
    writeTinyCheckpoint(dirs[arch], { arch, layers: 1, hidden: 16, heads: 2, kvHeads: 1, vocab: 600 });
    tok[arch] = loadTokenizer(dirs[arch]);
  }
});

const TEXTS = [
  "Hello, world! The quick brown fox jumps over the lazy dog.",
  "def solve(n):\n    total = 0\n    for i in range(n):\n\tif i % 2 == 0:\n\t\ttotal += i  \n\n\n    return total\n",
  "   leading and trailing spaces   ",
  "UTF-8: café, naïve, Ελληνικά, 中文, 日本語, ħ, e\u0301 (combining), \u00a0nbsp",
  "emoji: 🎉 👩‍💻 🇫🇷 ✓ 💯\r\nwindows line",
  " . , ! ? 's n't", // would be altered by clean_up_tokenization_spaces
  "",
];

test("decode(encode(s)) === s for ASCII, code, UTF-8 and emoji, in every family", () => {
  for (const [arch, t] of Object.entries(tok)) {
    for (const text of TEXTS) {
      const ids = t.encode(text);
      assert.equal(t.decode(ids), text, `${arch}: ${JSON.stringify(text)}`);
    }
  }
});

test("the vocabulary is learned: common words and indentation are single tokens", () => {
  const t = tok.qwen2;
  assert.equal(t.encode(" the").length, 1);
  assert.equal(t.encode("    ").length, 1);
  assert.ok(t.encode("def solve(n):\n    return n\n").length < 12);
  assert.equal(t.vocabSize, 600);
  assert.equal(t.idToToken(t.encode(" the")[0]!), "Ġthe");
});

test("special tokens are single ids; addSpecialTokens adds BOS where the family does", () => {
  const q = tok.qwen2;
  const start = q.tokenToId("<|im_start|>")!;
  const end = q.tokenToId("<|im_end|>")!;
  const ids = q.encode("<|im_start|>user\nhi<|im_end|>");
  assert.equal(ids[0], start);
  assert.equal(ids.at(-1), end);
  assert.equal(ids.filter((id) => q.specialIds.has(id)).length, 2);
  assert.deepEqual(q.encode("hi", { addSpecialTokens: true }), q.encode("hi")); // Qwen2 adds nothing
  assert.equal(q.bosTokenId, undefined);
  assert.deepEqual(q.eosTokenIds, [end]);
  assert.equal(q.padTokenId, q.tokenToId("<|endoftext|>"));
  assert.equal(q.decode(ids, { skipSpecialTokens: true }), "user\nhi");

  const l = tok.llama;
  const bos = l.tokenToId("<|begin_of_text|>")!;
  assert.equal(l.bosTokenId, bos);
  assert.deepEqual(l.eosTokenIds, [l.tokenToId("<|eot_id|>")]);
  assert.deepEqual(l.encode("hi", { addSpecialTokens: true }), [bos, ...l.encode("hi")]);
  assert.deepEqual(l.encode("<|eot_id|>"), [l.tokenToId("<|eot_id|>")]);
  assert.deepEqual(new Set(["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"].map((s) => l.tokenToId(s))), l.specialIds);

  const m = tok.mistral;
  assert.deepEqual(m.encode("hi", { addSpecialTokens: true }), [m.tokenToId("<s>"), ...m.encode("hi")]);
});

test("ids without a token (padding rows) and empty lists decode to nothing", () => {
  const t = tok.llama;
  const ids = t.encode("abc");
  assert.equal(t.decode([]), "");
  assert.equal(t.decode([...ids, 100_000, -1]), "abc");
});

const CONVERSATION = [
  { role: "system", content: "You write Python." },
  { role: "user", content: "Add two numbers." },
];

test("chat templates: ChatML for qwen2, Llama 3 headers for llama, [INST] for mistral", () => {
  assert.equal(
    tok.qwen2.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }),
    "<|im_start|>system\nYou write Python.<|im_end|>\n<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\n",
  );
  assert.equal(
    tok.llama.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }),
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou write Python.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAdd two numbers.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  assert.equal(
    tok.llama.applyChatTemplate(CONVERSATION),
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou write Python.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAdd two numbers.<|eot_id|>",
  );
  assert.equal(
    tok.mistral.applyChatTemplate([
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello" },
      { role: "user", content: "Add two numbers." },
    ]),
    "<s>[INST] Hi [/INST]Hello</s>[INST] Add two numbers. [/INST]",
  );
  // The rendered prompt encodes with its markers as single special tokens.
  const ids = tok.qwen2.encode(tok.qwen2.applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }));
  assert.equal(ids.filter((id) => id === tok.qwen2.tokenToId("<|im_start|>")).length, 3);
});

test("a template's raise_exception becomes BDC_MODEL_CHAT_TEMPLATE with its message", () => {
  assert.throws(
    () => tok.mistral.applyChatTemplate(CONVERSATION),
    (e: unknown) => e instanceof BdcError && e.code === "BDC_MODEL_CHAT_TEMPLATE" && /Conversation roles must alternate/.test(e.message) && e.message.includes("tokenizer_config.json"),
  );
});

function copyWith(arch: keyof typeof dirs, name: string, edit: (config: Record<string, unknown>) => void): string {
  const dir = path.join(tmp, name);
  fs.cpSync(dirs[arch], dir, { recursive: true });
  const file = path.join(dir, "tokenizer_config.json");
  const config = JSON.parse(fs.readFileSync(file, "utf8"));
  edit(config);
  fs.writeFileSync(file, JSON.stringify(config));
  return dir;
}

test("no chat template: BDC_MODEL_NO_CHAT_TEMPLATE says to pass plain prompts", () => {
  const dir = copyWith("qwen2", "base-model", (c) => delete c.chat_template);
  const t = loadTokenizer(dir);
  assert.equal(t.hasChatTemplate, false);
  assert.throws(
    () => t.applyChatTemplate(CONVERSATION),
    (e: unknown) => e instanceof BdcError && e.code === "BDC_MODEL_NO_CHAT_TEMPLATE" && /not a chat model/.test(e.message) && /plain prompts/.test(e.hint ?? ""),
  );
  // chat_template.jinja (where transformers >= 4.43 saves it) is found too.
  fs.writeFileSync(path.join(dir, "chat_template.jinja"), "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}");
  assert.equal(loadTokenizer(dir).applyChatTemplate(CONVERSATION), "[system] You write Python.\n[user] Add two numbers.\n");
});

test("a list of named templates renders the default one", () => {
  const dir = copyWith("qwen2", "named", (c) => {
    c.chat_template = [
      { name: "tool_use", template: "TOOLS" },
      { name: "default", template: "{{ messages[0].content }}|{{ eos_token }}|{{ add_generation_prompt }}" },
    ];
  });
  assert.equal(loadTokenizer(dir).applyChatTemplate(CONVERSATION, { addGenerationPrompt: true }), "You write Python.|<|im_end|>|true");
});

test("a missing tokenizer.json: BDC_MODEL_FILE_MISSING naming it", () => {
  const dir = path.join(tmp, "no-tokenizer");
  fs.mkdirSync(dir);
  assert.throws(
    () => loadTokenizer(dir),
    (e: unknown) => e instanceof BdcError && e.code === "BDC_MODEL_FILE_MISSING" && e.message.includes(path.join(dir, "tokenizer.json")) && /make-tiny/.test(e.hint ?? ""),
  );
});

test("incremental decoding streams exactly the full text, never half a character", () => {
  for (const t of Object.values(tok)) {
    const text = "Streaming 🎉 emoji 👩‍💻 and 中文 text\n    with code: x += 1 ✓";
    const ids = [t.tokenToId("<|im_start|>") ?? t.encode("a")[0]!, ...t.encode(text)];
    const decoder = t.incrementalDecoder({ skipSpecialTokens: true });
    let streamed = "";
    let held = 0;
    for (const id of ids) {
      const delta = decoder.push(id);
      if (delta === "") held++;
      assert.ok(!delta.includes("\uFFFD"), JSON.stringify(delta));
      streamed += delta;
    }
    streamed += decoder.flush();
    assert.equal(streamed, t.decode(ids, { skipSpecialTokens: true }));
    assert.equal(decoder.text, streamed);
    assert.ok(held > 0); // multi-byte characters span several byte-level tokens
  }
});
