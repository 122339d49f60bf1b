/**
 * @bdc/hf-hub - a small client for the Hugging Face hub: listing a repository (datasets and
 * models), resolve URLs, and resumable, checksum-verified downloads with one progress display.
 * Used by `bdc data pull` (@bdc/reward-python) and `bdc models pull` (@bdc/lm-local).
 */
export { DEFAULT_ENDPOINT, HubClient, downloadFailed, formatBytes, httpError, networkError, nextLink } from "./client.ts";
export type { HttpErrorContext, HubClientOptions, HubRepo, HubResponse, OpenOptions, RepoType, TreeEntry } from "./client.ts";
export { DownloadProgress, downloadFiles, expectedOf, fileDigest, verifyFile } from "./download.ts";
export type { DigestKind, DownloadFilesOptions, DownloadResult, DownloadedFile, Expected } from "./download.ts";
