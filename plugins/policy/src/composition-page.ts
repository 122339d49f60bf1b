/**
 * gates.html: which experts each problem leaned on, as a heatmap (a row per problem, a column
 * per expert, the cell's shade its gate mass; hover for the per-module masses), one
 * self-contained SVG page with no scripts, written by the steps whose answers record a
 * composition (policy/local with a composer).
 */
import type { CompositionRecord } from "./types.ts";
import { escapeHtml } from "@bdc/core";


export function compositionHeatmapHtml(title: string, rows: ReadonlyArray<{ readonly id: string; readonly composition: CompositionRecord }>): string {
  const experts = rows[0]?.composition.experts ?? [];
  const cell = 46;
  const labelWidth = Math.min(260, 12 + 7 * Math.max(8, ...rows.map((r) => r.id.length)));
  const top = 70;
  const width = labelWidth + experts.length * cell + 20;
  const height = top + rows.length * 22 + 20;
  const shade = (m: number) => `rgb(${Math.round(255 - 200 * m)},${Math.round(255 - 130 * m)},${Math.round(255 - 40 * m)})`;
  const header = experts.map((e, k) => `<text x="${labelWidth + k * cell + cell / 2}" y="${top - 8}" text-anchor="end" transform="rotate(-35 ${labelWidth + k * cell + cell / 2} ${top - 8})">${escapeHtml(e)}</text>`).join("");
  const body = rows
    .map((r, i) => {
      const y = top + i * 22;
      const modules = Object.entries(r.composition.modules ?? {});
      const cells = r.composition.mass
        .map((m, k) => {
          const detail = modules.map(([key, masses]) => `${key}: ${(masses[k] ?? 0).toFixed(3)}`).join("\n");
          return `<rect x="${labelWidth + k * cell}" y="${y}" width="${cell - 2}" height="20" fill="${shade(m)}"><title>${escapeHtml(`${r.id} / ${experts[k]}: ${m.toFixed(3)}${detail === "" ? "" : `\n${detail}`}`)}</title></rect><text x="${labelWidth + k * cell + cell / 2 - 1}" y="${y + 14}" text-anchor="middle" fill="${m > 0.6 ? "#fff" : "#222"}">${m.toFixed(2)}</text>`;
        })
        .join("");
      return `<text x="${labelWidth - 6}" y="${y + 14}" text-anchor="end">${escapeHtml(r.id)}</text>${cells}`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}svg text{font:12px system-ui,sans-serif}</style></head>
<body><h1>${escapeHtml(title)}</h1>
<p>Gate mass per expert for each problem (averaged over the composed layers and projections; hover a cell for each module's). ${rows.length} problems, ${experts.length} experts.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${header}
${body}</svg>
</body></html>
`;
}
