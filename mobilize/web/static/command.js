// The command centre's wall: grids coloured by status, the countdown, coverage, the grids at
// risk with their suggested fix, activation, stand-down and dispatch. A street commander's
// queries are answered for their street only (the server decides; this page just asks).

import {
  STATUS_COLOURS,
  TASK_KINDS,
  applyLanguage,
  confirmDialog,
  countdown,
  curveSvg,
  serverSkew,
  el,
  expectOk,
  gridMap,
  loadBaseMap,
  newId,
  notice,
  show,
  statusLabel,
  subscribe,
  t,
  tokenSignIn,
} from "./app.js";

const KINDS = {
  EPIDEMIC: ["疫情", "Epidemic"],
  FLOOD: ["防汛", "Flood"],
  EARTHQUAKE: ["地震", "Earthquake"],
  FIRE: ["火灾", "Fire"],
  OTHER: ["其他", "Other"],
};

const state = {
  me: null,
  mobilisations: [],
  current: null, // the mobilisation shown
  status: new Map(), // grid id -> status
  chosen: new Set(), // grids chosen for a dispatch
  stop: null, // the subscription's stop function
  refreshTimer: null,
  skew: 0, // the server's clock minus this screen's
};
const $ = (id) => document.getElementById(id);
const map = gridMap($("map"), { onClick: choose, base: await loadBaseMap() });

const ME = "{ me { name roles { role label scopeCode } } }";
const LIST = `{ mobilisations(first: 50) { edges { node {
  id title kind status t0 deadline scope { district streets communities } } } } }`;
const GRIDS = `query($m: ID!) { gridStates(mobilisation: $m) {
  status grid { id code name geometry } } }`;
const STATES = "query($m: ID!) { gridStates(mobilisation: $m) { status grid { id } } }";
const COVERAGE = `query($m: ID!) { coverage(mobilisation: $m) {
  grids mobilisedPct minutesLeft byStatus { status count } curve { minute mobilised } } }`;
const RISK = `query($m: ID!) { risk(mobilisation: $m, first: 30) {
  status minutesLate reasonLabels reasonLabelsEn grid { id code name }
  suggestion { travelMinutes responder { id name } fromGrid { id code } } } }`;
const WATCH = `subscription($m: ID!) { coverageChanged(mobilisation: $m) {
  grids mobilisedPct minutesLeft byStatus { status count } curve { minute mobilised } } }`;
// Peacetime: the district's streets and communities, outlined and named.
const AREAS = `{ district { streets { name geometry communities { id name geometry } } } }`;
// Zoomed in, in peacetime: the micro-grids of the communities in view.
const MICRO = `query($c: ID!) { grids(level: MICRO, community: $c, first: 500) {
  edges { node { code name geometry } } } }`;
const MICRO_ZOOM = 15;

const START = `query { streets(first: 200) { edges { node { code name } } }
  communities(first: 500) { edges { node { code name } } }
  staffingRules { kind } }`;

const { token, api, begin } = tokenSignIn("command", {
  meQuery: ME,
  signedIn,
  stop: () => {
    if (state.stop) state.stop();
  },
});

async function signedIn(me) {
  state.me = me;
  const roles = me.roles.map((r) => r.role);
  const commands = roles.some((r) => r === "district_commander" || r === "street_commander");
  const keeps = roles.some((r) => ["district_commander", "street_commander", "community_secretary"].includes(r));
  const organises = roles.includes("unit_organiser");
  if (!commands && !keeps && !organises) {
    notice(t("此页面供指挥中心、社区和单位使用。", "This page is for command centres, communities and units."), "error");
  }
  show($("activate"), commands);
  show($("queue"), keeps);
  show($("roster"), organises);
  map.map.invalidateSize();
  if (keeps) await loadQueue();
  if (organises) await loadRoster();
  if (!commands) return;
  await fillForms();
  await loadMobilisations();
}

// -- peacetime: the secretary's queue, the unit organiser's roster -----------------------------

const QUEUE = `{ enrolments(first: 100) { edges { node { id name phone kind address skills availability
  submittedAt community { name } } } } }`;
const ENROLMENT_KINDS = {
  PARTY_MEMBER: ["党员报到", "Party member"],
  CADRE: ["干部报到", "Cadre"],
  VOLUNTEER: ["志愿者", "Volunteer"],
};

async function loadQueue() {
  const data = await api(QUEUE);
  const items = data.enrolments.edges.map((e) => e.node);
  $("queue-list").replaceChildren(
    ...(items.length
      ? items.map((e) =>
          el(
            "li",
            { "data-enrolment": e.id },
            el("strong", {}, `${e.name} `),
            `${t(...ENROLMENT_KINDS[e.kind])} · ${e.phone} · ${e.community.name} · ${e.address}`,
            el("br"),
            el("button", { type: "button", class: "primary", onclick: () => decide(e.id, true) }, t("通过", "Approve")),
            el("button", { type: "button", onclick: () => decide(e.id, false) }, t("不通过", "Decline"))
          )
        )
      : [el("li", {}, t("没有待审核的报到", "Nothing waiting"))])
  );
}

async function decide(id, approve) {
  let reason = "";
  if (!approve) {
    reason = window.prompt(t("不通过的原因", "Why not?")) || "";
    if (!reason) return;
  }
  try {
    const data = await api(
      `mutation($e: ID!, $yes: Boolean!, $why: String!) { decideEnrolment(enrolment: $e, approve: $yes, reason: $why) {
        __typename ... on Error { message } } }`,
      { e: id, yes: approve, why: reason }
    );
    const result = data.decideEnrolment;
    if (result.__typename.endsWith("Error")) throw new Error(result.message);
    notice(approve ? t("已通过，已加入名册", "Approved: on the roster") : t("已回复不通过", "Declined"));
  } catch (error) {
    notice(error.message, "error");
  }
  await loadQueue();
}

async function loadRoster() {
  const units = await api("{ units(first: 1) { edges { node { id name } } } }");
  const unit = units.units.edges[0];
  if (!unit) return;
  const data = await api(
    `query($u: ID!) { unitRoster(unit: $u) { quota registered onLeave available
      cadres { name phone onLeave } } }`,
    { u: unit.node.id }
  );
  const r = data.unitRoster;
  $("roster-summary").textContent = t(
    `${unit.node.name}：结对需下沉 ${r.quota} 人，已登记 ${r.registered} 人，请假 ${r.onLeave} 人，可出动 ${r.available} 人`,
    `${unit.node.name}: ${r.quota} asked by its pairings, ${r.registered} registered, ${r.onLeave} on leave, ${r.available} available`
  );
  $("roster-list").replaceChildren(
    ...r.cadres.map((c) => el("li", {}, `${c.name} ${c.phone}`, c.onLeave ? el("em", {}, t(" 请假中", " on leave")) : null))
  );
}

async function fillForms() {
  const data = await api(START);
  const scope = $("act-scope");
  scope.replaceChildren();
  if (state.me.roles.some((r) => r.role === "district_commander")) {
    scope.append(el("option", { value: "district" }, t("全区", "Whole district")));
  }
  // A street, or one community of it (a flood may touch a few courtyards only).
  const streets = el("optgroup", { label: t("街道", "Streets") });
  for (const { node } of data.streets.edges) {
    streets.append(el("option", { value: `street:${node.code}` }, `${node.name} ${node.code}`));
  }
  const communities = el("optgroup", { label: t("社区", "Communities") });
  for (const { node } of data.communities.edges) {
    communities.append(el("option", { value: `community:${node.code}` }, `${node.name} ${node.code}`));
  }
  scope.append(...[streets, communities].filter((group) => group.children.length));
  const kind = $("act-kind");
  kind.replaceChildren(
    ...data.staffingRules.map((r) => el("option", { value: r.kind }, t(...(KINDS[r.kind] || [r.kind, r.kind]))))
  );
  $("task-kind").replaceChildren(
    ...Object.entries(TASK_KINDS).map(([k, [zh, en]]) => el("option", { value: k }, t(zh, en)))
  );
}

// -- the mobilisation shown -------------------------------------------------------------------

async function loadMobilisations(selectId = null) {
  const data = await api(LIST);
  state.mobilisations = data.mobilisations.edges.map((e) => e.node);
  const live = state.mobilisations.filter((m) => m.status !== "STOOD_DOWN");
  const select = $("mobilisation");
  select.replaceChildren(
    el("option", { value: "" }, t("（无进行中的动员）", "(no mobilisation under way)")),
    ...live.map((m) => el("option", { value: m.id }, `${m.title} · ${m.status === "ACTIVE" ? t("战时", "wartime") : t("启动中", "activating")}`))
  );
  const wanted = selectId || state.current?.id || live[0]?.id || "";
  select.value = live.some((m) => m.id === wanted) ? wanted : "";
  await showMobilisation(select.value);
}

$("mobilisation").addEventListener("change", (event) => showMobilisation(event.target.value));

async function showMobilisation(id) {
  if (state.stop) state.stop();
  state.stop = null;
  state.current = state.mobilisations.find((m) => m.id === id) || null;
  state.chosen.clear();
  show($("live"), Boolean(state.current));
  tick();
  $("activate").open = !state.current;
  if (!state.current) {
    map.setGrids([]);
    const peace = await api(AREAS);
    map.setAreas(peace.district?.streets || []);
    return;
  }
  map.setAreas([]);
  if (state.current.status === "ACTIVATING") {
    notice(t("正在计算派员方案……", "Planning who goes where..."));
    setTimeout(() => loadMobilisations(id), 3000);
    return;
  }
  const data = await api(GRIDS, { m: id });
  map.setGrids(data.gridStates.map((s) => s.grid));
  setStates(data.gridStates);
  await Promise.all([refreshCoverage(), refreshRisk()]);
  state.stop = subscribe(
    token.get(),
    WATCH,
    { m: id },
    (payload) => {
      drawCoverage(payload.coverageChanged);
      scheduleRefresh();
    },
    { onReconnect: scheduleRefresh }
  );
}

function setStates(gridStates) {
  state.status = new Map(gridStates.map((s) => [s.grid.id, s.status]));
  paint();
}

function paint() {
  map.paint((id) => state.status.get(id), state.chosen);
}

/** Live changes arrive often on a big day: re-read the grid states and risks at most every 3 s. */
function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(async () => {
    state.refreshTimer = null;
    if (!state.current) return;
    try {
      const data = await api(STATES, { m: state.current.id });
      setStates(data.gridStates);
      await refreshRisk();
    } catch (error) {
      notice(error.message, "error"); // the next change tries again
    }
  }, 3000);
}

async function refreshCoverage() {
  const data = await api(COVERAGE, { m: state.current.id });
  drawCoverage(data.coverage);
}

function drawCoverage(coverage) {
  if (!coverage || !state.current) return;
  state.skew = serverSkew(state.current.deadline, coverage.minutesLeft);
  tick();
  const pct = coverage.mobilisedPct;
  $("gauge-bar").style.width = `${Math.min(100, pct)}%`;
  $("gauge-text").textContent = `${t("已到岗", "Mobilised")} ${pct.toFixed(1)}% (${coverage.grids} ${t("个微网格", "micro-grids")})`;
  $("by-status").replaceChildren(
    ...coverage.byStatus.map((s) =>
      el(
        "li",
        {},
        el("i", { style: `background:${STATUS_COLOURS[s.status.toUpperCase()] || "#999"}` }),
        `${statusLabel(s.status)} ${s.count}`
      )
    )
  );
  const target = (new Date(state.current.deadline) - new Date(state.current.t0)) / 60000;
  const points = coverage.curve.map((p) => ({
    minute: p.minute,
    pct: coverage.grids ? (100 * p.mobilised) / coverage.grids : 0,
  }));
  $("curve").replaceChildren(curveSvg(points, target));
}

async function refreshRisk() {
  const data = await api(RISK, { m: state.current.id });
  const list = $("risks");
  list.replaceChildren(
    ...(data.risk || []).map((r) => {
      const fix = r.suggestion;
      const button = fix?.responder
        ? el(
            "button",
            { type: "button", class: "accept", onclick: () => acceptFix(r, button) },
            t(`采纳：派 ${fix.responder.name}（${Math.round(fix.travelMinutes)} 分钟）`, `Accept: send ${fix.responder.name} (${Math.round(fix.travelMinutes)} min)`)
          )
        : null;
      return el(
        "li",
        { "data-grid": r.grid?.code },
        el("strong", {}, `${r.grid?.code} ${r.grid?.name}`),
        " ",
        r.minutesLate ? t(`预计迟到 ${Math.round(r.minutesLate)} 分钟`, `${Math.round(r.minutesLate)} min late`) : "",
        el("div", { class: "reasons" }, t(r.reasonLabels.join("；"), r.reasonLabelsEn.join("; "))),
        button
      );
    })
  );
  if (!list.children.length) list.append(el("li", { class: "ok" }, t("暂无风险网格", "No grid at risk")));
}

async function acceptFix(risk, button) {
  button.disabled = true;
  try {
    const data = await api(
      `mutation($m: ID!, $g: ID!, $r: ID!, $f: ID, $c: String) {
        acceptRiskFix(mobilisation: $m, grid: $g, responder: $r, fromGrid: $f, clientMutationId: $c) {
          __typename ... on Assignment { id status } ... on Error { message } } }`,
      {
        m: state.current.id,
        g: risk.grid.id,
        r: risk.suggestion.responder.id,
        f: risk.suggestion.fromGrid?.id || null,
        c: newId(),
      }
    );
    expectOk(data.acceptRiskFix);
    notice(t(`已派 ${risk.suggestion.responder.name} 前往 ${risk.grid.code}`, `${risk.suggestion.responder.name} sent to ${risk.grid.code}`));
    await refreshRisk();
  } catch (error) {
    notice(error.message, "error");
    button.disabled = false;
  }
}

// -- choosing grids and dispatching -----------------------------------------------------------

function choose(gridId) {
  if (!$("dispatch").open) return;
  if (state.chosen.has(gridId)) state.chosen.delete(gridId);
  else state.chosen.add(gridId);
  $("chosen").textContent = String(state.chosen.size);
  paint();
}

$("clear-chosen").addEventListener("click", () => {
  state.chosen.clear();
  $("chosen").textContent = "0";
  paint();
});

$("dispatch-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.chosen.size) {
    notice(t("请先在地图上点选网格", "Click grids on the map first"), "error");
    return;
  }
  try {
    const data = await api(
      `mutation($m: ID!, $k: TaskKind!, $a: AreaInput!, $title: String) {
        dispatchTask(mobilisation: $m, kind: $k, area: $a, title: $title) {
          __typename ... on DispatchedTasks { count } ... on Error { message } } }`,
      {
        m: state.current.id,
        k: $("task-kind").value,
        a: { grids: [...state.chosen] },
        title: $("task-title").value.trim() || null,
      }
    );
    const done = expectOk(data.dispatchTask);
    notice(t(`已派发 ${done.count} 项任务`, `${done.count} tasks dispatched`));
    state.chosen.clear();
    $("chosen").textContent = "0";
    paint();
  } catch (error) {
    notice(error.message, "error");
  }
});

// -- activation and stand-down ----------------------------------------------------------------

$("activate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const scopeValue = $("act-scope").value;
  const scopeText = $("act-scope").selectedOptions[0]?.textContent || scopeValue;
  const title = $("act-title").value.trim();
  const yes = await confirmDialog(
    t(`确认对「${scopeText}」启动战时状态：「${title}」？将立即通知所有被派人员。`, `Switch ${scopeText} to wartime ("${title}")? Everyone assigned is notified at once.`)
  );
  if (!yes) return;
  const [level, code] = scopeValue.split(":");
  const scope =
    level === "district" ? { district: true } : level === "community" ? { communities: [code] } : { streets: [code] };
  try {
    notice(t("正在启动，正在计算派员方案……", "Activating: planning who goes where..."));
    const data = await api(
      `mutation($s: ScopeInput!, $k: MobilisationKind!, $t: String!, $min: Int!, $c: String) {
        activateMobilisation(scope: $s, kind: $k, title: $t, targetMinutes: $min, clientMutationId: $c) {
          __typename ... on Mobilisation { id status } ... on Error { message } } }`,
      {
        s: scope,
        k: $("act-kind").value,
        t: title,
        min: Number($("act-minutes").value),
        c: newId(),
      }
    );
    const m = expectOk(data.activateMobilisation);
    notice(t("已启动战时状态", "Wartime mode is on"));
    $("act-title").value = "";
    await loadMobilisations(m.id);
  } catch (error) {
    notice(error.message, "error");
  }
});

$("stand-down").addEventListener("click", async () => {
  const m = state.current;
  if (!m) return;
  const yes = await confirmDialog(t(`确认解除「${m.title}」的战时状态？所有人员将被释放。`, `Stand down "${m.title}"? Everyone is released.`));
  if (!yes) return;
  try {
    const data = await api(
      `mutation($id: ID!, $c: String) { standDown(id: $id, clientMutationId: $c) {
        __typename ... on Mobilisation { id status } ... on Error { message } } }`,
      { id: m.id, c: newId() }
    );
    expectOk(data.standDown);
    notice(t("已解除战时状态", "Stood down"));
    await loadMobilisations();
  } catch (error) {
    notice(error.message, "error");
  }
});

function tick() {
  if (state.current) {
    const left = countdown(state.current.deadline, Date.now() + (state.skew || 0));
    $("countdown").textContent = left;
    $("countdown").classList.toggle("late", left.startsWith("-"));
  }
}
setInterval(tick, 1000);

// Peacetime, zoomed in: draw the micro-grids of the communities in view, each once.
map.map.on("moveend", async () => {
  if (state.current || !state.me || map.map.getZoom() < MICRO_ZOOM) return;
  for (const id of map.communitiesToFill()) {
    const data = await api(MICRO, { c: id });
    map.addMicroGrids(data.grids.edges.map((e) => e.node));
  }
});

applyLanguage(() => {
  if (state.me) {
    fillForms();
    loadMobilisations();
  }
});
begin();
