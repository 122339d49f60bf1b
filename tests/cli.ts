/**
 * The real `bdc` CLI in a process of its own, for end-to-end tests: from `cwd`, with the ONNX
 * cache in `onnxCache`, without colours, and without pnpm's INIT_CWD / npm_lifecycle_event (set
 * under `pnpm test`: the CLI would take INIT_CWD as the user's folder).
 */
import { spawn, spawnSync } from "node:child_process";
import * as path from "node:path";

const bin = path.resolve(import.meta.dirname, "../core/src/cli/bin.ts");

export interface CliResult {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

export function runBdc(cwd: string, args: ReadonlyArray<string>, options: { readonly onnxCache: string; readonly timeoutMs?: number }): CliResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", bin, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, INIT_CWD: undefined, npm_lifecycle_event: undefined, BDC_ONNX_CACHE: options.onnxCache, NO_COLOR: "1" },
    timeout: options.timeoutMs ?? 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** As runBdc, without blocking this process (a test that serves the CLI, e.g. a scripted model server, needs its event loop). */
export function runBdcAsync(cwd: string, args: ReadonlyArray<string>, options: { readonly onnxCache: string; readonly timeoutMs?: number; readonly env?: Readonly<Record<string, string | undefined>> }): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", bin, ...args], {
      cwd,
      env: { ...process.env, INIT_CWD: undefined, npm_lifecycle_event: undefined, BDC_ONNX_CACHE: options.onnxCache, NO_COLOR: "1", ...options.env },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => void (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => void (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}
