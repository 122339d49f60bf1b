/**
 * `bdc data pull apps|codecontests [--out DIR] [--revision R] [--split S]...`: downloads the
 * real dataset files from the Hugging Face hub.
 *
 * - endpoint: env HF_ENDPOINT (default https://huggingface.co); env HF_TOKEN is sent as a bearer
 *   token when set (gated or private mirrors);
 * - files are listed with `GET {endpoint}/api/datasets/{repo}/tree/{revision}/{folder}` (paged by
 *   the Link header) and fetched from `{endpoint}/datasets/{repo}/resolve/{revision}/{file}`;
 * - each file is written to `<file>.part` first; a second run resumes it with an HTTP Range
 *   request; it is renamed into place only after its size and checksum are verified (sha256 =
 *   `lfs.oid` for LFS files, else the git blob sha1 `oid`); files already complete and verified
 *   are not fetched again;
 * - progress goes to stderr (a bar on a terminal, a few plain lines otherwise), the summary to
 *   stdout; failures are BdcErrors (BDC_DOWNLOAD_FAILED, BDC_DOWNLOAD_CHECKSUM) saying what to do,
 *   exit code 1.
 *
 * The hub client (listing, downloads, checksums, progress, errors) is @bdc/hf-hub, shared with
 * `bdc models pull`.
 */
import * as path from "node:path";
import { BdcError, type CliCommand, type Io, type ParsedArgs } from "@bdc/core";
import { downloadFailed, downloadFiles, HubClient, type HubRepo } from "@bdc/hf-hub";

export interface HubDataset {
  readonly repo: string;
  /** The folder of the repository to list ("" for the root). */
  readonly folder: string;
  /** Which listed files to fetch. */
  select(file: string): boolean;
  /** The plugin that reads the files, for the closing hint. */
  readonly plugin: string;
}

export const HUB_DATASETS: Readonly<Record<string, HubDataset>> = {
  apps: { repo: "codeparrot/apps", folder: "", select: (f) => f === "train.jsonl" || f === "test.jsonl", plugin: "dataset/apps" },
  codecontests: { repo: "deepmind/code_contests", folder: "data", select: (f) => /^data\/[^/]+\.parquet$/.test(f), plugin: "dataset/codecontests" },
};

const spec = {
  name: "data",
  summary: "Download datasets from the Hugging Face hub (bdc data pull apps|codecontests)",
  usage: "bdc data pull <apps|codecontests> [--out DIR] [--revision R] [--split NAME]...",
  minPositionals: 2,
  maxPositionals: 2,
  details: [
    "Datasets: apps = codeparrot/apps (train.jsonl, test.jsonl); codecontests = deepmind/code_contests (data/*.parquet).",
    "Environment: HF_ENDPOINT (default https://huggingface.co, or a mirror), HF_TOKEN (sent as a bearer token).",
    "An interrupted download resumes when the command is run again; every file is checked against the hub's checksum.",
  ].join("\n"),
  flags: {
    out: { type: "string", value: "DIR", description: "where to write the files (default: data/<dataset>)" },
    revision: { type: "string", value: "R", description: "branch, tag or commit of the dataset repository (default: main)" },
    split: { type: "string", value: "NAME", multiple: true, description: "only the files of this split (train, test, valid, ...)" },
    quiet: { type: "boolean", short: "q", description: "no progress output" },
  },
} as const;

export interface PullOptions {
  readonly dataset: string;
  readonly out: string;
  readonly revision: string;
  readonly splits: ReadonlyArray<string>;
  readonly quiet: boolean;
}

/** Downloads (or resumes, or confirms) every selected file; returns the local paths. */
export async function pull(io: Io, o: PullOptions): Promise<string[]> {
  const ds = HUB_DATASETS[o.dataset]!;
  const client = HubClient.fromEnv(io.env, { userAgent: "bdc-data-pull" });
  const repo: HubRepo = { type: "dataset", id: ds.repo };
  const listed = await client.tree(repo, o.revision, ds.folder);
  const files = listed
    .filter((e) => e.type === "file" && ds.select(e.path))
    .filter((e) => o.splits.length === 0 || o.splits.some((s) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}([-_.]|$)`).test(path.posix.basename(e.path))))
    .sort((a, b) => a.path.localeCompare(b.path));
  if (files.length === 0) {
    throw downloadFailed(
      `no ${o.splits.length > 0 ? `${o.splits.join("/")} ` : ""}files to download in ${ds.repo}@${o.revision}${ds.folder === "" ? "" : `/${ds.folder}`}`,
      o.splits.length > 0 ? `the files listed there are: ${listed.map((e) => e.path).join(", ") || "(none)"}` : "check --revision and HF_ENDPOINT",
    );
  }
  const got = await downloadFiles(client, { io, repo, revision: o.revision, files, out: o.out, quiet: o.quiet, localPath: (e) => path.posix.basename(e.path) });
  return got.files.map((f) => f.path);
}

async function run(io: Io, args: ParsedArgs): Promise<number> {
  const [sub, dataset] = args.positionals as [string, string];
  if (sub !== "pull") throw new BdcError({ code: "BDC_USAGE", message: `bdc data: unknown subcommand "${sub}"`, hint: `usage: ${spec.usage}` });
  if (!(dataset in HUB_DATASETS)) {
    throw new BdcError({ code: "BDC_USAGE", message: `bdc data pull: unknown dataset "${dataset}"`, hint: `datasets: ${Object.keys(HUB_DATASETS).join(", ")}` });
  }
  const flags = args.flags;
  const out = path.resolve(io.cwd, typeof flags.out === "string" ? flags.out : path.join("data", dataset));
  const files = await pull(io, {
    dataset,
    out,
    revision: typeof flags.revision === "string" ? flags.revision : "main",
    splits: Array.isArray(flags.split) ? flags.split : [],
    quiet: flags.quiet === true,
  });
  const ds = HUB_DATASETS[dataset]!;
  const example = files.find((f) => /(^|[/\\])test[-_.]/.test(f)) ?? files[0]!;
  io.out(`${files.map((f) => `${f}\n`).join("")}use one in a workflow: { use: ${ds.plugin}, with: { path: ${path.relative(io.cwd, example) || example} } }\n`);
  return 0;
}

const command: CliCommand = { spec, run };
export default command;
