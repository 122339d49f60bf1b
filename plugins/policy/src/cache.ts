/**
 * The response cache (completions and embeddings alike): content-addressed on disk, so that rerunning a workflow is free and
 * deterministic. The key is the SHA-256 of everything that determines a response (provider,
 * endpoint, model, every sampling parameter, the messages); an entry is written to a temporary
 * file and renamed into place, so concurrent writers and a killed process never leave a torn
 * entry (rename is atomic; the last writer of identical content wins).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ProviderResponse } from "./types.ts";

/** JSON with object keys sorted, so that equal requests hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

export const cacheKey = (request: unknown): string => createHash("sha256").update(canonicalJson(request)).digest("hex");

export interface CacheEntry<T = ProviderResponse> {
  readonly key: string;
  readonly request: unknown;
  readonly response: T;
  readonly created: string;
}

const isCompletion = (r: unknown): r is ProviderResponse => typeof (r as ProviderResponse | undefined)?.text === "string";

export class ResponseCache<T = ProviderResponse> {
  /** `valid` tells an entry of this kind from a foreign or damaged one (treated as a miss). */
  constructor(
    readonly dir: string,
    private readonly valid: (response: unknown) => response is T = isCompletion as (r: unknown) => r is T,
  ) {}

  private file(key: string): string {
    return path.join(this.dir, key.slice(0, 2), `${key}.json`);
  }

  /** The cached response, or undefined (a missing or unreadable entry is a miss). */
  get(key: string): T | undefined {
    try {
      const entry = JSON.parse(fs.readFileSync(this.file(key), "utf8")) as CacheEntry<unknown>;
      return entry.key === key && this.valid(entry.response) ? entry.response : undefined;
    } catch {
      return undefined;
    }
  }

  put(key: string, request: unknown, response: T): void {
    const file = this.file(key);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const entry: CacheEntry<T> = { key, request, response, created: new Date().toISOString() };
    fs.writeFileSync(tmp, `${JSON.stringify(entry)}\n`);
    fs.renameSync(tmp, file);
  }
}
