/**
 * The Hugging Face hub's HTTP API, as much of it as `bdc data pull` and `bdc models pull` use.
 *
 * - endpoint: env HF_ENDPOINT (default https://huggingface.co, or a mirror); env HF_TOKEN is
 *   sent as a bearer token, and only to the endpoint's own origin (never to the CDN a download
 *   is redirected to, nor to another host a `Link` header names);
 * - `tree()`: `GET {endpoint}/api/{datasets|models}/{repo}/tree/{revision}/{folder}`, optionally
 *   `?recursive=true`; the hub pages long listings with `Link: <...>; rel="next"` (a cursor in the
 *   URL), which is followed to the end;
 * - `resolveUrl()`: `{endpoint}/datasets/{repo}/resolve/{revision}/{file}` for datasets,
 *   `{endpoint}/{repo}/resolve/{revision}/{file}` for models. The hub answers an LFS file with a
 *   302 to its CDN and a small file directly; either way its own response carries `X-Repo-Commit`
 *   (the commit the revision resolved to). Redirects are followed here, by hand, so that this
 *   header is seen and the token is not forwarded to another origin;
 * - failures are BdcErrors (BDC_DOWNLOAD_FAILED) whose hint says what to do.
 */
import { BdcError, type Io } from "@bdc/core";

export type RepoType = "model" | "dataset";

/** A repository of the hub: `{ type: "model", id: "Qwen/Qwen2.5-0.5B" }`. */
export interface HubRepo {
  readonly type: RepoType;
  readonly id: string;
}

/** An entry of the hub's tree API. `lfs.oid` is the sha256 of an LFS file; `oid` is the git blob sha1 (of the pointer, for an LFS file). */
export interface TreeEntry {
  readonly type: "file" | "directory" | (string & {});
  readonly path: string;
  readonly size: number;
  readonly oid?: string;
  readonly lfs?: { readonly oid: string; readonly size: number; readonly pointerSize?: number };
  /** Set by the hub for files stored on Xet; the `lfs` field is there as well. */
  readonly xetHash?: string;
}

export const DEFAULT_ENDPOINT = "https://huggingface.co";
const MAX_REDIRECTS = 10;

/** A BDC_DOWNLOAD_FAILED error. */
export function downloadFailed(message: string, hint: string, cause?: unknown): BdcError {
  return new BdcError({ code: "BDC_DOWNLOAD_FAILED", message, hint, ...(cause === undefined ? {} : { cause }) });
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export interface HttpErrorContext {
  readonly hasToken: boolean;
  /** Words the hints use ("the dataset" / "the model"); datasets when absent. */
  readonly repoType?: RepoType;
  /** The hub's own reason (its `X-Error-Message` header), added to the message when present. */
  readonly hubMessage?: string | undefined;
}

/** What went wrong with a request, in words, with what to do. */
export function httpError(status: number, url: string, what: string, ctx: HttpErrorContext): BdcError {
  const model = ctx.repoType === "model";
  const noun = model ? "model" : "dataset";
  const why = ctx.hubMessage === undefined || ctx.hubMessage === "" ? "" : `: ${ctx.hubMessage}`;
  if (status === 401 || status === 403) {
    return downloadFailed(
      `${what}: access denied (HTTP ${status}) at ${url}${why}`,
      ctx.hasToken
        ? `HF_TOKEN was sent but does not grant access: check the token, and accept the ${noun}'s terms on the hub if it is gated`
        : model
          ? "set HF_TOKEN to a Hugging Face access token (the model may be gated or private, or the repository id wrong: the hub answers 401 for a repository that does not exist)"
          : "set HF_TOKEN to a Hugging Face access token (the dataset may be gated, or the repository name wrong)",
    );
  }
  if (status === 404) {
    return downloadFailed(
      `${what}: not found (HTTP 404) at ${url}${why}`,
      model
        ? "check the repository id (org/name) and --revision (a branch, tag or commit of the repository), and HF_ENDPOINT if you use a mirror"
        : "check the dataset and --revision (a branch, tag or commit of the repository), and HF_ENDPOINT if you use a mirror",
    );
  }
  if (status === 429) return downloadFailed(`${what}: rate limited (HTTP 429) at ${url}${why}`, "wait a while and run the command again (set HF_TOKEN for higher limits); finished files are kept");
  return downloadFailed(`${what}: HTTP ${status} at ${url}${why}`, "run the command again later; finished files are kept and a partial file resumes");
}

export function networkError(endpoint: string, what: string, cause: unknown): BdcError {
  const c = (cause as { cause?: { code?: string; message?: string } }).cause;
  const reason = c?.code ?? c?.message ?? (cause as Error).message;
  return downloadFailed(`${what}: cannot reach ${endpoint} (${reason})`, "check the network connection, or set HF_ENDPOINT to a reachable mirror; finished files are kept and a partial file resumes", cause);
}

const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/");
const COMMIT = /^[0-9a-f]{40}$/;

export interface HubClientOptions {
  readonly userAgent?: string;
}

/** A response of the hub, after redirects. */
export interface HubResponse {
  readonly res: Response;
  /** The URL that answered (the last redirect's target). */
  readonly url: string;
  /** `X-Repo-Commit` of the hub's answer (on any hop), lower-case, when it sent one. */
  readonly commit: string | undefined;
}

export interface OpenOptions {
  readonly method?: "GET" | "HEAD";
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal;
  /** Follow redirects (default true); false returns the first 3xx as it is. */
  readonly follow?: boolean;
}

export class HubClient {
  private readonly origin: string;
  private readonly userAgent: string;

  constructor(
    readonly endpoint: string,
    private readonly token: string | undefined,
    options: HubClientOptions = {},
  ) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    let origin: string;
    try {
      const u = new URL(this.endpoint);
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error(u.protocol);
      origin = u.origin;
    } catch (cause) {
      throw new BdcError({ code: "BDC_DOWNLOAD_FAILED", message: `HF_ENDPOINT ${JSON.stringify(endpoint)} is not an http(s) URL`, hint: "set it to the hub's address, e.g. https://huggingface.co or a mirror's https://...", cause });
    }
    this.origin = origin;
    this.userAgent = options.userAgent ?? "bdc-hf-hub";
  }

  /** HF_ENDPOINT (default https://huggingface.co) and HF_TOKEN (an empty one counts as unset). */
  static fromEnv(env: Io["env"], options: HubClientOptions = {}): HubClient {
    return new HubClient(env.HF_ENDPOINT || DEFAULT_ENDPOINT, env.HF_TOKEN || undefined, options);
  }

  get hasToken(): boolean {
    return this.token !== undefined;
  }

  /** Request headers for `url`: the token only for the endpoint's origin. */
  headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const sameOrigin = new URL(url).origin === this.origin;
    return { "user-agent": this.userAgent, ...(this.token === undefined || !sameOrigin ? {} : { authorization: `Bearer ${this.token}` }), ...extra };
  }

  /** A request with redirects followed by hand; network failures become BdcErrors. */
  async open(url: string, what: string, o: OpenOptions = {}): Promise<HubResponse> {
    let commit: string | undefined;
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = await fetch(url, { method: o.method ?? "GET", headers: this.headers(url, o.headers), redirect: "manual", ...(o.signal === undefined ? {} : { signal: o.signal }) });
      } catch (cause) {
        if ((cause as Error).name === "AbortError") throw downloadFailed(`${what}: the connection stalled`, "run the command again: the download resumes where it stopped", cause);
        throw networkError(this.endpoint, what, cause);
      }
      const c = res.headers.get("x-repo-commit")?.toLowerCase();
      if (commit === undefined && c !== undefined && COMMIT.test(c)) commit = c;
      const location = res.headers.get("location");
      if (o.follow === false || res.status < 300 || res.status >= 400 || res.status === 304 || location === null) return { res, url, commit };
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw downloadFailed(`${what}: too many redirects (last: ${url})`, "check HF_ENDPOINT: it must be a Hugging Face hub or mirror");
      url = new URL(location, url).href;
    }
  }

  async request(url: string, what: string, o: OpenOptions = {}): Promise<Response> {
    return (await this.open(url, what, o)).res;
  }

  treeUrl(repo: HubRepo, revision: string, folder = "", recursive = false): string {
    const kind = repo.type === "model" ? "models" : "datasets";
    return `${this.endpoint}/api/${kind}/${repo.id}/tree/${encodeURIComponent(revision)}${folder === "" ? "" : `/${encodePath(folder)}`}${recursive ? "?recursive=true" : ""}`;
  }

  /**
   * Every entry of a folder ("" = the root) of a repository at a revision, following the
   * `Link: <...>; rel="next"` pages. `recursive` lists the files of sub-folders too.
   */
  async tree(repo: HubRepo, revision: string, folder = "", options: { readonly recursive?: boolean } = {}): Promise<TreeEntry[]> {
    let url: string | undefined = this.treeUrl(repo, revision, folder, options.recursive === true);
    const out: TreeEntry[] = [];
    const what = `listing ${repo.id}@${revision}${folder === "" ? "" : `/${folder}`}`;
    for (let pages = 0; url !== undefined; pages++) {
      const { res } = await this.open(url, what);
      if (!res.ok) {
        await res.body?.cancel();
        throw httpError(res.status, url, what, { hasToken: this.hasToken, repoType: repo.type, hubMessage: res.headers.get("x-error-message") ?? undefined });
      }
      let page: unknown;
      try {
        page = await res.json();
      } catch (cause) {
        throw downloadFailed(`${what}: the hub's answer is not JSON (${url})`, "check HF_ENDPOINT: it must be a Hugging Face hub or mirror", cause);
      }
      if (!Array.isArray(page)) throw downloadFailed(`${what}: unexpected answer from ${url}`, "check HF_ENDPOINT: it must be a Hugging Face hub or mirror");
      out.push(...(page as TreeEntry[]));
      const next = nextLink(res.headers.get("link"));
      if (next !== undefined && pages >= 10_000) throw downloadFailed(`${what}: the listing does not end (${url})`, "check HF_ENDPOINT: it must be a Hugging Face hub or mirror");
      url = next === undefined ? undefined : this.pageUrl(next, url);
    }
    return out;
  }

  /**
   * A `rel="next"` target, relative to the page that named it. Mirrors sometimes pass on the
   * hub's own absolute links: those are sent to the endpoint instead.
   */
  private pageUrl(next: string, base: string): string {
    const abs = new URL(next, base);
    if (abs.origin !== this.origin && abs.origin === new URL(DEFAULT_ENDPOINT).origin) return `${this.endpoint}${abs.pathname}${abs.search}`;
    return abs.href;
  }

  resolveUrl(repo: HubRepo, revision: string, file: string): string {
    return `${this.endpoint}${repo.type === "dataset" ? "/datasets" : ""}/${repo.id}/resolve/${encodeURIComponent(revision)}/${encodePath(file)}`;
  }

  /**
   * The commit a revision resolves to, from `X-Repo-Commit` of a HEAD request on one of its
   * files (redirects are not followed); undefined when the hub does not say.
   */
  async commitOf(repo: HubRepo, revision: string, file: string): Promise<string | undefined> {
    if (COMMIT.test(revision)) return revision;
    const url = this.resolveUrl(repo, revision, file);
    const { res, commit } = await this.open(url, `looking up ${repo.id}@${revision}`, { method: "HEAD", follow: false });
    await res.body?.cancel();
    return commit;
  }
}

/** The target of `rel="next"` in a Link header. */
export function nextLink(link: string | null): string | undefined {
  if (link === null) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m !== null && /;\s*rel\s*=\s*"?([^";]*\s)?next(\s[^";]*)?"?\s*(;|$)/i.test(m[2]!)) return m[1]!;
  }
  return undefined;
}
