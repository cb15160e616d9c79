// The reviewer's replay: a time slider over the map, each position replayed from the event
// log by `stateAt`; the coverage curve with the slider's moment marked; the after-action
// report's headline figures and its files to download.

import {
  STATUS_COLOURS,
  applyLanguage,
  curveSvg,
  el,
  gridMap,
  loadBaseMap,
  notice,
  statusLabel,
  t,
  tokenSignIn,
} from "./app.js";

const $ = (id) => document.getElementById(id);
const map = gridMap($("map"), { base: await loadBaseMap() });
const { token, api, begin } = tokenSignIn("review", { signedIn });
const state = { me: null, list: [], current: null, report: null, timer: null, asked: 0 };

const LIST = `{ mobilisations(first: 100) { edges { node {
  id title status t0 deadline stoodDownAt } } } }`;
const GRIDS = `query($m: ID!) { gridStates(mobilisation: $m) { grid { id code name geometry } } }`;
const STATE_AT = `query($m: ID!, $at: DateTime!) { stateAt(mobilisation: $m, at: $at) {
  at seq coverage { grids mobilisedPct byStatus { status count } }
  grids { status grid { id } } } }`;
const REPORT = `query($m: ID!) { afterActionReport(mobilisation: $m) {
  title targetMinutes events grids mobilised mobilisedByDeadline mobilisedPctAtDeadline
  peopleCalled timeToAcknowledge { p50 p90 } timeToMobilise { p50 p90 }
  curve { minute pct } missed { code causeLabel } inProgress asOf } }`;

async function signedIn() {
  map.map.invalidateSize();
  const data = await api(LIST);
  state.list = data.mobilisations.edges.map((e) => e.node);
  $("mobilisation").replaceChildren(
    ...state.list.map((m) => el("option", { value: m.id }, `${m.title} (${new Date(m.t0).toLocaleString()})`))
  );
  if (state.list.length) await choose(state.list[0].id);
}

$("mobilisation").addEventListener("change", (event) => choose(event.target.value));

/** Minutes from T0 to the end of what there is to replay: the stand-down, or now. */
function span(m) {
  const end = m.stoodDownAt ? new Date(m.stoodDownAt) : new Date();
  return Math.max(1, Math.ceil((end - new Date(m.t0)) / 60000));
}

async function choose(id) {
  state.current = state.list.find((m) => m.id === id);
  const [grids, report] = await Promise.all([api(GRIDS, { m: id }), api(REPORT, { m: id })]);
  map.setGrids(grids.gridStates.map((s) => s.grid));
  state.report = report.afterActionReport;
  drawSummary();
  const slider = $("minute");
  slider.max = String(span(state.current));
  slider.value = String(Math.min(Number(slider.max), Math.round(state.report?.targetMinutes || 0)));
  await replay();
}

$("minute").addEventListener("input", () => {
  clearTimeout(state.timer);
  state.timer = setTimeout(replay, 200);
});

async function replay() {
  const m = state.current;
  if (!m) return;
  const minute = Number($("minute").value);
  const at = new Date(new Date(m.t0).getTime() + minute * 60000).toISOString();
  const asked = ++state.asked;
  const data = await api(STATE_AT, { m: m.id, at });
  if (asked !== state.asked) return; // the slider moved on meanwhile
  const s = data.stateAt;
  const status = new Map(s.grids.map((g) => [g.grid.id, g.status]));
  map.paint((id) => status.get(id));
  $("at").textContent = `T0+${minute} ${t("分钟", "min")} · ${new Date(s.at).toLocaleString()} · #${s.seq}`;
  $("gauge-bar").style.width = `${Math.min(100, s.coverage.mobilisedPct)}%`;
  $("gauge-text").textContent = `${t("已到岗", "Mobilised")} ${s.coverage.mobilisedPct.toFixed(1)}%`;
  // Every state's colour, with its count (none yet: 0).
  const counts = new Map(s.coverage.byStatus.map((b) => [b.status.toUpperCase(), b.count]));
  $("by-status").replaceChildren(
    ...Object.entries(STATUS_COLOURS).map(([status, colour]) =>
      el("li", { "data-status": status }, el("i", { style: `background:${colour}` }), `${statusLabel(status)} ${counts.get(status) || 0}`)
    )
  );
  if (state.report) {
    // The curve's axis is the slider's window, T0 to its end, so the two line up.
    const end = Number($("minute").max);
    $("curve").replaceChildren(curveSvg(state.report.curve, state.report.targetMinutes, { marker: minute, end }));
  }
}

function drawSummary() {
  const r = state.report;
  const box = $("summary");
  if (!r) {
    box.replaceChildren();
    return;
  }
  // Before its deadline a mobilisation is in progress: figures so far, nothing missed yet.
  const mobilised = `${r.mobilisedByDeadline} (${r.mobilisedPctAtDeadline.toFixed(1)}%)`;
  const rows = [
    ...(r.inProgress
      ? [[t("状态", "Status"), `${t("进行中", "In progress")} · ${new Date(r.asOf).toLocaleString()}`]]
      : []),
    [t("微网格", "Micro-grids"), r.grids],
    r.inProgress
      ? [t("已到岗（至今）", "Mobilised so far"), mobilised]
      : [t("时限内到岗", "Mobilised by the deadline"), mobilised],
    [t("召集人数", "People called"), r.peopleCalled],
    [t("确认用时中位数（分钟）", "Median time to acknowledge (min)"), r.timeToAcknowledge.p50?.toFixed(1) ?? "-"],
    [t("网格到岗用时中位数（分钟）", "Median time to mobilise (min)"), r.timeToMobilise.p50?.toFixed(1) ?? "-"],
    [t("未按时网格", "Grids missed"), r.inProgress ? t("时限未到", "not yet due") : r.missed.length],
    [t("事件数", "Events"), r.events],
  ];
  box.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

async function download(format) {
  const m = state.current;
  if (!m) return;
  const response = await fetch(`/reports/${encodeURIComponent(m.id)}/report.${format}`, {
    headers: { Authorization: `Bearer ${token.get()}` },
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    notice(body.errors?.[0]?.message || body.detail || `HTTP ${response.status}`, "error");
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: `report-${m.title}.${format}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

$("download-xlsx").addEventListener("click", () => download("xlsx"));
$("download-md").addEventListener("click", () => download("md"));

applyLanguage(() => {
  drawSummary();
  replay();
});
begin();
