/**
 * step/zero-shot and step/export-pairs on stand-ins (a fake agent and reward), and the scripted
 * dev server's behaviour; the end-to-end runs are in e2e.test.ts.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { Item, StepContext } from "@bdc/core";
import { PluginTester, testPlugin } from "@bdc/core/testing";
import { promptLibrary, type ChatMessage, type Completion, type Policy } from "@bdc/policy";
import type { PublicProblem, Reward } from "@bdc/reward-python";
import { PROBLEMS } from "./dev/e2e-harness.ts";
import { breakProgram, promptKind, ScriptedModel, startScriptedServer } from "./dev/scripted-server.ts";
import exportPairs, { dedupePairs, type PairRow } from "./export-pairs-step.ts";
import { extractPython, formatInstructions, problemText } from "./prompting.ts";
import zeroShot from "./zero-shot-step.ts";

const stdioProblem: PublicProblem = {
  id: "p1",
  source: "apps",
  difficulty: "introductory",
  statement: "Read two integers a and b (|a|, |b| <= 10^9) on one line and print their sum.",
  style: "stdio",
  publicTests: [{ kind: "stdio", input: "1 2\n", output: "3\n" }],
  split: "first-half",
};
const callProblem: PublicProblem = {
  ...stdioProblem,
  id: "p2",
  statement: "Return the sum of a list.",
  starterCode: "class Solution:\n    def total(self, xs):\n        ",
  fnName: "total",
  style: "call",
  publicTests: [{ kind: "call", fnName: "total", args: [[1, 2]], expected: 3 }],
};

function fakeAgent(name: string, answer: (prompt: string) => string, seen: ChatMessage[][] = []): Policy {
  return {
    name,
    model: `${name}-model`,
    provider: "fake",
    async complete(messages): Promise<Completion> {
      seen.push([...messages]);
      return { text: answer(messages.at(-1)!.content), inputTokens: 1, outputTokens: 1, cached: false, latencyMs: 0, retries: 0, costUsd: 0, model: `${name}-model` };
    },
    usage: () => ({ calls: seen.length, cached: 0, failed: 0, retries: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0, latency_ms_total: 0 }),
  };
}

const fakeReward = (passFraction: (code: string) => number): Reward => ({
  sandboxed: false,
  feedback: async () => {
    throw new Error("not used");
  },
  evaluate: async (_p, code) => ({ passFraction: passFraction(code), verdicts: [], tests: [] }),
  evaluateOn: async (_p, code) => ({ passFraction: passFraction(code), verdicts: [], tests: [] }),
});

testPlugin(zeroShot, {
  valid: [{}, { template: "my-zero-shot" }],
  invalid: [{ config: { template: "" }, code: "BDC_CONFIG_VALUE", path: "template" }],
  contract: {
    config: {},
    deps: { agent: fakeAgent("gpt", () => "```python\nprint(1)\n```"), prompts: promptLibrary(), reward: fakeReward(() => 0.5) },
    items: [{ id: "p1", data: stdioProblem }, { id: "p2", data: callProblem }],
  },
});

testPlugin(exportPairs, {
  valid: [{ from: "search" }],
  invalid: [
    { config: {}, code: "BDC_CONFIG_MISSING_KEY", path: "from" },
    { config: { from: "search", file: "x.jsonl" }, code: "BDC_CONFIG_UNKNOWN_KEY", path: "file" },
  ],
});

test("extractPython takes the first or last python block, else any block, else the text", () => {
  assert.equal(extractPython("Sure:\n```python\nprint(1)\n```\nand\n```python\nprint(2)\n```", "first"), "print(1)\n");
  assert.equal(extractPython("Sure:\n```python\nprint(1)\n```\nand\n```python\nprint(2)\n```"), "print(2)\n");
  assert.equal(extractPython("```python\n    indented = 1\n```"), "    indented = 1\n", "leading indentation is kept");
  assert.equal(extractPython("```text\nno\n```\n```py\nx = 1\n```"), "x = 1\n");
  assert.equal(extractPython("```\ny = 2\n```"), "y = 2\n");
  assert.equal(extractPython("print(3)"), "print(3)\n");
  assert.equal(extractPython("```python\nprint(4)\n"), "print(4)\n", "an unterminated block (cut by max_tokens)");
});

test("format instructions: stdin/stdout vs the starter code's function", () => {
  assert.match(formatInstructions(stdioProblem), /standard input/);
  assert.match(formatInstructions(callProblem), /implement the function\/method total of the starter code/i);
  assert.match(problemText(callProblem), /Starter code:\n```python\nclass Solution:/);
  assert.equal(problemText(stdioProblem), stdioProblem.statement);
});

test("step/zero-shot asks once with the zero-shot template and judges the block on the public tests", async () => {
  const seen: ChatMessage[][] = [];
  const agent = fakeAgent("gpt", () => "Here:\n```python\nclass Solution:\n    def total(self, xs):\n        return sum(xs)\n```", seen);
  const judged: string[] = [];
  const reward = fakeReward((code) => (judged.push(code), 1));
  const step = await new PluginTester(zeroShot).make<import("@bdc/core").StepImpl>({}, { agent, prompts: promptLibrary(), reward });
  const out = await step.run({ id: "p2", data: callProblem }, {} as StepContext);
  assert.deepEqual(out, { code: "class Solution:\n    def total(self, xs):\n        return sum(xs)\n", public_pass_rate: 1, agent: "gpt" });
  assert.equal(seen.length, 1);
  const prompt = seen[0]![0]!.content;
  assert.match(prompt, /Solve the following problem in Python 3/);
  assert.match(prompt, /Return the sum of a list\./);
  assert.match(prompt, /method total of the starter code/);
  assert.deepEqual(judged, [out && (out as { code: string }).code]);
  await assert.rejects(async () => step.run({ id: "x", data: { not: "a problem" } }, {} as StepContext), /is not a problem/);
});

const pair = (problem_id: string, node_id: string, content: string, rate: number, agent = "gpt"): PairRow => ({
  messages: [
    { role: "user", content: `problem ${problem_id}` },
    { role: "assistant", content },
  ],
  problem_id,
  node_id,
  agent,
  public_pass_rate: rate,
});

test("dedupePairs keeps one row per conversation, the best pass rate", () => {
  const { rows, duplicates } = dedupePairs([pair("a", "0.1", "t1", 0.5), pair("a", "0.2", "t1", 1, "claude"), pair("a", "0.3", "t2", 0)]);
  assert.equal(duplicates, 1);
  assert.deepEqual(rows.map((r) => [r.node_id, r.agent]), [["0.2", "claude"], ["0.3", "gpt"]]);
});

test("step/export-pairs writes D_p2t.jsonl and D_t2s.jsonl (chat rows with provenance, de-duplicated)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-export-pairs-"));
  try {
    const tester = new PluginTester(exportPairs);
    const step = await tester.make<import("@bdc/core").StepImpl>({ from: "search" });
    const outputs: Item[] = [
      { id: "a", data: { code: "x", pairs: { p2t: [pair("a", "0.1", "t1", 1), pair("a", "0.1", "t1", 1)], t2s: [pair("a", "0.1", "code", 1)] } } },
      { id: "b", data: { code: "y", pairs: { p2t: [pair("b", "0.1", "t1", 0)], t2s: [] } } },
      { id: "c", data: { code: "z" } },
    ];
    const ctx = { step: "export", dir, signal: new AbortController().signal, emit() {}, log() {}, outputs: (s: string) => (s === "search" ? outputs : []) } as unknown as StepContext;
    const out = await step.run({ id: "all", data: null }, ctx);
    assert.deepEqual(out, { p2t: 2, t2s: 1, duplicates: 1, problems: 2, files: { p2t: "D_p2t.jsonl", t2s: "D_t2s.jsonl", train: "D_train.jsonl" } });
    const p2t = fs.readFileSync(path.join(dir, "D_p2t.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(p2t[0]), ["id", "messages", "problem_id", "node_id", "agent", "public_pass_rate"]);
    assert.deepEqual(p2t.map((r) => r.id), ["p2t-a-0.1", "p2t-b-0.1"]);
    assert.deepEqual(p2t.map((r) => r.problem_id), ["a", "b"]);
    assert.equal(fs.readFileSync(path.join(dir, "D_t2s.jsonl"), "utf8").trim().split("\n").length, 1);
    const train = fs.readFileSync(path.join(dir, "D_train.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(train.map((r) => r.messages[1].content), ["t1", "t1", "code"], "D_train = D_p2t then D_t2s");
    const bad: Item[] = [{ id: "a", data: { pairs: { p2t: [{ content: "no messages" }] } } }];
    await assert.rejects(async () => step.run({ id: "all", data: null }, { ...ctx, outputs: () => bad } as StepContext), /has no messages/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("scripted server: recognises the built-in templates and answers deterministically per model", async () => {
  const prompts = promptLibrary();
  const model = new ScriptedModel(PROBLEMS);
  const statement = "Read two integers a and b (|a|, |b| <= 10^9) on one line and print their sum.";
  const expand = (thoughts: string) => prompts.render("expand-thought", { problem: statement, thoughts, width: 3 });
  const first = model.reply("m1", expand("(none)"));
  assert.equal(first.call.kind, "expand-thought");
  const lines = first.text.split("\n");
  assert.equal(lines.length, 3);
  assert.ok(lines.every((l) => /^Thought: \[m1\] step 1\.\d: /.test(l)));
  assert.deepEqual(model.reply("m1", expand("(none)")), first, "deterministic");
  assert.notEqual(model.reply("m2", expand("(none)")).text, first.text, "another model answers differently");
  const second = model.reply("m1", expand(lines[0]!));
  assert.match(second.text, /step 2\.1/);
  const third = model.reply("m1", expand(`${lines[0]}\n${second.text.split("\n")[0]}`));
  assert.match(third.text, /step 3\.1/, "three levels of thoughts");
  assert.equal(model.reply("m1", expand(`${lines[0]}\n${second.text.split("\n")[0]}\n${third.text.split("\n")[0]}`)).text, "Thought: <END>");

  const code = model.reply("m1", prompts.render("code-from-thoughts", { problem: statement, thoughts: lines[0]!, format_instructions: "stdin" }));
  assert.equal(code.call.kind, "code-from-thoughts");
  assert.equal(code.call.problem_id, "qs-0001-sum-two");
  assert.match(code.text, /```python\n[\s\S]*print\(a \+ b\)/);
  assert.equal(code.text.includes("_scripted_data"), code.call.broken);
  // Over many thought paths and two models, some programs are broken and some are not.
  const broken = new Set(["m1", "m2"].flatMap((m) => Array.from({ length: 12 }, (_, i) => model.reply(m, prompts.render("code-from-thoughts", { problem: statement, thoughts: `1. [${m}] step 1.${i}: idea ${i}`, format_instructions: "" })).call.broken)));
  assert.deepEqual([...broken].sort(), [false, true]);
  // Without any thought (a search's root) the program is always broken.
  const root = model.reply("m1", prompts.render("code-from-thoughts", { problem: statement, thoughts: "(none yet)", format_instructions: "" }));
  assert.equal(root.call.broken, true);

  assert.equal(promptKind(prompts.render("zero-shot", { problem: statement, format_instructions: "" })), "zero-shot");
  assert.equal(promptKind(prompts.render("refine-summary", { problem: statement, thoughts: "", code: "", feedback: "" })), "refine-summary");
  assert.equal(promptKind(prompts.render("reflection", { problem: statement, code: "", feedback: "" })), "reflection");
  const regen = model.reply("m1", prompts.render("regenerate-thought", { problem: statement, thoughts: lines[0]!, bad_thought: "x", summary: "y" }));
  assert.match(regen.text, /^Thought: \[m1\] step 2\.r: revised: /);
  assert.equal(promptKind("hello"), "unknown");
});

test("scripted server: the broken programs are wrong only on some inputs", () => {
  const stdio = breakProgram("print(sum(map(int, input().split())))\n", undefined);
  assert.match(stdio, /\(sum\(map\(ord, _scripted_data\)\) \+ 0\) % 3 != 0/);
  assert.match(breakProgram("print(1)", undefined, 2, true), /^if True:$/m);
  const call = breakProgram("class Solution:\n    def total(self, xs):\n        return sum(xs)\n", "total");
  assert.match(call, /setattr\(Solution, "total"/);
});

test("scripted server: HTTP, usage counted, streaming", async () => {
  const server = await startScriptedServer({ problems: PROBLEMS });
  try {
    const prompt = promptLibrary().render("zero-shot", { problem: "Given a string s of lowercase letters (1 <= |s| <= 10^5), print how many of its letters are vowels (a, e, i, o, u).", format_instructions: "" });
    const body = { model: "m", messages: [{ role: "user", content: prompt }] };
    const r = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    const json = (await r.json()) as { choices: Array<{ message: { content: string } }>; usage: { prompt_tokens: number; completion_tokens: number } };
    assert.match(json.choices[0]!.message.content, /```python/);
    assert.ok(json.usage.prompt_tokens > 10 && json.usage.completion_tokens > 0);
    const s = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
    const events = (await s.text()).split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)) as { choices: Array<{ delta: { content?: string } }> });
    assert.equal(events.map((e) => e.choices[0]?.delta.content ?? "").join(""), json.choices[0]!.message.content);
    assert.equal((await fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: "{}" })).status, 400);
    assert.deepEqual(await (await fetch(`${server.url}/stats`)).json(), { requests: 2, by_kind: { "zero-shot": 2 } });
    assert.equal(server.calls()[0]!.problem_id, "qs-0003-count-vowels");
  } finally {
    await server.close();
  }
});
