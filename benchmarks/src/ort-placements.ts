/**
 * Which execution provider ONNX Runtime put each node of a model on: its own report, read from
 * the verbose log of a session opened in a child process (the log goes to that process's
 * stderr, and verbose logging is process-wide in onnxruntime-node). A GPU run is only as fast as
 * the nodes that fall back to the CPU allow (each fallback adds host<->device copies), so the
 * device check reports them.
 *
 *   node --import tsx benchmarks/src/ort-placements.ts MODEL.onnx webgpu   # prints the JSON
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { ort, sessionOptions, type Device } from "@bdc/onnx-graph";

export interface Placement {
  /** Execution provider -> number of nodes. */
  readonly providers: Readonly<Record<string, number>>;
  /** Op type -> count, for nodes ORT placed on the CPU while another provider was asked for. */
  readonly cpuOps: Readonly<Record<string, number>>;
  /** ORT's own warning when nodes fell back ("Some nodes were not assigned to the preferred execution providers..."). */
  readonly fallbackWarning: boolean;
}

const HEADER = /(All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)/;
const NODE_LINE = /VerifyEachNodeIsAssignedToAnEp\]\s{3,}(\S+) \(/;

/** Parses ORT's "Node placements" report out of a verbose log. */
export function parsePlacements(log: string): Placement {
  const providers: Record<string, number> = {};
  const cpuOps: Record<string, number> = {};
  let current: string | undefined;
  for (const line of log.split("\n")) {
    const h = HEADER.exec(line);
    if (h !== null) {
      current = h[2]!;
      providers[current] = (providers[current] ?? 0) + Number(h[3]);
      continue;
    }
    const n = NODE_LINE.exec(line);
    if (n !== null && current === "CPUExecutionProvider") cpuOps[n[1]!] = (cpuOps[n[1]!] ?? 0) + 1;
    else if (n === null && !line.includes("VerifyEachNodeIsAssignedToAnEp")) current = undefined;
  }
  const onlyCpu = Object.keys(providers).every((p) => p === "CPUExecutionProvider");
  return { providers, cpuOps: onlyCpu ? {} : cpuOps, fallbackWarning: log.includes("Some nodes were not assigned to the preferred execution providers") };
}

/** Opens `model` on `device` in a child process with verbose logging and returns ORT's placement report. */
export function nodePlacements(model: string, device: Device, timeoutMs = 600_000): Promise<Placement> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), model, device], { stdio: ["ignore", "ignore", "pipe"], timeout: timeoutMs });
    let log = "";
    child.stderr.setEncoding("utf8").on("data", (t: string) => void (log += t));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`opening ${model} on ${device} for its placements failed (exit ${code}): ${log.trim().split("\n").slice(-3).join(" | ")}`));
      else resolve(parsePlacements(log));
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [model, device] = process.argv.slice(2) as [string, Device];
  ort.env.logLevel = "verbose";
  const session = await ort.InferenceSession.create(model, { ...sessionOptions({ device, threads: 1 }), logSeverityLevel: 0, logVerbosityLevel: 0 });
  await session.release();
}
