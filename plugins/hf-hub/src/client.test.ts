// The hub client against a local fake hub (node:http on 127.0.0.1): never the internet.
import * as assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, beforeEach, test } from "node:test";
import { BdcError } from "@bdc/core";
import { HubClient, httpError, nextLink, type HubRepo } from "./index.ts";
import { startFakeHub, type FakeHub } from "./testing.ts";

const model: HubRepo = { type: "model", id: "org/tiny" };
const dataset: HubRepo = { type: "dataset", id: "org/data" };
let hub: FakeHub;

before(async () => {
  hub = await startFakeHub([
    {
      type: "model",
      id: "org/tiny",
      revisions: ["main", "v1"],
      files: {
        "config.json": Buffer.from("{}"),
        "model.safetensors": Buffer.alloc(300, 1),
        "original/consolidated.pth": Buffer.alloc(100, 2),
        "README.md": Buffer.from("# tiny\n"),
      },
    },
    { type: "dataset", id: "org/data", files: { "data/a.parquet": Buffer.alloc(80, 3), "README.md": Buffer.from("x") } },
  ]);
});
after(() => hub.close());
beforeEach(() => {
  hub.log.length = 0;
  hub.token = undefined;
  hub.pageSize = 1000;
});

test("nextLink finds rel=next among several links", () => {
  assert.equal(nextLink(null), undefined);
  assert.equal(nextLink('<https://h/a?cursor=x>; rel="next"'), "https://h/a?cursor=x");
  assert.equal(nextLink('<https://h/p>; rel="prev", <https://h/n>; rel="next"'), "https://h/n");
  assert.equal(nextLink("</rel>; rel=next"), "/rel");
  assert.equal(nextLink('<https://h/p>; rel="prev"'), undefined);
});

test("URLs for models and datasets", () => {
  const c = new HubClient("https://hub.example/", undefined);
  assert.equal(c.endpoint, "https://hub.example");
  assert.equal(c.treeUrl(model, "main", "", true), "https://hub.example/api/models/org/tiny/tree/main?recursive=true");
  assert.equal(c.treeUrl(dataset, "refs/pr/1", "data"), "https://hub.example/api/datasets/org/data/tree/refs%2Fpr%2F1/data");
  assert.equal(c.resolveUrl(model, "main", "sub dir/a b.json"), "https://hub.example/org/tiny/resolve/main/sub%20dir/a%20b.json");
  assert.equal(c.resolveUrl(dataset, "main", "data/a.parquet"), "https://hub.example/datasets/org/data/resolve/main/data/a.parquet");
  assert.equal(HubClient.fromEnv({}).endpoint, "https://huggingface.co");
  assert.equal(HubClient.fromEnv({ HF_ENDPOINT: "https://m.example", HF_TOKEN: "" }).hasToken, false);
  assert.throws(() => HubClient.fromEnv({ HF_ENDPOINT: "hf-mirror.com" }), /HF_ENDPOINT "hf-mirror\.com" is not an http\(s\) URL/);
});

test("a recursive model listing follows the hub's Link pages", async () => {
  hub.pageSize = 2;
  const c = new HubClient(hub.endpoint, undefined);
  const all = await c.tree(model, "main", "", { recursive: true });
  assert.deepEqual(
    all.map((e) => `${e.type}:${e.path}`),
    ["file:README.md", "file:config.json", "file:model.safetensors", "directory:original", "file:original/consolidated.pth"],
  );
  assert.equal(hub.log.filter((l) => l.url.includes("/tree/")).length, 3);
  assert.ok(hub.log.slice(1).every((l) => /[?&]cursor=\d+/.test(l.url) && l.url.includes("recursive=true")));
  const st = all.find((e) => e.path === "model.safetensors")!;
  assert.equal(st.size, 300);
  assert.match(st.lfs!.oid, /^[0-9a-f]{64}$/);
  // Not recursive: the folder is an entry, its files are not.
  const top = await c.tree(model, "main");
  assert.ok(top.some((e) => e.type === "directory" && e.path === "original"));
  assert.ok(!top.some((e) => e.path.startsWith("original/")));
  // A dataset folder.
  assert.deepEqual((await c.tree(dataset, "main", "data")).map((e) => e.path), ["data/a.parquet"]);
});

test("a mirror's next link that points at huggingface.co is followed on the mirror", async () => {
  const mirror = http.createServer((req, res) => {
    const u = new URL(req.url!, "http://x");
    if (u.searchParams.get("cursor") === null) {
      res.writeHead(200, { "content-type": "application/json", link: `<https://huggingface.co${u.pathname}?cursor=2>; rel="next"` });
      return void res.end(JSON.stringify([{ type: "file", path: "a", size: 1 }]));
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify([{ type: "file", path: "b", size: 1 }]));
  });
  await new Promise<void>((r) => mirror.listen(0, "127.0.0.1", r));
  try {
    const c = new HubClient(`http://127.0.0.1:${(mirror.address() as { port: number }).port}`, undefined);
    assert.deepEqual((await c.tree(model, "main")).map((e) => e.path), ["a", "b"]);
  } finally {
    mirror.closeAllConnections();
    await new Promise((r) => mirror.close(r));
  }
});

test("an LFS file redirects to the CDN: X-Repo-Commit is seen, the token stays on the hub, Range goes along", async () => {
  hub.token = "s3cret";
  const c = new HubClient(hub.endpoint, "s3cret");
  const opened = await c.open(c.resolveUrl(model, "main", "model.safetensors"), "downloading", { headers: { range: "bytes=100-" } });
  assert.equal(opened.res.status, 206);
  assert.equal(Buffer.from(await opened.res.arrayBuffer()).length, 200);
  assert.equal(opened.commit, hub.commitOf("org/tiny"));
  assert.ok(opened.url.startsWith(hub.cdn));
  assert.deepEqual(
    hub.log.map((l) => [l.server, l.auth, l.range]),
    [
      ["hub", "Bearer s3cret", "bytes=100-"],
      ["cdn", undefined, "bytes=100-"],
    ],
  );
  // HEAD without following: the commit a branch points at.
  assert.equal(await c.commitOf(model, "v1", "config.json"), hub.commitOf("org/tiny"));
  assert.equal(await c.commitOf(model, "a".repeat(40), "config.json"), "a".repeat(40));
});

test("hub errors become BDC_DOWNLOAD_FAILED with the hub's reason and a hint for the repo type", async () => {
  const c = new HubClient(hub.endpoint, undefined);
  const e404 = await c.tree(model, "nope").catch((e: unknown) => e as BdcError);
  assert.ok(e404 instanceof BdcError);
  assert.equal(e404.code, "BDC_DOWNLOAD_FAILED");
  assert.match(e404.message, /^listing org\/tiny@nope: not found \(HTTP 404\) at http:\/\/127\.0\.0\.1:\d+\/api\/models\/org\/tiny\/tree\/nope: Invalid rev id: nope$/);
  assert.match(e404.hint!, /check the repository id \(org\/name\) and --revision/);
  const e401 = await c.tree({ type: "model", id: "org/missing" }, "main").catch((e: unknown) => e as BdcError);
  assert.ok(e401 instanceof BdcError);
  assert.match(e401.message, /access denied \(HTTP 401\).*: Repository not found$/);
  assert.match(e401.hint!, /set HF_TOKEN .*the model may be gated or private, or the repository id wrong/);
  assert.match(httpError(403, "u", "w", { hasToken: true, repoType: "model" }).hint!, /accept the model's terms/);
  assert.match(httpError(404, "u", "w", { hasToken: false }).hint!, /^check the dataset and --revision/);
  assert.match(httpError(500, "u", "w", { hasToken: false }).message, /^w: HTTP 500 at u$/);
});

test("too many redirects is an error, not a loop", async () => {
  const loop = http.createServer((req, res) => void res.writeHead(302, { location: req.url! }).end());
  await new Promise<void>((r) => loop.listen(0, "127.0.0.1", r));
  try {
    const c = new HubClient(`http://127.0.0.1:${(loop.address() as { port: number }).port}`, undefined);
    await assert.rejects(c.open(`${c.endpoint}/x`, "fetching x"), /fetching x: too many redirects/);
  } finally {
    loop.closeAllConnections();
    await new Promise((r) => loop.close(r));
  }
});
