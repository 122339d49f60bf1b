export { PluginTester, testPlugin } from "./plugin-tester.ts";
export type { PluginTestCases } from "./plugin-tester.ts";
export { defineContract, datasetContract, stepContract } from "./contracts.ts";
export type { ContractCase, ContractFixture, SlotContract } from "./contracts.ts";
export { listenOnLoopback, type LoopbackServer } from "./loopback.ts";
