import { Schema } from "effect";
import { definePlugin, option, type StepImpl } from "@bdc/core";

interface FieldProfile {
  readonly type: string;
  readonly chars: number;
}
type RowProfile = Record<string, FieldProfile>;

const typeOf = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "list" : typeof v === "object" ? "mapping" : typeof v);
const charsOf = (v: unknown) => (typeof v === "string" ? v.length : JSON.stringify(v ?? null).length);

/**
 * Profiles the items of a dataset or step: per field, how many rows have it, its types and
 * text length. The first thing to run on a new dataset.
 */
export default definePlugin({
  id: "step/inspect",
  version: "0.1.0",
  description: "Profile items: per field, presence, types and length (min/mean/max characters)",
  config: Schema.Struct({
    max_fields: option(Schema.Int.pipe(Schema.positive()), 50, "profile at most this many distinct fields"),
  }),
  make(config): StepImpl<unknown, RowProfile> {
    return {
      run(item) {
        const data = item.data;
        const profile: RowProfile = {};
        if (typeof data === "object" && data !== null && !Array.isArray(data)) {
          for (const [k, v] of Object.entries(data).slice(0, config.max_fields)) profile[k] = { type: typeOf(v), chars: charsOf(v) };
        } else {
          profile["(value)"] = { type: typeOf(data), chars: charsOf(data) };
        }
        return profile;
      },
      summarize(results) {
        const fields = new Map<string, { rows: number; types: Set<string>; min: number; max: number; sum: number }>();
        let rows = 0;
        for (const r of results) {
          if (r.output === undefined) continue;
          rows++;
          for (const [k, f] of Object.entries(r.output)) {
            const s = fields.get(k) ?? { rows: 0, types: new Set<string>(), min: Infinity, max: 0, sum: 0 };
            s.rows++;
            s.types.add(f.type);
            s.min = Math.min(s.min, f.chars);
            s.max = Math.max(s.max, f.chars);
            s.sum += f.chars;
            fields.set(k, s);
          }
        }
        return {
          rows,
          fields: Object.fromEntries(
            [...fields].map(([k, s]) => [k, { rows: s.rows, types: [...s.types].sort().join("|"), min_chars: s.min, mean_chars: Math.round(s.sum / s.rows), max_chars: s.max }]),
          ),
        };
      },
    };
  },
});
