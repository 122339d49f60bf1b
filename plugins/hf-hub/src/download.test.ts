// Resumable, verified downloads against a local fake hub (node:http on 127.0.0.1).
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, beforeEach, test } from "node:test";
import { BdcError, type Io } from "@bdc/core";
import { downloadFiles, expectedOf, fileDigest, HubClient, verifyFile, type HubRepo, type TreeEntry } from "./index.ts";
import { gitSha1, sha256, startFakeHub, type FakeHub } from "./testing.ts";

const repo: HubRepo = { type: "model", id: "org/m" };
const big = crypto.randomBytes(200_000);
const files = {
  "config.json": Buffer.from('{"a":1}'),
  "model.safetensors": big,
  "sub/extra.json": Buffer.from('{"b":2}'),
  "bad.safetensors": { content: Buffer.alloc(1000, 1), served: Buffer.alloc(1000, 2) },
};
let hub: FakeHub;
let tmp: string;

before(async () => {
  hub = await startFakeHub([{ type: "model", id: "org/m", files }]);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bdc-hfhub-"));
});
after(async () => {
  await hub.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  hub.log.length = 0;
  hub.interruptOnce.clear();
});

function io(isTTY = false) {
  const o = { out: "", err: "" };
  const it: Io = { out: (t) => void (o.out += t), err: (t) => void (o.err += t), cwd: tmp, env: {}, isTTY };
  return { io: it, o };
}

async function listing(): Promise<TreeEntry[]> {
  return (await new HubClient(hub.endpoint, undefined).tree(repo, "main", "", { recursive: true })).filter((e) => e.type === "file");
}

test("fileDigest: sha256 and the git blob sha1", async () => {
  const f = path.join(tmp, "digest.bin");
  fs.writeFileSync(f, big);
  assert.equal(await fileDigest(f, "sha256"), sha256(big));
  assert.equal(await fileDigest(f, "git-sha1"), gitSha1(big));
  assert.deepEqual(expectedOf({ type: "file", path: "x", size: 3, oid: "A".repeat(40) }), { size: 3, digest: { kind: "git-sha1", value: "a".repeat(40) } });
  assert.deepEqual(expectedOf({ type: "file", path: "x", size: 10, lfs: { oid: `sha256:${"B".repeat(64)}`, size: 5 } }), { size: 5, digest: { kind: "sha256", value: "b".repeat(64) } });
  assert.deepEqual(await verifyFile(f, { size: 1 }), { ok: false, why: `size ${big.length} bytes, expected 1` });
});

test("downloads into a folder (sub-folders kept), one bar on a terminal, pinned to the reported commit", async () => {
  const out = path.join(tmp, "a");
  const list = (await listing()).filter((e) => e.path !== "bad.safetensors");
  const { io: tty, o } = io(true);
  const r = await downloadFiles(new HubClient(hub.endpoint, undefined), { io: tty, repo, revision: "main", files: list, out });
  assert.equal(r.commit, hub.commitOf("org/m"));
  assert.deepEqual(r.files.map((f) => [path.relative(out, f.path), f.fetched]), [
    ["config.json", true],
    ["model.safetensors", true],
    [path.join("sub", "extra.json"), true],
  ]);
  assert.ok(fs.readFileSync(path.join(out, "model.safetensors")).equals(big));
  assert.equal(fs.readFileSync(path.join(out, "sub", "extra.json"), "utf8"), '{"b":2}');
  // The first resolve names the branch; the rest name the commit it resolved to.
  const resolves = hub.log.filter((l) => l.server === "hub" && l.url.includes("/resolve/")).map((l) => l.url);
  assert.match(resolves[0]!, /\/org\/m\/resolve\/main\/config\.json$/);
  assert.ok(resolves.slice(1).every((u) => u.includes(`/resolve/${r.commit}/`)), resolves.join("\n"));
  // One bar: "[i/n] name [###...] pct bytes / total", redrawn with \r; a done line per file.
  assert.match(o.err, /^org\/m@main: 3 file\(s\), 195 KiB -> /);
  assert.match(o.err, /\r\[2\/3\] model\.safetensors {2}\[[#-]{24}\] +\d+% {2}[\d.]+ (B|KiB) \/ 195 KiB/);
  assert.match(o.err, /\r\x1b\[K {2}sub\/extra\.json: done/);
  assert.ok(o.err.endsWith("\n") || o.err.endsWith("\r\x1b[K"), JSON.stringify(o.err.slice(-40)));
  assert.equal(o.out, "");

  // Again: nothing is fetched; a file that differs is removed and fetched again.
  fs.writeFileSync(path.join(out, "config.json"), '{"a":2}');
  hub.log.length = 0;
  const { io: plain, o: o2 } = io(false);
  const again = await downloadFiles(new HubClient(hub.endpoint, undefined), { io: plain, repo, revision: "main", files: list, out });
  assert.deepEqual(again.files.map((f) => f.fetched), [true, false, false]);
  assert.match(o2.err, /config\.json: the existing file differs from the hub \(git-sha1 [0-9a-f]{40}, expected [0-9a-f]{40}\); downloading it again\n/);
  assert.match(o2.err, /model\.safetensors: up to date\n/);
  assert.deepEqual(hub.log.map((l) => l.url.replace(/\?.*/, "")), [`/org/m/resolve/main/config.json`]);
  assert.equal(fs.readFileSync(path.join(out, "config.json"), "utf8"), '{"a":1}');
});

test("an interrupted transfer from the CDN resumes with Range; quiet prints nothing", async () => {
  const out = path.join(tmp, "b");
  const list = (await listing()).filter((e) => e.path === "model.safetensors");
  hub.interruptOnce.add("org/m/model.safetensors");
  const { io: plain, o } = io(false);
  const client = new HubClient(hub.endpoint, undefined);
  const err = await downloadFiles(client, { io: plain, repo, revision: "main", files: list, out, quiet: true }).catch((e: unknown) => e as BdcError);
  assert.ok(err instanceof BdcError);
  assert.equal(err.code, "BDC_DOWNLOAD_FAILED");
  assert.match(err.message, /^downloading model\.safetensors: the connection was lost after [\d.]+ KiB of 195 KiB$/);
  assert.equal(err.hint, "run the same command again: it resumes from model.safetensors.part");
  const have = fs.statSync(path.join(out, "model.safetensors.part")).size;
  assert.ok(have > 0 && have < big.length);
  hub.log.length = 0;
  const r = await downloadFiles(client, { io: plain, repo, revision: "main", files: list, out, quiet: true });
  assert.equal(r.files[0]!.fetched, true);
  assert.deepEqual(hub.log.map((l) => [l.server, l.range]), [
    ["hub", `bytes=${have}-`],
    ["cdn", `bytes=${have}-`],
  ]);
  assert.ok(fs.readFileSync(path.join(out, "model.safetensors")).equals(big));
  assert.deepEqual(fs.readdirSync(out), ["model.safetensors"]);
  assert.equal(o.err, "");
});

test("a checksum mismatch leaves neither the file nor the partial file", async () => {
  const out = path.join(tmp, "c");
  const list = (await listing()).filter((e) => e.path === "bad.safetensors");
  const { io: plain } = io(false);
  const err = await downloadFiles(new HubClient(hub.endpoint, undefined), { io: plain, repo, revision: "main", files: list, out }).catch((e: unknown) => e as BdcError);
  assert.ok(err instanceof BdcError);
  assert.equal(err.code, "BDC_DOWNLOAD_CHECKSUM");
  assert.match(err.message, /^downloading bad\.safetensors: the file does not match the hub's checksum \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\); the partial file was removed$/);
  assert.deepEqual(fs.readdirSync(out), []);
});

test("a listing that names a file outside the folder is refused", async () => {
  const { io: plain } = io(false);
  const evil: TreeEntry = { type: "file", path: "../../etc/x", size: 1 };
  await assert.rejects(downloadFiles(new HubClient(hub.endpoint, undefined), { io: plain, repo, revision: "main", files: [evil], out: path.join(tmp, "d") }), /refusing to write "..\/..\/etc\/x" outside/);
});
