import * as assert from "node:assert/strict";
import * as path from "node:path";
import { describe, test } from "node:test";
import { main } from "../main.ts";
import type { Io } from "../output.ts";

const repo = path.resolve(import.meta.dirname, "..", "..", "..", "..");
const caseDir = path.join(repo, "tests", "workflows");

async function bdc(...argv: string[]) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), cwd: caseDir, env: {}, isTTY: false };
  const code = await main(argv, io);
  return { code, out: out.replaceAll(repo, "<repo>"), err: err.replaceAll(repo, "<repo>") };
}

describe("bdc describe", () => {
  test("a plugin given by path: its config and the instances it requires", async () => {
    const r = await bdc("describe", "../fixtures/plugins/toy-search.ts");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, "");
    const lines = r.out.split("\n");
    assert.equal(lines[0], "step/toy-search@1.0.0  (slot step, from <repo>/tests/fixtures/plugins/toy-search.ts)");
    assert.equal(lines[1], "Test double: asks every agent about each item");
    assert.match(r.out, /\nConfig \(with:\):\n {2}rollouts {11}\S.* default 4 +number of rollouts\n/);
    assert.match(r.out, /\nRequires \(instance names in with:\):\n/);
    assert.match(r.out, /\n {2}agents +list of policy \(default: all enabled\) +the agents\n/);
    assert.match(r.out, /\n {2}selector +select +/);
  });

  test("a registered plugin: required, optional and defaulted keys", async () => {
    const r = await bdc("describe", "dataset/jsonl");
    assert.equal(r.code, 0, r.err);
    const lines = r.out.split("\n");
    assert.equal(lines[0], "dataset/jsonl@0.1.0  (slot dataset, from @bdc/plugins-basics)");
    assert.match(r.out, /\n {2}path +path +optional +the JSONL file/);
    assert.match(r.out, /\n {2}limit +integer \(> 0\) +optional +keep only the first N rows\n/);
    assert.match(r.out, /\n {2}offset +\S.* default 0 +skip the first N rows\n/);
    assert.doesNotMatch(r.out, /Requires/);
    const required = await bdc("describe", "step/export-pairs");
    assert.match(required.out, /\n {2}from +\S.* +required +the search step/);
  });

  test("--json", async () => {
    const r = await bdc("describe", "../fixtures/plugins/toy-select.ts", "--json");
    assert.equal(r.code, 0, r.err);
    const doc = JSON.parse(r.out) as { id: string; slot: string; config: Array<{ key: string; default?: unknown; required: boolean }> };
    assert.equal(doc.id, "select/toy");
    assert.equal(doc.slot, "select");
    assert.deepEqual(
      doc.config.map((k) => [k.key, k.default, k.required]),
      [
        ["c", 1, false],
        ["value", "max", false],
      ],
    );
  });

  test("an unknown plugin is a config error (exit 2)", async () => {
    const r = await bdc("describe", "dataset/jsnl");
    assert.equal(r.code, 2);
    assert.equal(r.out, "");
    assert.match(r.err, /^unknown plugin "dataset\/jsnl" {2}\[BDC_UNKNOWN_PLUGIN\]\n {2}hint: did you mean "dataset\/jsonl"\?/);
  });

  test("a missing plugin module is BDC_FILE_NOT_FOUND", async () => {
    const r = await bdc("describe", "./nope.ts");
    assert.equal(r.code, 2);
    assert.match(r.err, /^plugin module not found: \.\/nope\.ts \(resolved to <repo>\/tests\/workflows\/nope\.ts\) {2}\[BDC_FILE_NOT_FOUND\]\n/);
  });
});

describe("bdc plugins", () => {
  test("lists every registered plugin as a table", async () => {
    const r = await bdc("plugins");
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trimEnd().split("\n");
    assert.match(lines[0]!, /^ID +SLOT +VERSION +DESCRIPTION$/);
    const ids = lines.slice(1).map((l) => l.split(/\s+/)[0]);
    assert.ok(ids.includes("dataset/jsonl") && ids.includes("step/inspect"), ids.join(","));
    assert.deepEqual(ids, [...ids].sort());
  });

  test("--slot filters; an unknown slot lists the slots there are", async () => {
    const r = await bdc("plugins", "--slot", "dataset");
    assert.equal(r.code, 0, r.err);
    assert.ok(r.out.trimEnd().split("\n").slice(1).every((l) => /^dataset\/\S+ +dataset /.test(l)), r.out);
    const none = await bdc("plugins", "--slot", "nosuchslot");
    assert.equal(none.out, "");
    assert.equal(none.code, 2);
    assert.match(none.err, /^no plugins of slot "nosuchslot" {2}\[BDC_USAGE\]\n {2}hint: slots with plugins: .*dataset.*\n$/);
  });

  test("--json", async () => {
    const r = await bdc("plugins", "--slot", "step", "--json");
    assert.equal(r.code, 0, r.err);
    const rows = JSON.parse(r.out) as Array<{ id: string; slot: string; version: string; package: string }>;
    assert.ok(rows.length >= 2);
    for (const row of rows) {
      assert.equal(row.slot, "step");
      assert.match(row.version, /^\d+\.\d+\.\d+/);
    }
  });
});
