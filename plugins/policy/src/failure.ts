/** What createPolicy and createEmbedder share around a provider call: where the cache lives, and a failed call as the user's error. */
import * as path from "node:path";
import { BdcError, findProjectRoot, type KernelServices } from "@bdc/core";
import { ProviderError, type ProviderErrorKind } from "./types.ts";

const ERROR_CODES: Partial<Record<ProviderErrorKind, string>> = {
  auth: "BDC_POLICY_AUTH",
  not_found: "BDC_POLICY_NOT_FOUND",
  bad_request: "BDC_POLICY_REQUEST",
};

export const responseCacheDir = (cacheDir: string | undefined, kernel: KernelServices): string =>
  cacheDir ?? path.join(findProjectRoot(kernel.baseDir), ".cache", "bdc", "responses");

/**
 * A call that failed for good (retries spent, or not retryable), as what to throw: an abort stays
 * a ProviderError; anything else becomes a BdcError saying where, what and what to do.
 */
export function providerFailure(
  e: unknown,
  where: string,
  explain: ((kind: ProviderErrorKind) => string | undefined) | undefined,
): { readonly error: ProviderError; readonly retries: number; readonly thrown: Error } {
  const error = e instanceof ProviderError ? e : new ProviderError("connection", String(e));
  const retries = (e as { retries?: number }).retries ?? 0;
  if (error.kind === "aborted") return { error, retries, thrown: error };
  const thrown = new BdcError({
    code: ERROR_CODES[error.kind] ?? "BDC_POLICY_UNAVAILABLE",
    message: `${where}: ${error.message}${error.status === undefined ? "" : ` (HTTP ${error.status})`}${retries > 0 ? ` after ${retries} retries` : ""}`,
    hint: explain?.(error.kind) ?? (ERROR_CODES[error.kind] === undefined ? "the provider kept failing; try again later, or raise max_retries / timeout_ms" : undefined),
    cause: e,
  });
  return { error, retries, thrown };
}

/** A read-only cache (a replay) that lacks an entry. */
export function cacheMissError(where: string, key: string, what: string, cacheDir: string): BdcError {
  const shown = what.length > 80 ? `${what.slice(0, 80)}...` : what;
  return new BdcError({
    code: "BDC_CACHE_MISS",
    message: `${where}: no cached response for this request (cache is read-only): key ${key}, ${shown}`,
    hint: `replay needs the cache of the original run in ${cacheDir}; set cache: read-write to call the provider`,
  });
}
