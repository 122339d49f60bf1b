// `bdc data pull` against a local fake hub (node:http on 127.0.0.1): never the internet.
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { cli, type Io } from "@bdc/core";
import { fileDigest } from "@bdc/hf-hub";

const sha256 = (b: Buffer) => crypto.createHash("sha256").update(b).digest("hex");
const gitSha1 = (b: Buffer) => crypto.createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");

const files: Record<string, Buffer> = {
  "codeparrot/apps/train.jsonl": Buffer.from('{"problem_id": 0}\n'.repeat(5000)),
  "codeparrot/apps/test.jsonl": Buffer.from(Array.from({ length: 20000 }, (_, i) => `{"problem_id": ${i}}\n`).join("")),
  "codeparrot/apps/README.md": Buffer.from("# APPS\n"),
  "deepmind/code_contests/data/test-00000-of-00001.parquet": Buffer.from("PAR1 test split PAR1"),
  "deepmind/code_contests/data/valid-00000-of-00001.parquet": Buffer.from("PAR1 valid split PAR1"),
};

interface Logged {
  readonly url: string;
  readonly range: string | undefined;
  readonly auth: string | undefined;
}

const state = {
  log: [] as Logged[],
  /** Files whose next download is cut off after half the bytes. */
  interruptOnce: new Set<string>(),
  /** Require this bearer token. */
  token: undefined as string | undefined,
};

function entry(key: string, lfs: boolean, wrongChecksum = false) {
  const b = files[key]!;
  const p = key.split("/").slice(2).join("/");
  return lfs
    ? { type: "file", path: p, size: b.length, oid: gitSha1(Buffer.from("pointer")), lfs: { oid: wrongChecksum ? sha256(Buffer.from("other")) : sha256(b), size: b.length, pointerSize: 134 } }
    : { type: "file", path: p, size: b.length, oid: wrongChecksum ? gitSha1(Buffer.from("other")) : gitSha1(b) };
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url!, "http://x");
  state.log.push({ url: url.pathname + url.search, range: req.headers.range, auth: req.headers.authorization });
  if (state.token !== undefined && req.headers.authorization !== `Bearer ${state.token}`) {
    res.writeHead(401, { "content-type": "application/json" }).end('{"error":"Invalid credentials"}');
    return;
  }
  const tree = /^\/api\/datasets\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(url.pathname);
  if (tree !== null) {
    const [, repo, rev, folder] = tree;
    if (rev !== "main") return void res.writeHead(404, { "content-type": "application/json" }).end('{"error":"Revision not found"}');
    if (repo === "codeparrot/apps" && folder === undefined) {
      // Two pages, as the hub pages long listings.
      if (url.searchParams.get("cursor") === null) {
        res.writeHead(200, { "content-type": "application/json", link: `<http://${req.headers.host}${url.pathname}?cursor=p2>; rel="next"` });
        return void res.end(JSON.stringify([{ type: "file", path: "README.md", size: 7, oid: gitSha1(files["codeparrot/apps/README.md"]!) }, entry("codeparrot/apps/test.jsonl", true)]));
      }
      return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify([entry("codeparrot/apps/train.jsonl", true), { type: "directory", path: "data", oid: "x" }]));
    }
    if (repo === "deepmind/code_contests" && folder === "data") {
      return void res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify([entry("deepmind/code_contests/data/test-00000-of-00001.parquet", true, true), entry("deepmind/code_contests/data/valid-00000-of-00001.parquet", false)]));
    }
    return void res.writeHead(404).end();
  }
  const resolve = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  const key = resolve === null ? undefined : `${resolve[1]}/${decodeURIComponent(resolve[3]!)}`;
  const body = key === undefined ? undefined : files[key];
  if (body === undefined) return void res.writeHead(404).end("Entry not found");
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  const start = range === null ? 0 : Number(range[1]);
  if (start >= body.length && range !== null) return void res.writeHead(416).end();
  const part = body.subarray(start);
  res.writeHead(range === null ? 200 : 206, {
    "content-length": part.length,
    ...(range === null ? {} : { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` }),
  });
  if (state.interruptOnce.delete(key!)) {
    // Send half, then drop the connection.
    res.write(part.subarray(0, Math.floor(part.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
    return;
  }
  res.end(part);
});

let endpoint = "";
let project = "";

before(async () => {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  endpoint = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  // A project whose package.json contributes the command, as the package will.
  project = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-pull-"));
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "p", type: "module", bdc: { commands: { data: "./data.ts" } } }));
  fs.writeFileSync(path.join(project, "data.ts"), `export { default } from ${JSON.stringify(path.join(import.meta.dirname, "pull-command.ts"))};\n`);
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  fs.rmSync(project, { recursive: true, force: true });
});

beforeEach(() => {
  state.log = [];
  state.interruptOnce.clear();
  state.token = undefined;
});

async function bdc(env: Record<string, string>, ...argv: string[]) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), cwd: project, env: { HF_ENDPOINT: endpoint, ...env }, isTTY: false };
  const code = await cli(argv, io);
  return { code, out, err };
}

test("pulls the APPS files (paged listing, LFS sha256 verified) into data/apps by default", async () => {
  const r = await bdc({}, "data", "pull", "apps");
  assert.equal(r.code, 0, r.err);
  const dir = path.join(project, "data", "apps");
  assert.deepEqual(fs.readdirSync(dir).sort(), ["test.jsonl", "train.jsonl"]);
  assert.ok(fs.readFileSync(path.join(dir, "test.jsonl")).equals(files["codeparrot/apps/test.jsonl"]!));
  assert.match(r.err, /codeparrot\/apps@main: 2 file\(s\)/);
  assert.match(r.err, /test\.jsonl: done/);
  assert.match(r.out, /use one in a workflow: \{ use: dataset\/apps, with: \{ path: data\/apps\/test\.jsonl \} \}/);
  // Nothing is sent without HF_TOKEN; a second run fetches nothing.
  assert.ok(state.log.every((l) => l.auth === undefined));
  state.log = [];
  const again = await bdc({}, "data", "pull", "apps");
  assert.equal(again.code, 0);
  assert.match(again.err, /train\.jsonl: up to date/);
  assert.ok(state.log.every((l) => l.url.startsWith("/api/")), JSON.stringify(state.log));
  fs.rmSync(dir, { recursive: true });
});

test("an interrupted download fails with a resume hint, and the next run resumes it with a Range request", async () => {
  const out = path.join(project, "resume");
  state.interruptOnce.add("codeparrot/apps/test.jsonl");
  const first = await bdc({}, "data", "pull", "apps", "--out", "resume");
  assert.equal(first.code, 1);
  assert.match(first.err, /downloading test\.jsonl: the connection was lost after .* \[BDC_DOWNLOAD_FAILED\]\n {2}hint: run the same command again: it resumes from test\.jsonl\.part/);
  assert.doesNotMatch(first.err, /\n\s+at /, "no stack trace");
  const partSize = fs.statSync(path.join(out, "test.jsonl.part")).size;
  const total = files["codeparrot/apps/test.jsonl"]!.length;
  assert.ok(partSize > 0 && partSize < total, `part has ${partSize} of ${total} bytes`);
  assert.ok(!fs.existsSync(path.join(out, "test.jsonl")));

  state.log = [];
  const second = await bdc({}, "data", "pull", "apps", "--out", "resume");
  assert.equal(second.code, 0, second.err);
  assert.match(second.err, /test\.jsonl: resuming at/);
  const get = state.log.find((l) => l.url.endsWith("/test.jsonl"));
  assert.equal(get?.range, `bytes=${partSize}-`);
  assert.ok(fs.readFileSync(path.join(out, "test.jsonl")).equals(files["codeparrot/apps/test.jsonl"]!));
  assert.ok(!fs.existsSync(path.join(out, "test.jsonl.part")));
  assert.ok(fs.readFileSync(path.join(out, "train.jsonl")).equals(files["codeparrot/apps/train.jsonl"]!));
});

test("a checksum mismatch is an error, and the bad file is not kept", async () => {
  const r = await bdc({}, "data", "pull", "codecontests", "--out", "cc");
  assert.equal(r.code, 1);
  assert.match(r.err, /downloading test-00000-of-00001\.parquet: the file does not match the hub's checksum \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\); the partial file was removed {2}\[BDC_DOWNLOAD_CHECKSUM\]\n {2}hint: run the command again/);
  const dir = path.join(project, "cc");
  assert.deepEqual(fs.readdirSync(dir), []);
  // --split picks files by split; a non-LFS file is checked against its git blob sha1.
  const valid = await bdc({}, "data", "pull", "codecontests", "--out", "cc", "--split", "valid");
  assert.equal(valid.code, 0, valid.err);
  assert.deepEqual(fs.readdirSync(dir), ["valid-00000-of-00001.parquet"]);
  const file = path.join(dir, "valid-00000-of-00001.parquet");
  assert.equal(await fileDigest(file, "git-sha1"), gitSha1(files["deepmind/code_contests/data/valid-00000-of-00001.parquet"]!));
  assert.match(valid.out, /use: dataset\/codecontests/);
});

test("HTTP 404 (an unknown revision) and 401 are clear errors with what to do", async () => {
  const missing = await bdc({}, "data", "pull", "apps", "--revision", "v9", "--out", "x404");
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^listing codeparrot\/apps@v9: not found \(HTTP 404\) at http:\/\/127\.0\.0\.1:\d+\/api\/datasets\/codeparrot\/apps\/tree\/v9 {2}\[BDC_DOWNLOAD_FAILED\]\n {2}hint: check the dataset and --revision/);

  state.token = "s3cret";
  const denied = await bdc({}, "data", "pull", "apps", "--out", "x401");
  assert.equal(denied.code, 1);
  assert.match(denied.err, /access denied \(HTTP 401\).*\[BDC_DOWNLOAD_FAILED\]\n {2}hint: set HF_TOKEN/);
  const wrong = await bdc({ HF_TOKEN: "nope" }, "data", "pull", "apps", "--out", "x401");
  assert.match(wrong.err, /hint: HF_TOKEN was sent but does not grant access/);
  const ok = await bdc({ HF_TOKEN: "s3cret" }, "data", "pull", "apps", "--out", "x401", "--split", "train", "--quiet");
  assert.equal(ok.code, 0, ok.err);
  assert.equal(ok.err, "");
  assert.deepEqual(fs.readdirSync(path.join(project, "x401")), ["train.jsonl"]);
});

test("an unreachable endpoint is a clear error", async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const port = (closed.address() as { port: number }).port;
  await new Promise((r) => closed.close(r));
  const r = await bdc({ HF_ENDPOINT: `http://127.0.0.1:${port}` }, "data", "pull", "apps", "--out", "xnet");
  assert.equal(r.code, 1);
  assert.match(r.err, /^listing codeparrot\/apps@main: cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\) {2}\[BDC_DOWNLOAD_FAILED\]\n {2}hint: check the network connection, or set HF_ENDPOINT/);
});

test("usage errors exit 2", async () => {
  const r = await bdc({}, "data", "pull", "humaneval");
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown dataset "humaneval" {2}\[BDC_USAGE\]\n {2}hint: datasets: apps, codecontests/);
  assert.equal((await bdc({}, "data", "fetch", "apps")).code, 2);
  assert.equal((await bdc({}, "data", "pull")).code, 2);
  assert.match((await bdc({}, "data", "--help")).out, /Usage: bdc data pull <apps\|codecontests>/);
});
