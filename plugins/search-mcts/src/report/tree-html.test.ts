import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { ProgramRecord, TreeNode } from "../types.ts";
import { bestNodeId, prColor, renderTreeHtml, writeTreeReport, type SearchTreeJson } from "./tree-html.ts";

const EVIL_THOUGHT = "</script><img src=x onerror=alert(1)>";
const EVIL_CODE = 'print("</pre><script>alert(2)</script>")';

function node(id: string, init: Partial<TreeNode> = {}): TreeNode {
  const parent = id === "0" ? null : id.slice(0, id.lastIndexOf("."));
  return {
    id,
    parent,
    depth: id.split(".").length - 1,
    thought: parent === null ? "" : `thought ${id}`,
    agent: parent === null ? null : "gpt",
    prior: 0.5,
    children: [],
    visits: 1,
    returns: [],
    value: 0,
    pr: null,
    programs: [],
    terminal: false,
    status: "open",
    refinements: 0,
    ...init,
  };
}

const prog = (code: string, passRate: number, verdicts: ProgramRecord["verdicts"], agent = "gpt"): ProgramRecord => ({ agent, code, passRate, verdicts });

function sampleTree(): SearchTreeJson {
  return {
    problem_id: "apps/4242",
    agents: ["gpt", "claude"],
    config: { rollouts: 8, width: 2, max_depth: 3 },
    stats: { rollouts: 6, nodes: 8, llm_calls: 31, tokens: { input: 12000, output: 3400 }, stop_reason: "perfect", best_pr: 1, best_node: "0.1.0" },
    nodes: [
      node("0", { children: ["0.0", "0.1", "0.2"], visits: 6, value: 0.8 }),
      node("0.0", { children: ["0.0.0"], pr: 0.5, visits: 2, value: 0.45, programs: [prog("print(1)", 0.5, ["passed", "wrong_answer"])] }),
      node("0.0.0", { pr: 0, status: "pruned", programs: [prog("print(0)", 0, ["runtime_error", "time_limit"], "claude")] }),
      node("0.1", {
        agent: "claude",
        children: ["0.1.0", "0.1.1"],
        pr: 0.5,
        visits: 3,
        value: 0.9,
        refinements: 1,
        refined: { replacedThought: "use brute force <slow>", summary: "the brute force times out", summarizedBy: "gpt" },
        programs: [prog("x = 1", 0.5, ["passed", "time_limit"], "claude")],
      }),
      node("0.1.0", { pr: 1, terminal: true, value: 1, thought: "use a prefix sum & binary search", programs: [prog("def f(): return 1", 1, ["passed", "passed"])] }),
      node("0.1.1", { thought: EVIL_THOUGHT, pr: 0.5, programs: [prog(EVIL_CODE, 0.5, ["passed", "wrong_answer"])] }),
      node("0.2", { children: ["0.2.0"], pr: 0, agent: "claude" }),
      node("0.2.0", { visits: 0 }),
    ],
  };
}

test("the page shows every node, PR colours, badges and the header stats", () => {
  const tree = sampleTree();
  const html = renderTreeHtml(tree);
  for (const n of tree.nodes) assert.ok(html.includes(`data-id="${n.id}"`), `node ${n.id} is in the tree`);
  assert.equal(html.match(/class="row /g)?.length, tree.nodes.length, "one row per node");
  assert.equal(prColor(0), "hsl(0,70%,42%)");
  assert.equal(prColor(0.5), "hsl(60,70%,42%)");
  assert.equal(prColor(1), "hsl(120,70%,42%)");
  assert.equal(prColor(null), "#8c959f");
  assert.match(html, /data-id="0\.0\.0" style="--c:hsl\(0,70%,42%\)"/);
  assert.match(html, /data-id="0\.0" style="--c:hsl\(60,70%,42%\)"/);
  assert.match(html, /data-id="0\.1\.0" style="--c:hsl\(120,70%,42%\)"/);
  assert.match(html, /data-id="0\.2\.0" style="--c:#8c959f"/, "not simulated: grey");
  const row = (id: string) => html.match(new RegExp(`<span[^>]*class="row[^"]*" data-id="${id.replace(/\./g, "\\.")}"[\\s\\S]*?<span class="nq"[^>]*>[^<]*</span>`))![0];
  assert.match(row("0.0.0"), /✂ pruned/);
  assert.match(row("0.0.0"), /st-pruned/);
  assert.match(row("0.1"), /↻ refined/);
  assert.match(row("0.1.0"), /★ best/);
  assert.match(row("0.1.0"), /terminal/);
  assert.match(row("0.1.0"), /is-best/);
  assert.doesNotMatch(row("0.0"), /badge/);
  assert.match(row("0.1"), /N 3 · Q 0\.90/);
  assert.match(row("0.1"), /<span class="ag ag-1">claude<\/span>/);
  // header
  assert.match(html, /<h1>apps\/4242 /);
  assert.match(html, /<span>LLM calls<\/span><b>31<\/b>/);
  assert.match(html, /<span>tokens<\/span><b>15,400 <small>\(input 12,000 · output 3,400\)<\/small><\/b>/);
  assert.match(html, /<span>stop reason<\/span><b>perfect<\/b>/);
  assert.match(html, /<span>best public PR<\/span><b style="color:hsl\(120,70%,42%\)">1<\/b>/);
  assert.match(html, /<span class="ag ag-0">gpt<\/span> <span class="ag ag-1">claude<\/span>/);
  assert.match(html, /<title>apps\/4242 - search tree<\/title>/);
  assert.match(renderTreeHtml(tree, { title: "T <x>" }), /<title>T &lt;x&gt;<\/title>/);
  // self-contained: no external resources
  assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//);
  assert.doesNotMatch(html, /<link\b/);
});

test("untrusted thoughts and code are escaped; the embedded JSON parses back", () => {
  const tree = sampleTree();
  const html = renderTreeHtml(tree);
  assert.ok(!html.includes("<img"), "no <img> element");
  assert.doesNotMatch(html, /<[^>]*onerror/, "onerror never inside a tag");
  assert.ok(!html.includes("</pre><script>"), "code cannot close a <pre>");
  assert.equal(html.match(/<\/script>/g)?.length, 2, "only the page's own two script blocks close");
  assert.ok(html.includes("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"), "thought shown as text");
  const m = html.match(/<script type="application\/json" id="tree-data">([\s\S]*?)<\/script>/);
  assert.ok(m);
  assert.ok(!m[1]!.includes("<"));
  const data = JSON.parse(m[1]!) as { best: string; tree: SearchTreeJson };
  assert.deepEqual(data.tree, tree);
  assert.equal(data.best, "0.1.0");
  assert.equal(data.tree.nodes.find((n) => n.id === "0.1.1")!.thought, EVIL_THOUGHT);
  assert.equal(data.tree.nodes.find((n) => n.id === "0.1.1")!.programs[0]!.code, EVIL_CODE);
});

test("the best node falls back to the highest PR; bad input degrades gracefully", () => {
  const tree = sampleTree();
  const { best_node: _, ...stats } = tree.stats!;
  assert.equal(bestNodeId({ ...tree, stats }), "0.1.0", "pr 1 and terminal wins");
  assert.equal(bestNodeId({ ...tree, stats, nodes: tree.nodes.map((n) => ({ ...n, pr: null })) }), undefined);
  const lonely = renderTreeHtml({ problem_id: "p", agents: [], nodes: [node("0", { children: ["0.9"] }), node("5.1")] });
  assert.match(lonely, /Nodes not reachable from the root/);
  assert.match(lonely, /data-id="5\.1"/);
  assert.match(renderTreeHtml({ problem_id: "p", agents: [], nodes: [] }), /The tree has no nodes/);
});

test("writeTreeReport writes the page next to the JSON", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-tree-"));
  try {
    const file = path.join(dir, "apps_4242.tree.json");
    fs.writeFileSync(file, JSON.stringify(sampleTree()));
    const out = writeTreeReport(file);
    assert.equal(out, path.join(dir, "apps_4242.tree.html"));
    const html = fs.readFileSync(out, "utf8");
    assert.match(html, /^<!doctype html>/);
    assert.ok(html.includes('data-id="0.1.1"'));
    assert.throws(() => writeTreeReport(path.join(dir, "missing.json")), { code: "BDC_FILE_NOT_FOUND" });
    fs.writeFileSync(path.join(dir, "bad.json"), "{}");
    assert.throws(() => writeTreeReport(path.join(dir, "bad.json")), { code: "BDC_USAGE" });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("agents as the search writes them ({name, model, provider}) show their model", () => {
  const html = renderTreeHtml({ problem_id: "p", agents: [{ name: "gpt", model: "gpt-4o-mini", provider: "openai" }], nodes: [] });
  assert.match(html, /<span class="ag ag-0">gpt<\/span> <span class="muted">\(openai gpt-4o-mini\)<\/span>/);
});
