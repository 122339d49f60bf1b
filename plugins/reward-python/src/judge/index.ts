export { type CompareMode, type CompareResult, type Tolerance, DEFAULT_TOLERANCE, compareCall, compareStdout, pyEquals } from "./compare.ts";
export { MAX_EXPLANATION, judgeProgram, judgeTest } from "./judge.ts";
