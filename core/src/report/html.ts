/**
 * report.html: one self-contained page (no network, no scripts needed to read it) with the
 * run's status, a table per step, failures, step summaries, the artifacts steps wrote (search
 * trees, plots ...) as links, and the resolved workflow.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError } from "../errors.ts";
import type { RunSummary, StepSummary } from "../engine/run.ts";
import { RUN_FILES } from "../engine/store.ts";
import { escapeHtml } from "../util/html.ts";

export function writeReport(dir: string): string {
  const summaryFile = path.join(dir, RUN_FILES.summary);
  if (!fs.existsSync(summaryFile)) {
    throw new BdcError({
      code: "BDC_RUN_DIR",
      message: `${dir} has no ${RUN_FILES.summary}`,
      hint: "pass a run directory written by `bdc run` (a run killed before its first summary has none yet: resume it)",
    });
  }
  const summary = JSON.parse(fs.readFileSync(summaryFile, "utf8")) as RunSummary;
  const resolved = readText(path.join(dir, RUN_FILES.resolved));
  const html = renderReport(summary, resolved, (step) => artifacts(dir, step), (step) => {
    const file = path.join(dir, "steps", step, REPORT_SECTION);
    return fs.existsSync(file) ? readText(file) : undefined;
  });
  const out = path.join(dir, RUN_FILES.report);
  fs.writeFileSync(out, html);
  return out;
}

function artifacts(dir: string, step: string): string[] {
  const stepDir = path.join(dir, "steps", step);
  if (!fs.existsSync(stepDir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(stepDir);
  return out;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return "";
  }
}


/**
 * A step may leave `report-section.html` in its directory: an HTML fragment (links relative to the
 * run directory) shown in its section of the report (step/score: the per-problem table).
 */
export const REPORT_SECTION = "report-section.html";

export function renderReport(summary: RunSummary, resolvedYaml: string, artifactsOf: (step: string) => string[], sectionOf?: (step: string) => string | undefined): string {
  const steps = Object.entries(summary.steps);
  const rows = steps
    .map(([name, s]) => `<tr><td>${escapeHtml(name)}</td><td><code>${escapeHtml(s.plugin)}</code></td><td class="${escapeHtml(s.status)}">${escapeHtml(s.status)}</td><td>${s.items}</td><td>${s.done}</td><td>${s.failed}</td><td>${s.resumed}</td><td>${s.duration_s.toFixed(2)}</td></tr>`)
    .join("\n");
  const sections = steps.map(([name, s]) => stepSection(name, s, artifactsOf(name), sectionOf?.(name))).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(summary.workflow)} - bdc run report</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1b1f24}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0} th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} td:nth-child(n+4){font-variant-numeric:tabular-nums}
.succeeded{color:#1a7f37;font-weight:600}.failed{color:#cf222e;font-weight:600}.interrupted,.skipped,.pending,.running{color:#9a6700;font-weight:600}
pre{background:#f6f8fa;padding:.8rem;overflow:auto;border-radius:6px} .meta{color:#57606a}
</style></head><body>
<h1>${escapeHtml(summary.workflow)}</h1>
<p class="meta">status <span class="${escapeHtml(summary.status)}">${escapeHtml(summary.status)}</span> · started ${escapeHtml(summary.started_at)}${summary.finished_at === undefined ? "" : ` · finished ${escapeHtml(summary.finished_at)}`}${summary.duration_s === undefined ? "" : ` · ${summary.duration_s.toFixed(2)} s`} · ${summary.sessions} session${summary.sessions === 1 ? "" : "s"}</p>
<h2>Steps</h2>
<table><thead><tr><th>step</th><th>plugin</th><th>status</th><th>items</th><th>done</th><th>failed</th><th>resumed</th><th>seconds</th></tr></thead>
<tbody>${rows}</tbody></table>
${sections}
${summary.instances === undefined || Object.keys(summary.instances).length === 0 ? "" : `<h2>Instances</h2>\n${valueTable(summary.instances)}`}
<h2>Plugins</h2>
<table><thead><tr><th>instance</th><th>plugin</th></tr></thead><tbody>
${Object.entries(summary.plugins).map(([i, p]) => `<tr><td>${escapeHtml(i)}</td><td><code>${escapeHtml(p)}</code></td></tr>`).join("\n")}
</tbody></table>
<h2>Resolved workflow</h2>
<details><summary>resolved.yaml</summary><pre>${escapeHtml(resolvedYaml)}</pre></details>
</body></html>
`;
}

function stepSection(name: string, s: StepSummary, files: string[], fragment: string | undefined): string {
  const parts: string[] = [`<h2>${escapeHtml(name)}</h2>`];
  if (s.error !== undefined) parts.push(`<p class="failed">${escapeHtml(s.error.message)} [${escapeHtml(s.error.code)}]</p>`);
  if (s.summary !== undefined && Object.keys(s.summary).length > 0) parts.push(valueTable(s.summary));
  if (fragment !== undefined) parts.push(fragment);
  if (s.failures.length > 0) {
    parts.push(`<table><thead><tr><th>failed item</th><th>code</th><th>message</th></tr></thead><tbody>${s.failures
      .map((f) => `<tr><td>${escapeHtml(f.id)}</td><td>${escapeHtml(f.code)}</td><td>${escapeHtml(f.message)}</td></tr>`)
      .join("")}</tbody></table>`);
  }
  const shown = files.filter((f) => !f.endsWith(`/${REPORT_SECTION}`));
  if (shown.length > 0) parts.push(`<p>Files: ${shown.map((f) => `<a href="${escapeHtml(f)}">${escapeHtml(f.split("/").slice(2).join("/"))}</a>`).join(" · ")}</p>`);
  return parts.join("\n");
}

/** Key/value table; nested objects of rows (e.g. per-field stats) become sub-tables. */
function valueTable(obj: Record<string, unknown>): string {
  const cell = (v: unknown): string => {
    if (Array.isArray(v) && v.every((x) => typeof x !== "object" || x === null)) return escapeHtml(v.join(", "));
    if (typeof v === "object" && v !== null) {
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length > 0 && entries.every(([, x]) => typeof x === "object" && x !== null && !Array.isArray(x))) {
        const cols = [...new Set(entries.flatMap(([, x]) => Object.keys(x as object)))];
        return `<table><thead><tr><th></th>${cols.map((c) => `<th>${escapeHtml(c)}</th>`).join("")}</tr></thead><tbody>${entries
          .map(([k, x]) => `<tr><td>${escapeHtml(k)}</td>${cols.map((c) => `<td>${cell((x as Record<string, unknown>)[c] ?? "")}</td>`).join("")}</tr>`)
          .join("")}</tbody></table>`;
      }
      return `<code>${escapeHtml(JSON.stringify(v))}</code>`;
    }
    // Rates and losses below 1 keep 4 decimals; percentages and seconds 2.
    return escapeHtml(typeof v === "number" && !Number.isInteger(v) ? v.toFixed(Math.abs(v) < 1 ? 4 : 2) : v);
  };
  return `<table><tbody>${Object.entries(obj).map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${cell(v)}</td></tr>`).join("")}</tbody></table>`;
}
