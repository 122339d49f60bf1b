/**
 * @bdc/search-mcts: BDC's first stage. MC-Tree-Of-Agents as operator plugins (select, expand,
 * simulate, backup, prune, refine), the search step, zero-shot, training-pair export and the
 * tree report.
 */
export * from "./types.ts";
export { runSearch } from "./search.ts";
export { renderTreeHtml, writeTreeReport } from "./report/tree-html.ts";
export type { SearchTreeJson } from "./report/tree-html.ts";
