import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { cacheKey, canonicalJson, ResponseCache } from "./cache.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-cache-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the key ignores key order and undefined fields, and sees everything else", () => {
  assert.equal(canonicalJson({ b: 1, a: [{ y: 2, x: undefined }] }), '{"a":[{"y":2}],"b":1}');
  assert.equal(cacheKey({ a: 1, b: 2 }), cacheKey({ b: 2, a: 1 }));
  assert.notEqual(cacheKey({ a: 1, b: 2 }), cacheKey({ a: 1, b: 3 }));
});

test("hit and miss; an unreadable entry is a miss", () => {
  const cache = new ResponseCache(path.join(tmp, "basic"));
  const key = cacheKey({ q: 1 });
  assert.equal(cache.get(key), undefined);
  cache.put(key, { q: 1 }, { text: "a", inputTokens: 1, outputTokens: 2 });
  assert.deepEqual(cache.get(key), { text: "a", inputTokens: 1, outputTokens: 2 });
  fs.writeFileSync(path.join(tmp, "basic", key.slice(0, 2), `${key}.json`), '{"key": "trunc');
  assert.equal(cache.get(key), undefined);
});

const writer = (dir: string, id: number) => `
import { ResponseCache, cacheKey } from ${JSON.stringify(path.join(import.meta.dirname, "cache.ts"))};
const cache = new ResponseCache(${JSON.stringify(dir)});
const big = "x".repeat(200_000);
for (let i = 0; ; i++) cache.put(cacheKey({ q: i % 5 }), { q: i % 5 }, { text: big + ${id}, inputTokens: i, outputTokens: ${id} });
`;

test("concurrent writers and writers killed mid-write never leave a torn entry", { timeout: 30_000 }, async () => {
  const dir = path.join(tmp, "race");
  const children = [0, 1, 2].map((id) => spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", writer(dir, id)], { stdio: "ignore" }));
  await new Promise((r) => setTimeout(r, 1500));
  for (const c of children) c.kill("SIGKILL");
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.on("exit", r)))));
  const cache = new ResponseCache(dir);
  let entries = 0;
  for (let q = 0; q < 5; q++) {
    const got = cache.get(cacheKey({ q }));
    if (got === undefined) continue;
    entries++;
    assert.equal(got.text.length, 200_001, "an entry is whole or absent");
    assert.ok(got.text.endsWith(String(got.outputTokens)), "text and counts come from the same write");
  }
  assert.ok(entries > 0, "the writers wrote something");
  // Temporary files of killed writers may stay behind; they are never read as entries.
  for (const sub of fs.readdirSync(dir)) for (const f of fs.readdirSync(path.join(dir, sub))) assert.match(f, /^[0-9a-f]{64}\.json(\.\d+\.[a-z0-9]+\.tmp)?$/);
});
