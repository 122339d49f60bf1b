/**
 * tree.html: one self-contained page per searched problem (no network, no external assets)
 * that shows the MC-Tree-Of-Agents search tree written by the search step.
 *
 * The tree itself is rendered server-side as nested <details>/<summary> rows (readable without
 * scripts, collapsible, fine for a few hundred nodes); a small inline script fills the side
 * panel (full thought, path from the root, programs with verdicts, refine info) from the tree
 * JSON embedded in a <script type="application/json"> block. Thoughts and code are untrusted
 * model output: the HTML escapes them, the JSON block escapes "<", and the script only ever
 * writes them through textContent.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BdcError, escapeHtml } from "@bdc/core";
import type { TreeNode } from "../types.ts";

/** The per-problem tree file the search step writes. */
export interface SearchTreeJson {
  readonly problem_id: string;
  /** The agents that took part: policy instance names, or {name, model, provider} as the search writes them. */
  readonly agents: ReadonlyArray<string | { readonly name: string; readonly model?: string; readonly provider?: string }>;
  readonly config?: Record<string, unknown>;
  /**
   * Run statistics. Known keys (with aliases) are shown first: rollouts, nodes, llm_calls,
   * tokens (a number or {input, output}), stop_reason, best_pr, best_node; others follow.
   */
  readonly stats?: Record<string, unknown>;
  /** The best node's id, when the search recorded one (else: the highest-PR simulated node). */
  readonly best?: string | null;
  readonly nodes: ReadonlyArray<TreeNode>;
}

export interface TreeHtmlOptions {
  readonly title?: string;
}

// ---------------------------------------------------------------------------------------------
// Helpers (exported for tests)


/** JSON that is safe inside a <script> element: no "<" (so no "</script>" or "<!--"). */
export const scriptJson = (v: unknown): string =>
  JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");

/** PR colour: red (0) -> yellow (0.5) -> green (1); grey when the node was not simulated. */
export function prColor(pr: number | null | undefined): string {
  if (pr === null || pr === undefined || !Number.isFinite(pr)) return "#8c959f";
  const p = Math.min(1, Math.max(0, pr));
  return `hsl(${Math.round(p * 120)},70%,42%)`;
}

/** The best node: `tree.best`, `stats.best_node`, else the simulated node with the highest PR. */
export function bestNodeId(tree: SearchTreeJson): string | undefined {
  const ids = new Set(tree.nodes.map((n) => n.id));
  for (const c of [tree.best, tree.stats?.["best_node"], tree.stats?.["bestNode"], tree.stats?.["best"]]) {
    if (typeof c === "string" && ids.has(c)) return c;
  }
  let best: TreeNode | undefined;
  for (const n of tree.nodes) {
    if (n.pr === null || n.pr === undefined || n.status === "replaced") continue;
    if (
      best === undefined ||
      n.pr > best.pr! ||
      (n.pr === best.pr && (Number(n.terminal) > Number(best.terminal) || (n.terminal === best.terminal && n.visits > best.visits)))
    ) {
      best = n;
    }
  }
  return best?.id;
}

const num = (v: number | null | undefined, digits = 2) =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : Number.isInteger(v) ? String(v) : v.toFixed(digits);

const preview = (s: string, max = 160) => {
  const line = s.replace(/\s+/g, " ").trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

// ---------------------------------------------------------------------------------------------
// Stats header

const STAT_KEYS: ReadonlyArray<{ label: string; keys: string[] }> = [
  { label: "rollouts", keys: ["rollouts", "iterations"] },
  { label: "nodes", keys: ["nodes", "node_count", "nodeCount"] },
  { label: "LLM calls", keys: ["llm_calls", "llmCalls", "calls"] },
  { label: "tokens", keys: ["tokens", "total_tokens", "totalTokens"] },
  { label: "stop reason", keys: ["stop_reason", "stopReason", "stop"] },
  { label: "best public PR", keys: ["best_pr", "bestPr", "best_public_pass_rate", "best_pass_rate", "bestPassRate"] },
];

function statValue(v: unknown): string {
  if (typeof v === "number") return escapeHtml(Number.isInteger(v) ? v.toLocaleString("en-US") : String(Number(v.toFixed(4))));
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    const entries = Object.entries(v as Record<string, unknown>);
    const nums = entries.filter(([, x]) => typeof x === "number") as Array<[string, number]>;
    if (nums.length === entries.length && nums.length > 1) {
      const total = nums.reduce((a, [, x]) => a + x, 0);
      return `${escapeHtml(total.toLocaleString("en-US"))} <small>(${nums.map(([k, x]) => `${escapeHtml(k)} ${escapeHtml(x.toLocaleString("en-US"))}`).join(" · ")})</small>`;
    }
    return `<code>${escapeHtml(JSON.stringify(v))}</code>`;
  }
  if (Array.isArray(v)) return escapeHtml(v.join(", "));
  return escapeHtml(v);
}

function statsHtml(tree: SearchTreeJson): string {
  const stats = tree.stats ?? {};
  const used = new Set<string>(["best_node", "bestNode", "best"]);
  const cells: string[] = [];
  for (const { label, keys } of STAT_KEYS) {
    const key = keys.find((k) => stats[k] !== undefined);
    if (key !== undefined) used.add(key);
    let v: unknown = key === undefined ? undefined : stats[key];
    if (v === undefined && label === "nodes") v = tree.nodes.length;
    if (v === undefined && label === "best public PR") {
      const prs = tree.nodes.map((n) => n.pr).filter((p): p is number => typeof p === "number");
      if (prs.length > 0) v = Math.max(...prs);
    }
    if (v === undefined) continue;
    const style = label === "best public PR" && typeof v === "number" ? ` style="color:${prColor(v)}"` : "";
    cells.push(`<div class="stat"><span>${escapeHtml(label)}</span><b${style}>${statValue(v)}</b></div>`);
  }
  for (const [k, v] of Object.entries(stats)) {
    if (used.has(k)) continue;
    cells.push(`<div class="stat"><span>${escapeHtml(k.replace(/_/g, " "))}</span><b>${statValue(v)}</b></div>`);
  }
  return cells.join("");
}

// ---------------------------------------------------------------------------------------------
// Tree rows

function badges(n: TreeNode, bestId: string | undefined): string {
  const b: string[] = [];
  if (n.id === bestId) b.push(`<span class="badge b-best" title="best node">★ best</span>`);
  if (n.terminal) b.push(`<span class="badge b-term" title="terminal: not expanded further">terminal</span>`);
  if (n.refined !== undefined || n.refinements > 0) {
    b.push(`<span class="badge b-ref" title="refined ${escapeHtml(n.refinements)}×">↻ refined${n.refinements > 1 ? ` ×${escapeHtml(n.refinements)}` : ""}</span>`);
  }
  if (n.status === "pruned") b.push(`<span class="badge b-pruned" title="pruned: worse than its parent">✂ pruned</span>`);
  if (n.status === "replaced") b.push(`<span class="badge b-pruned" title="replaced by refine">replaced</span>`);
  return b.join("");
}

type AgentIndex = ReadonlyMap<string, number>;
const agentChip = (a: string, agents: AgentIndex) => `<span class="ag ag-${(agents.get(a) ?? 0) % 6}">${escapeHtml(a)}</span>`;

function rowHtml(n: TreeNode, bestId: string | undefined, agents: AgentIndex, hasKids: boolean, count: number): string {
  const cls = ["row", `st-${escapeHtml(n.status)}`, n.id === bestId ? "is-best" : ""].filter(Boolean).join(" ");
  const color = prColor(n.pr);
  const thought = n.parent === null ? "(root: problem statement)" : preview(n.thought);
  return `<span class="${cls}" data-id="${escapeHtml(n.id)}" style="--c:${color}">${hasKids ? `<span class="tw" title="expand / collapse (${count} descendant${count === 1 ? "" : "s"})">${count}</span>` : `<span class="tw leaf"></span>`}<span class="pr" title="PR (mean public pass rate)">${n.pr === null || n.pr === undefined ? "n/s" : escapeHtml(n.pr.toFixed(2))}</span><span class="nid">${escapeHtml(n.id)}</span>${n.agent === null ? "" : agentChip(n.agent, agents)}${badges(n, bestId)}<span class="th">${escapeHtml(thought)}</span><span class="nq" title="visits · value">N ${escapeHtml(n.visits)} · Q ${escapeHtml(num(n.value))}</span></span>`;
}

function treeHtml(tree: SearchTreeJson, bestId: string | undefined, agents: AgentIndex): string {
  const byId = new Map(tree.nodes.map((n) => [n.id, n] as const));
  const open = new Set<string>();
  // The path to the best node starts open.
  for (let id: string | null | undefined = bestId; id != null; id = byId.get(id)?.parent) open.add(id);
  const seen = new Set<string>();
  const sizes = new Map<string, number>();
  const size = (n: TreeNode, stack = new Set<string>()): number => {
    const cached = sizes.get(n.id);
    if (cached !== undefined) return cached;
    stack.add(n.id);
    let s = 0;
    for (const c of n.children) {
      const k = byId.get(c);
      if (k !== undefined && !stack.has(c)) s += 1 + size(k, stack);
    }
    stack.delete(n.id);
    sizes.set(n.id, s);
    return s;
  };
  const render = (n: TreeNode): string => {
    seen.add(n.id);
    const kids = n.children.map((c) => byId.get(c)).filter((k): k is TreeNode => k !== undefined && !seen.has(k.id));
    if (kids.length === 0) return `<div class="n">${rowHtml(n, bestId, agents, false, 0).replace('<span class="row', '<span tabindex="0" class="row')}</div>`;
    const isOpen = n.depth < 1 || open.has(n.id);
    const inner = kids.map(render).join("");
    return `<details class="n"${isOpen ? " open" : ""}><summary>${rowHtml(n, bestId, agents, true, size(n))}</summary><div class="kids">${inner}</div></details>`;
  };
  const root = byId.get("0") ?? tree.nodes.find((n) => n.parent === null);
  const parts: string[] = [];
  if (root !== undefined) parts.push(render(root));
  const detached = tree.nodes.filter((n) => !seen.has(n.id));
  if (detached.length > 0) {
    parts.push(`<p class="meta">Nodes not reachable from the root:</p>`);
    for (const n of detached) if (!seen.has(n.id)) parts.push(render(n));
  }
  if (parts.length === 0) parts.push(`<p class="meta">The tree has no nodes.</p>`);
  return parts.join("");
}

// ---------------------------------------------------------------------------------------------
// Page

const CSS = `
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header{background:#fff;border-bottom:1px solid #d0d7de;padding:.9rem 1.4rem .8rem}
h1{font-size:1.35rem;margin:0 0 .25rem}
h1 small{font-weight:400;color:#57606a;font-size:.95rem}
.meta{color:#57606a}
.agents .ag{margin-right:.3rem}
.muted{color:#57606a}
.stats{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.6rem}
.stat{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.25rem .65rem;display:flex;flex-direction:column;min-width:6.5rem}
.stat span{font-size:.72rem;text-transform:uppercase;letter-spacing:.04em;color:#57606a}
.stat b{font-variant-numeric:tabular-nums;font-size:1.02rem}
.stat small{font-weight:400;color:#57606a}
header details{margin-top:.5rem} header details pre{max-height:240px}
main{display:grid;grid-template-columns:minmax(0,1fr) minmax(360px,41%);gap:1rem;padding:1rem 1.4rem;align-items:start}
.pane{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.6rem .7rem}
#tree{overflow-x:auto}
#panel{position:sticky;top:1rem;max-height:calc(100vh - 2rem);overflow:auto;padding:.8rem 1rem}
.toolbar{display:flex;gap:.4rem;align-items:center;flex-wrap:wrap;margin-bottom:.5rem;font-size:.8rem;color:#57606a}
.toolbar button{font:inherit;border:1px solid #d0d7de;background:#f6f8fa;border-radius:6px;padding:.15rem .55rem;cursor:pointer;color:#1b1f24}
.toolbar button:hover{background:#eaeef2}
.legend{margin-left:auto;display:flex;align-items:center;gap:.35rem}
.grad{display:inline-block;width:80px;height:10px;border-radius:5px;background:linear-gradient(90deg,hsl(0,70%,42%),hsl(60,70%,42%),hsl(120,70%,42%))}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;background:#8c959f}
details.n>summary{list-style:none;display:block}
details.n>summary::-webkit-details-marker{display:none}
.kids{margin-left:.7rem;padding-left:.3rem;border-left:1px dashed #d0d7de}
.row{display:flex;align-items:center;gap:.4rem;padding:.18rem .35rem;border-radius:6px;cursor:pointer;white-space:nowrap;border:1px solid transparent;outline:none}
.row:hover{background:#f3f4f6}
.row:focus-visible{border-color:#0969da}
.row.sel{background:#ddf4ff;border-color:#54aeff}
.row.is-best:not(.sel){background:#fff8c5}
.row.onpath .nid{color:#0969da;font-weight:600}
.tw{flex:none;width:2.1rem;font-size:.7rem;color:#57606a;text-align:left;user-select:none}
.tw:not(.leaf)::before{content:"▸";display:inline-block;width:.9rem;color:#57606a;font-size:.8rem}
details[open]>summary .tw:not(.leaf)::before{content:"▾"}
.pr{flex:none;min-width:2.6rem;text-align:center;font-size:.75rem;font-weight:600;color:#fff;background:var(--c);border-radius:4px;padding:0 .3rem;font-variant-numeric:tabular-nums}
.nid{flex:none;font:.75rem ui-monospace,SFMono-Regular,Menlo,monospace;color:#8c959f}
.ag{flex:none;font-size:.72rem;background:#eef1f5;border:1px solid #d0d7de;border-radius:10px;padding:0 .45rem;color:#24292f}
.ag-0{background:#ddf4ff;border-color:#b6e3ff;color:#0a3069}.ag-1{background:#fbefff;border-color:#ecd8ff;color:#512a97}
.ag-2{background:#fff1e5;border-color:#ffd8b5;color:#762c00}.ag-3{background:#dafbe1;border-color:#aceebb;color:#044f1e}
.ag-4{background:#ffeff7;border-color:#ffd3eb;color:#6d1745}.ag-5{background:#eef1f5;border-color:#d0d7de;color:#24292f}
.nq{flex:none;margin-left:auto;padding-left:.4rem;font-size:.72rem;color:#6e7781;font-variant-numeric:tabular-nums}
.th{flex:1 1 auto;overflow:hidden;text-overflow:ellipsis;color:#24292f;min-width:0}
.st-pruned .th,.st-replaced .th{color:#8c959f;text-decoration:line-through}
.st-pruned .pr,.st-replaced .pr{opacity:.55}
.badge{flex:none;font-size:.68rem;font-weight:600;border-radius:4px;padding:0 .35rem;border:1px solid}
.b-best{background:#fff8c5;color:#7d4e00;border-color:#d4a72c}
.b-term{background:#dafbe1;color:#116329;border-color:#4ac26b}
.b-ref{background:#ddf4ff;color:#0550ae;border-color:#54aeff}
.b-pruned{background:#ffebe9;color:#a40e26;border-color:#ff8182}
#panel h2{font-size:1.05rem;margin:0 0 .4rem;display:flex;gap:.4rem;align-items:center;flex-wrap:wrap}
#panel h3{font-size:.78rem;text-transform:uppercase;letter-spacing:.05em;color:#57606a;margin:1rem 0 .35rem;border-bottom:1px solid #eaeef2;padding-bottom:.15rem}
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(6.5rem,1fr));gap:.3rem .8rem;font-size:.82rem}
.kv div span{display:block;color:#57606a;font-size:.7rem;text-transform:uppercase;letter-spacing:.04em}
.kv div b{font-variant-numeric:tabular-nums}
.text{font:inherit;white-space:pre-wrap;overflow-wrap:anywhere;background:#f6f8fa;border-radius:6px;padding:.5rem .65rem;margin:0}
ol.path{margin:0;padding-left:1.4rem} ol.path li{margin:.2rem 0;white-space:pre-wrap;overflow-wrap:anywhere}
ol.path li.cur{font-weight:600}
ol.path a{font:.75rem ui-monospace,monospace;color:#0969da;cursor:pointer;margin-right:.35rem;text-decoration:none}
.prog{border:1px solid #d0d7de;border-radius:6px;margin:.5rem 0;overflow:hidden}
.prog .ph{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap;background:#f6f8fa;padding:.3rem .55rem;font-size:.82rem;border-bottom:1px solid #d0d7de}
.prog pre{margin:0;padding:.55rem .7rem;max-height:340px;overflow:auto;font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace;background:#fff}
.vd{display:inline-flex;flex-wrap:wrap;gap:2px;vertical-align:middle}
.vd i{width:10px;height:10px;border-radius:2px;display:inline-block}
.v-passed{background:#2da44e}.v-wrong_answer{background:#cf222e}.v-time_limit{background:#bf8700}.v-memory_limit{background:#8250df}
.v-runtime_error{background:#bc4c00}.v-compile_error{background:#6e7781}.v-output_limit{background:#1f6feb}
.vsum{font-size:.75rem;color:#57606a}
.refine dt{font-size:.75rem;color:#57606a;margin-top:.4rem}.refine dd{margin:.1rem 0 0}
.empty{color:#8c959f;font-style:italic}
pre.cfg{background:#f6f8fa;padding:.6rem;border-radius:6px;overflow:auto;font-size:12px}
@media (max-width:900px){main{grid-template-columns:1fr}#panel{position:static;max-height:none}}
`;

// The panel script: reads the embedded JSON, writes untrusted text only through textContent.
const SCRIPT = `
(function(){
"use strict";
var data=JSON.parse(document.getElementById("tree-data").textContent);
var byId={};data.tree.nodes.forEach(function(n){byId[n.id]=n;});
var panel=document.getElementById("panel");
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!=null)e.textContent=String(text);return e;}
function fmt(v){return v==null||typeof v!=="number"||!isFinite(v)?"\\u2013":(Number.isInteger(v)?String(v):v.toFixed(3));}
function color(pr){if(pr==null||!isFinite(pr))return "#8c959f";var p=Math.min(1,Math.max(0,pr));return "hsl("+Math.round(p*120)+",70%,42%)";}
function pill(pr){var s=el("span","pr",pr==null?"n/s":pr.toFixed(2));s.style.setProperty("--c",color(pr));return s;}
function agent(a){var i=data.agents[a];return el("span","ag ag-"+((typeof i==="number"?i:0)%6),a);}
function badge(cls,text){return el("span","badge "+cls,text);}
function rowOf(id){var rows=document.querySelectorAll("#tree .row");for(var i=0;i<rows.length;i++)if(rows[i].getAttribute("data-id")===id)return rows[i];return null;}
function pathTo(n){var p=[];var seen={};while(n&&!seen[n.id]){seen[n.id]=1;p.unshift(n);n=n.parent==null?null:byId[n.parent];}return p;}
function kv(box,label,value){var d=el("div");d.appendChild(el("span",null,label));d.appendChild(el("b",null,value));box.appendChild(d);}
function select(id,reveal){
  var n=byId[id];if(!n)return;
  var old=document.querySelector("#tree .row.sel");if(old)old.classList.remove("sel");
  document.querySelectorAll("#tree .row.onpath").forEach(function(r){r.classList.remove("onpath");});
  pathTo(n).forEach(function(m){var r=rowOf(m.id);if(r)r.classList.add("onpath");});
  var row=rowOf(id);
  if(row){row.classList.add("sel");
    if(reveal){for(var e=row.parentElement;e&&e.id!=="tree";e=e.parentElement)if(e.tagName==="DETAILS")e.open=true;row.scrollIntoView({block:"nearest"});}}
  if(history.replaceState)history.replaceState(null,"","#node="+encodeURIComponent(id));
  panel.textContent="";
  var h=el("h2");h.appendChild(pill(n.pr));h.appendChild(el("span",null,n.parent==null?"root":"node "+n.id));
  if(n.agent!=null)h.appendChild(agent(n.agent));
  if(n.id===data.best)h.appendChild(badge("b-best","\\u2605 best"));
  if(n.terminal)h.appendChild(badge("b-term","terminal"));
  if(n.refined||n.refinements>0)h.appendChild(badge("b-ref","\\u21bb refined"+(n.refinements>1?" \\u00d7"+n.refinements:"")));
  if(n.status==="pruned")h.appendChild(badge("b-pruned","\\u2702 pruned"));
  if(n.status==="replaced")h.appendChild(badge("b-pruned","replaced"));
  panel.appendChild(h);
  var box=el("div","kv");
  kv(box,"PR",fmt(n.pr));kv(box,"visits N",fmt(n.visits));kv(box,"value Q",fmt(n.value));kv(box,"prior",fmt(n.prior));
  kv(box,"depth",fmt(n.depth));kv(box,"status",n.status);kv(box,"children",(n.children||[]).length);
  var rs=n.returns||[];kv(box,"returns",rs.length?rs.length+" (max "+fmt(Math.max.apply(null,rs))+")":"0");
  panel.appendChild(box);
  panel.appendChild(el("h3",null,"Thought"));
  panel.appendChild(n.parent==null?el("p","empty","The root holds the problem statement; it has no thought."):el("pre","text",n.thought||""));
  var p=pathTo(n);
  if(p.length>1){panel.appendChild(el("h3",null,"Path from the root"));var ol=el("ol","path");
    p.slice(1).forEach(function(m){var li=el("li",m.id===n.id?"cur":null);var a=el("a",null,m.id);a.title="select "+m.id;
      a.addEventListener("click",function(){select(m.id,true);});li.appendChild(a);
      if(m.agent!=null){li.appendChild(agent(m.agent));li.appendChild(document.createTextNode(" "));}
      li.appendChild(document.createTextNode(m.thought||""));ol.appendChild(li);});
    panel.appendChild(ol);}
  if(n.refined){panel.appendChild(el("h3",null,"Refine"));var dl=el("dl","refine");
    dl.appendChild(el("dt",null,"replaced thought"));var dd=el("dd");dd.appendChild(el("pre","text",n.refined.replacedThought));dl.appendChild(dd);
    dl.appendChild(el("dt",null,"diagnosis by "+n.refined.summarizedBy));dd=el("dd");dd.appendChild(el("pre","text",n.refined.summary));dl.appendChild(dd);
    panel.appendChild(dl);}
  var progs=n.programs||[];
  panel.appendChild(el("h3",null,"Programs ("+progs.length+")"));
  if(!progs.length)panel.appendChild(el("p","empty",n.parent==null?"The root is not simulated.":"Not simulated."));
  progs.forEach(function(pg,i){var d=el("div","prog");var ph=el("div","ph");
    ph.appendChild(pill(pg.passRate));ph.appendChild(el("b",null,"#"+(i+1)));ph.appendChild(agent(pg.agent));
    var vs=pg.verdicts||[];var vd=el("span","vd");var counts={};
    vs.forEach(function(v,j){var q=el("i","v-"+String(v).replace(/[^a-z_]/g,""));q.title="test "+(j+1)+": "+v;vd.appendChild(q);counts[v]=(counts[v]||0)+1;});
    ph.appendChild(vd);
    ph.appendChild(el("span","vsum",Object.keys(counts).map(function(k){return counts[k]+" "+k.replace(/_/g," ");}).join(" \\u00b7 ")||"no tests"));
    d.appendChild(ph);d.appendChild(el("pre",null,pg.code));panel.appendChild(d);});
}
document.getElementById("tree").addEventListener("click",function(ev){
  var t=ev.target;var row=t.closest?t.closest(".row"):null;if(!row)return;
  if(t.closest(".tw")&&!t.closest(".leaf"))return;
  ev.preventDefault();select(row.getAttribute("data-id"),false);});
document.getElementById("tree").addEventListener("keydown",function(ev){
  var row=ev.target.closest?ev.target.closest(".row"):null;if(!row)return;
  if(ev.key===" "||(ev.key==="Enter"&&row.tabIndex===0)){ev.preventDefault();select(row.getAttribute("data-id"),false);}});
function all(open){document.querySelectorAll("#tree details").forEach(function(d){d.open=open;});}
document.getElementById("expand").addEventListener("click",function(){all(true);});
document.getElementById("collapse").addEventListener("click",function(){all(false);var r=document.querySelector("#tree details");if(r)r.open=true;});
var bb=document.getElementById("gobest");if(bb)bb.addEventListener("click",function(){select(data.best,true);});
var m=/^#node=(.*)$/.exec(location.hash);var first=m?decodeURIComponent(m[1]):null;
select(first&&byId[first]?first:(data.best||(data.tree.nodes[0]||{}).id),true);
})();
`;

export function renderTreeHtml(tree: SearchTreeJson, options: TreeHtmlOptions = {}): string {
  const nodes = Array.isArray(tree.nodes) ? tree.nodes : [];
  const t: SearchTreeJson = { ...tree, nodes };
  const bestId = bestNodeId(t);
  const title = options.title ?? `${String(tree.problem_id)} - search tree`;
  const described = Array.isArray(tree.agents) ? tree.agents : [];
  const agents = described.map((a) => (typeof a === "string" ? a : a.name));
  const agentIndex = new Map(agents.map((a, i) => [a, i] as const));
  const agentTitle = (i: number) => {
    const a = described[i];
    return typeof a === "object" && a !== null && a.model !== undefined ? ` <span class="muted">(${escapeHtml(a.provider ?? "")}${a.provider === undefined ? "" : " "}${escapeHtml(a.model)})</span>` : "";
  };
  for (const n of nodes) if (n.agent !== null && !agentIndex.has(n.agent)) agentIndex.set(n.agent, agentIndex.size);
  const config = tree.config !== undefined && Object.keys(tree.config).length > 0
    ? `<details><summary class="meta">search config</summary><pre class="cfg">${escapeHtml(JSON.stringify(tree.config, null, 2))}</pre></details>`
    : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style></head><body>
<header>
<h1>${escapeHtml(tree.problem_id)} <small>MC-Tree-Of-Agents search tree</small></h1>
<div class="meta agents">agents: ${agents.length === 0 ? "–" : agents.map((a, i) => `${agentChip(a, agentIndex)}${agentTitle(i)}`).join(" ")}</div>
<div class="stats">${statsHtml(t)}</div>
${config}
</header>
<main>
<section class="pane" id="tree-pane">
<div class="toolbar"><button type="button" id="expand">expand all</button><button type="button" id="collapse">collapse</button>${bestId === undefined ? "" : `<button type="button" id="gobest">★ best node</button>`}
<span class="legend">PR <span>0</span><span class="grad"></span><span>1</span> <span class="dot"></span> not simulated</span></div>
<div id="tree">${treeHtml(t, bestId, agentIndex)}</div>
</section>
<aside class="pane" id="panel"><p class="empty">Select a node to see its thought, path and programs. (The side panel needs JavaScript.)</p></aside>
</main>
<script type="application/json" id="tree-data">${scriptJson({ best: bestId ?? null, agents: Object.fromEntries(agentIndex), tree: t })}</script>
<script>${SCRIPT}</script>
</body></html>
`;
}

/** Reads a search-tree JSON file and writes the page next to it (same base name, .html). */
export function writeTreeReport(jsonFile: string): string {
  let text: string;
  try {
    text = fs.readFileSync(jsonFile, "utf8");
  } catch {
    throw new BdcError({ code: "BDC_FILE_NOT_FOUND", message: `cannot read the search tree ${jsonFile}`, hint: "pass a tree JSON written by the search step" });
  }
  let tree: SearchTreeJson;
  try {
    tree = JSON.parse(text) as SearchTreeJson;
  } catch (e) {
    throw new BdcError({ code: "BDC_USAGE", message: `${jsonFile} is not valid JSON: ${(e as Error).message}`, hint: "pass a tree JSON written by the search step" });
  }
  if (typeof tree !== "object" || tree === null || !Array.isArray(tree.nodes)) {
    throw new BdcError({ code: "BDC_USAGE", message: `${jsonFile} is not a search tree (no "nodes" array)`, hint: "pass a tree JSON written by the search step" });
  }
  const ext = path.extname(jsonFile);
  const out = ext.toLowerCase() === ".json" ? jsonFile.slice(0, -ext.length) + ".html" : `${jsonFile}.html`;
  fs.writeFileSync(out, renderTreeHtml(tree));
  return out;
}
