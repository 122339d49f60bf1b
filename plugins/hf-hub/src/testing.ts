/**
 * A fake Hugging Face hub on 127.0.0.1 for tests (never the internet), speaking the parts of
 * the real API that @bdc/hf-hub uses, the way the real hub does:
 *
 * - `GET /api/{models|datasets}/{org}/{name}/tree/{revision}[/{folder}][?recursive=true]`: JSON
 *   entries `{type, oid, size, path, lfs?: {oid, size, pointerSize}}` (for an LFS file `size` is
 *   the file's size, `oid` the git sha1 of its pointer and `lfs.oid` its sha256; directories are
 *   `{type: "directory", oid, size: 0, path}`), in pages of `pageSize` with an absolute
 *   `Link: <...&cursor=...>; rel="next"`;
 * - `GET|HEAD /{org}/{name}/resolve/{revision}/{file}` (models) and
 *   `/datasets/{org}/{name}/resolve/...`: a small file is answered directly, an LFS file with a
 *   302 to a second server (the "CDN", another origin) that serves it by its sha256; the hub's
 *   own answers carry `X-Repo-Commit`, `ETag`, and for LFS files `X-Linked-Size` and
 *   `X-Linked-Etag`; both honour `Range: bytes=N-` (206, or 416 past the end);
 * - errors as the hub sends them: an unknown repository is 401 without a token (404 with one),
 *   `X-Error-Code: RepoNotFound`; an unknown revision 404 `RevisionNotFound`; a missing file
 *   404 `EntryNotFound` (with `X-Repo-Commit`); a required token missing or wrong 401.
 */
import * as crypto from "node:crypto";
import * as http from "node:http";
import type { RepoType } from "./client.ts";
import { listenOnLoopback, type LoopbackServer } from "@bdc/core/testing";

export const sha256 = (b: Buffer | string): string => crypto.createHash("sha256").update(b).digest("hex");
export const gitSha1 = (b: Buffer | string): string => {
  const buf = typeof b === "string" ? Buffer.from(b) : b;
  return crypto.createHash("sha1").update(`blob ${buf.length}\0`).update(buf).digest("hex");
};

export interface FakeFile {
  readonly content: Buffer;
  /** Stored with git LFS (served through the CDN redirect); default: files over 64 bytes or *.safetensors. */
  readonly lfs?: boolean;
  /** Serve these bytes instead of `content` (the listing keeps `content`'s checksum). */
  readonly served?: Buffer;
}

export interface FakeRepo {
  readonly type: RepoType;
  readonly id: string;
  /** Branch and tag names that resolve to `commit` (default ["main"]); the commit itself always does. */
  readonly revisions?: ReadonlyArray<string>;
  readonly commit?: string;
  readonly files: Readonly<Record<string, FakeFile | Buffer>>;
}

export interface Logged {
  readonly server: "hub" | "cdn";
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  readonly range: string | undefined;
  readonly auth: string | undefined;
}

export interface FakeHub {
  /** `http://127.0.0.1:PORT`, for HF_ENDPOINT. */
  readonly endpoint: string;
  /** The CDN's origin. */
  readonly cdn: string;
  readonly log: Logged[];
  /** `{repo}/{file}` whose next download is cut off after half the bytes. */
  readonly interruptOnce: Set<string>;
  /** Require this bearer token on the hub (the CDN's signed URLs need none). */
  token: string | undefined;
  /** Tree entries per page. */
  pageSize: number;
  /** Replaces the repositories. */
  setRepos(repos: ReadonlyArray<FakeRepo>): void;
  /** The commit a repository's revisions resolve to. */
  commitOf(repoId: string): string;
  close(): Promise<void>;
}

interface Stored {
  readonly repo: FakeRepo;
  readonly commit: string;
  readonly path: string;
  readonly content: Buffer;
  readonly served: Buffer;
  readonly lfs: boolean;
}

const isFakeFile = (f: FakeFile | Buffer): f is FakeFile => !Buffer.isBuffer(f);

export async function startFakeHub(repos: ReadonlyArray<FakeRepo> = []): Promise<FakeHub> {
  let byRepo = new Map<string, { repo: FakeRepo; commit: string; files: Stored[] }>();
  let bySha = new Map<string, Stored>();
  const log: Logged[] = [];
  const interruptOnce = new Set<string>();

  const setRepos = (rs: ReadonlyArray<FakeRepo>) => {
    byRepo = new Map();
    bySha = new Map();
    for (const repo of rs) {
      const commit = repo.commit ?? sha1Hex(`${repo.type}:${repo.id}`);
      const files = Object.entries(repo.files).map(([p, f]): Stored => {
        const content = isFakeFile(f) ? f.content : f;
        const lfs = (isFakeFile(f) ? f.lfs : undefined) ?? (content.length > 64 || p.endsWith(".safetensors"));
        return { repo, commit, path: p, content, served: (isFakeFile(f) ? f.served : undefined) ?? content, lfs };
      });
      byRepo.set(`${repo.type}:${repo.id}`, { repo, commit, files });
      for (const s of files) if (s.lfs) bySha.set(sha256(s.content), s);
    }
  };
  setRepos(repos);

  const hub: FakeHub = {
    endpoint: "",
    cdn: "",
    log,
    interruptOnce,
    token: undefined,
    pageSize: 1000,
    setRepos,
    commitOf: (id) => [...byRepo.values()].find((r) => r.repo.id === id)!.commit,
    close: async () => {
      await Promise.all(listening.map((l) => l.close()));
    },
  };
  const listening: LoopbackServer[] = [];

  const fail = (res: http.ServerResponse, status: number, code: string, message: string, extra: http.OutgoingHttpHeaders = {}) =>
    void res.writeHead(status, { "content-type": "application/json", "x-error-code": code, "x-error-message": message, ...extra }).end(JSON.stringify({ error: message }));

  /** Sends `body` (or its tail, for a Range request); cuts it off half-way when asked to. */
  function serve(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, key: string, headers: http.OutgoingHttpHeaders): void {
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const start = range === null ? 0 : Number(range[1]);
    if (range !== null && start >= body.length) return void res.writeHead(416, { "content-range": `bytes */${body.length}` }).end();
    const part = body.subarray(start);
    res.writeHead(range === null ? 200 : 206, {
      ...headers,
      "accept-ranges": "bytes",
      "content-length": part.length,
      ...(range === null ? {} : { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` }),
    });
    if (req.method === "HEAD") return void res.end();
    if (interruptOnce.delete(key)) {
      res.write(part.subarray(0, Math.floor(part.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(part);
  }

  const record = (server: "hub" | "cdn", req: http.IncomingMessage) =>
    log.push({ server, method: req.method ?? "GET", url: req.url ?? "", range: req.headers.range, auth: req.headers.authorization });

  const hubServer = http.createServer((req, res) => {
    record("hub", req);
    const url = new URL(req.url!, "http://x");
    if (hub.token !== undefined && req.headers.authorization !== `Bearer ${hub.token}`) {
      return fail(res, 401, "", req.headers.authorization === undefined ? "Access to this resource requires authentication" : "Invalid credentials in Authorization header");
    }
    const authed = req.headers.authorization !== undefined;
    const tree = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(url.pathname);
    const resolve = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const type: RepoType | undefined = tree !== null ? (tree[1] === "models" ? "model" : "dataset") : resolve !== null ? (resolve[1] === undefined ? "model" : "dataset") : undefined;
    const id = tree?.[2] ?? resolve?.[2];
    const rev = decodeURIComponent(tree?.[3] ?? resolve?.[3] ?? "");
    if (type === undefined || id === undefined) return void res.writeHead(404).end("Not Found");
    const r = byRepo.get(`${type}:${id}`);
    if (r === undefined) return fail(res, authed ? 404 : 401, "RepoNotFound", "Repository not found");
    if (rev !== r.commit && !(r.repo.revisions ?? ["main"]).includes(rev)) return fail(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);

    if (tree !== null) {
      const folder = tree[4] === undefined ? "" : decodeURIComponent(tree[4]);
      const recursive = url.searchParams.get("recursive") === "true";
      const prefix = folder === "" ? "" : `${folder}/`;
      const inFolder = r.files.filter((f) => f.path.startsWith(prefix));
      if (folder !== "" && inFolder.length === 0) return fail(res, 404, "EntryNotFound", `${folder} does not exist on "${rev}"`);
      const dirs = new Set<string>();
      const entries: object[] = [];
      for (const f of inFolder) {
        const rest = f.path.slice(prefix.length).split("/");
        for (let i = 1; i < rest.length && (recursive || i === 1); i++) dirs.add(prefix + rest.slice(0, i).join("/"));
        if (!recursive && rest.length > 1) continue;
        const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.content)}\nsize ${f.content.length}\n`;
        entries.push(
          f.lfs
            ? { type: "file", oid: gitSha1(pointer), size: f.content.length, lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: pointer.length }, path: f.path }
            : { type: "file", oid: gitSha1(f.content), size: f.content.length, path: f.path },
        );
      }
      for (const d of dirs) entries.push({ type: "directory", oid: sha1Hex(d), size: 0, path: d });
      entries.sort((a, b) => ((a as { path: string }).path < (b as { path: string }).path ? -1 : 1));
      const cursor = Number(url.searchParams.get("cursor") ?? "0");
      const page = entries.slice(cursor, cursor + hub.pageSize);
      const headers: http.OutgoingHttpHeaders = { "content-type": "application/json" };
      if (cursor + hub.pageSize < entries.length) {
        const next = new URL(`${hub.endpoint}${url.pathname}`);
        if (recursive) next.searchParams.set("recursive", "true");
        next.searchParams.set("expand", "false");
        next.searchParams.set("cursor", String(cursor + hub.pageSize));
        headers.link = `<${next.href}>; rel="next"`;
      }
      return void res.writeHead(200, headers).end(JSON.stringify(page));
    }

    const file = decodeURIComponent(resolve![4]!);
    const f = r.files.find((x) => x.path === file);
    if (f === undefined) return fail(res, 404, "EntryNotFound", `${file} does not exist on "${rev}"`, { "x-repo-commit": r.commit });
    const common = { "x-repo-commit": r.commit };
    if (f.lfs) {
      const sha = sha256(f.content);
      return void res
        .writeHead(302, {
          ...common,
          location: `${hub.cdn}/repos/${sha.slice(0, 2)}/${sha}?X-Amz-Signature=fake&response-content-disposition=attachment`,
          "x-linked-size": f.content.length,
          "x-linked-etag": `"${sha}"`,
          etag: `"${gitSha1(f.content)}"`,
          "content-length": 0,
        })
        .end();
    }
    serve(req, res, f.served, `${id}/${f.path}`, { ...common, etag: `"${gitSha1(f.content)}"` });
  });

  const cdnServer = http.createServer((req, res) => {
    record("cdn", req);
    const url = new URL(req.url!, "http://x");
    // Signed URLs take no other credentials (S3 refuses a request with two).
    if (req.headers.authorization !== undefined) return void res.writeHead(400, { "content-type": "text/plain" }).end("Only one auth mechanism allowed");
    const sha = /^\/repos\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const f = sha === undefined ? undefined : bySha.get(sha);
    if (f === undefined) return void res.writeHead(404).end("NoSuchKey");
    serve(req, res, f.served, `${f.repo.id}/${f.path}`, { etag: `"${sha}"`, "content-type": "application/octet-stream" });
  });

  const [hubListening, cdnListening] = [await listenOnLoopback(hubServer), await listenOnLoopback(cdnServer)];
  listening.push(hubListening, cdnListening);
  (hub as { endpoint: string }).endpoint = hubListening.url;
  // Another port is another origin: the token must not follow a redirect there.
  (hub as { cdn: string }).cdn = cdnListening.url;
  return hub;
}

function sha1Hex(s: string): string {
  return crypto.createHash("sha1").update(s).digest("hex");
}
