import type { PreflightProblem } from "@bdc/core";

/**
 * The API key check every hosted provider needs, run by `bdc validate` (and before a run):
 * which variable to set, and that `enabled: false` is the other way out.
 */
export function apiKeyProblems(envVar: string, env: Readonly<Record<string, string | undefined>>, provider: string): PreflightProblem[] {
  const value = env[envVar];
  if (value !== undefined && value.trim() !== "") return [];
  return [
    {
      code: "BDC_POLICY_MISSING_KEY",
      path: ["api_key_env"],
      message: `${envVar} is not set: ${provider} needs an API key`,
      hint: `export ${envVar}=... (or point api_key_env at the variable holding the key, or switch this instance off with enabled: false)`,
    },
  ];
}
