// The cadre's phone: sign in with a one-time code, see my assignment, answer, check in with
// the phone's location, work through the household list, see my tasks and hours.
//
// Every action goes through a queue kept on the phone (localStorage) with its client
// mutation id, so an action taken without network is sent when it returns, and an action
// sent twice (a retry after a lost answer) lands once: the server answers the retry with
// the first result. The page says how many actions are still waiting.

import {
  GraphQLRequestError,
  NetworkError,
  applyLanguage,
  confirmDialog,
  countdown,
  el,
  gql,
  leafletMap,
  loadBaseMap,
  newId,
  serverSkew,
  notice,
  shape,
  show,
  t,
  tPair,
  taskTitle,
  tokenStore,
} from "./app.js";

/* global L */

const token = tokenStore("phone");
const QUEUE_KEY = "mobilize.phone.queue";
const CACHE_KEY = "mobilize.phone.last";
const DEVICE_KEY = "mobilize.phone.device";
const $ = (id) => document.getElementById(id);
let data = null; // what the server last said (also kept for an offline start)
let phoneNumber = "";
let smallMap = null; // a promise of the small map, made once
let flushing = false;
let skew = 0; // the server's clock minus the phone's (phones' clocks are often wrong)

// This phone's own random id, kept across sign-ins: codes and their limits are per device,
// and a device that signed in before keeps a way in when others spend the phone's allowance.
function device() {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

const ASSIGNMENT_STATUS = {
  ASSIGNED: ["待确认", "Waiting for your answer"],
  ACKNOWLEDGED: ["已确认，在途", "Coming"],
  EN_ROUTE: ["在途", "On the way"],
  ON_SITE: ["已到岗", "On site"],
  DECLINED: ["已拒绝", "Declined"],
  NO_SHOW: ["未到岗", "Did not arrive"],
  RELEASED: ["已释放", "Released"],
};
const RESULTS = {
  OK: ["正常", "OK"],
  NEEDS_HELP: ["需帮扶", "Needs help"],
  ABSENT: ["不在家", "Absent"],
  REFUSED: ["拒绝", "Refused"],
};
const TASK_STATUS = {
  PENDING: ["待派发", "Pending"],
  ASSIGNED: ["待接受", "To accept"],
  ACCEPTED: ["已接受", "Accepted"],
  IN_PROGRESS: ["进行中", "In progress"],
  DONE: ["已完成", "Done"],
  FAILED: ["未完成", "Failed"],
  CANCELLED: ["已取消", "Cancelled"],
};
// The seven-colour tags (七彩图), in words.
const TAGS = {
  ELDERLY: ["老人", "elderly"],
  EMPTY_NEST: ["空巢", "empty nest"],
  HARDSHIP: ["困难户", "hardship"],
  DISABILITY: ["残疾", "disability"],
  PARTY_MEMBER: ["党员", "party member"],
  RENTED: ["租户", "tenant"],
  VACANT: ["空置", "vacant"],
};

/** Households in the order a cadre walks them: building, unit, door (numbers as numbers). */
function visitingOrder(entries) {
  const key = (e) => e.household.address || e.household.code;
  return [...entries].sort((a, b) => key(a).localeCompare(key(b), "zh-CN", { numeric: true }));
}

const MINE = `{ myAssignment { minutesLeft deadline
    mobilisation { id title }
    assignment { id status role travelMinutes distanceMetres mode }
    grid { id code name geometry centre }
    directions { app label url }
    teammates { name phone role status } leader { name phone } }
  myTasks { id kind title status dueAt
    households { household { id code tags address } checked { result } supplied { result } } }
  myService { hours earned redeemed points entries { at source title hours points } }
  myProfile { id onLeave leaves { reason startsAt endsAt } }
  activities(status: SCHEDULED, first: 20) { edges { node { id title kind startsAt endsAt
    people { how responder { id } } } } } }`;
const LOOK = `{ myAssignment { minutesLeft deadline assignment { id status } } myTasks { id status } }`;

// -- the queue --------------------------------------------------------------------------------

function queue() {
  return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]");
}

function saveQueue(items) {
  localStorage.setItem(QUEUE_KEY, JSON.stringify(items));
  renderWaiting();
}

/** Keep the action on the phone first, then try to send everything waiting. */
function enqueue(action) {
  saveQueue([...queue(), { ...action, variables: { ...action.variables, c: newId() }, at: Date.now() }]);
  render();
  flush();
}

function renderWaiting() {
  const items = queue();
  const box = $("waiting");
  show(box, items.length > 0);
  box.replaceChildren(
    el("strong", {}, t(`待发送 ${items.length} 项`, `${items.length} waiting to send`)),
    el("ul", {}, ...items.map((i) => el("li", {}, t(i.label[0], i.label[1]))))
  );
  show($("offline"), !navigator.onLine);
}

/** Send what waits, in order; stop at the first network failure (and try again later). */
async function flush() {
  if (flushing || !token.get()) return;
  flushing = true;
  let sent = 0;
  let stale = false; // something landed that only a reload shows
  try {
    for (;;) {
      const [next] = queue();
      if (!next) break;
      let result;
      try {
        const answer = await gql(token.get(), next.query, next.variables);
        result = answer[next.field];
      } catch (error) {
        if (error instanceof NetworkError) break; // still offline: keep it
        if (error instanceof GraphQLRequestError && error.status === 401) {
          notice(t("登录已过期，请重新登录；待发送的操作会保留。", "Signed out: sign in again; waiting actions are kept."), "error");
          showSignIn();
          break;
        }
        if (error instanceof GraphQLRequestError && error.status >= 500) break;
        result = { __typename: "Error", message: error.message };
      }
      saveQueue(queue().filter((item) => item.variables.c !== next.variables.c));
      sent += 1;
      if (!landedRecord(next, result)) stale = true;
      if (result && result.__typename && result.__typename.endsWith("Error")) {
        const kind = result.__typename === "AlreadyRecordedError" ? "info" : "error";
        notice(`${t(next.label[0], next.label[1])}: ${result.message}`, kind);
      } else if (next.kind === "check-in") {
        // Said plainly where a cadre looks first: the check-in has landed.
        const at = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        notice(t(`✓ 已到岗签到（${at}）`, `✓ Checked in (${at})`), "success");
      }
    }
  } finally {
    flushing = false;
  }
  renderWaiting();
  if (stale) await load();
  else if (sent) render();
}

/** A household record that landed changes one line of the page: it is marked here instead
 * of reloading everything, as a cadre records fifty households in a row. */
function landedRecord(item, result) {
  if (item.kind !== "record" || result?.__typename !== "HouseholdRecord" || !data) return false;
  const task = (data.myTasks || []).find((each) => each.id === item.variables.task);
  const entry = task?.households.find((each) => each.household.id === item.variables.h);
  if (!entry) return false;
  entry[item.field === "recordDelivery" ? "supplied" : "checked"] = { result: result.result };
  // As on the server, a task's first record starts it (the minute's look corrects the rest).
  if (task.status === "ASSIGNED" || task.status === "ACCEPTED") task.status = "IN_PROGRESS";
  localStorage.setItem(CACHE_KEY, JSON.stringify(data));
  return true;
}

window.addEventListener("online", () => {
  renderWaiting();
  flush();
});
window.addEventListener("offline", renderWaiting);
setInterval(flush, 10000);

// -- signing in -------------------------------------------------------------------------------

function showSignIn() {
  show($("sign-in"), true);
  show($("home"), false);
  show($("sign-out"), false);
}

$("phone-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  phoneNumber = $("phone-number").value.trim();
  try {
    const answer = await gql(
      null,
      `mutation($p: String!, $d: String) { requestSignInCode(phone: $p, device: $d) {
        __typename ... on SignInCodeSent { message } ... on Error { message } } }`,
      { p: phoneNumber, d: device() }
    );
    const result = answer.requestSignInCode;
    if (result.__typename !== "SignInCodeSent") throw new Error(result.message);
    notice(result.message);
    show($("code-form"), true);
    $("code").focus();
  } catch (error) {
    notice(error.message, "error");
  }
});

$("code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const answer = await gql(
      null,
      `mutation($p: String!, $c: String!, $d: String) {
        signInWithCode(phone: $p, code: $c, device: $d) {
        __typename ... on SignInSuccess { token } ... on Error { message } } }`,
      { p: phoneNumber, c: $("code").value.trim(), d: device() }
    );
    const result = answer.signInWithCode;
    if (result.__typename !== "SignInSuccess") throw new Error(result.message);
    token.set(result.token);
    $("code").value = "";
    show($("code-form"), false);
    notice("");
    await start();
  } catch (error) {
    notice(error.message, "error");
  }
});

$("sign-out").addEventListener("click", async () => {
  const ok = await confirmDialog(t("退出登录？", "Sign out?"));
  if (!ok) return;
  try {
    await gql(token.get(), "mutation { signOut { __typename } }");
  } catch (error) {
    // signing out offline still forgets the token here
  }
  token.clear();
  localStorage.removeItem(CACHE_KEY);
  showSignIn();
});

// -- my assignment ----------------------------------------------------------------------------

async function load() {
  try {
    data = await gql(token.get(), MINE);
    if (data.myAssignment) skew = serverSkew(data.myAssignment.deadline, data.myAssignment.minutesLeft);
    localStorage.setItem(CACHE_KEY, JSON.stringify(data));
  } catch (error) {
    if (error instanceof GraphQLRequestError && error.status === 401) {
      showSignIn();
      return;
    }
    if (!(error instanceof NetworkError)) notice(error.message, "error");
  }
  render();
}

let waitingNow = []; // the queue as of this render (read once, asked per household)

/** What waits in the queue changes what the page shows until the server has it. */
function pending(kind, key) {
  return waitingNow.some((item) => item.kind === kind && item.key === key);
}

function render() {
  waitingNow = queue();
  renderWaiting();
  if (!data) return;
  const mine = data.myAssignment;
  show($("no-assignment"), !mine);
  show($("mine"), Boolean(mine));
  if (mine) renderAssignment(mine);
  renderTasks(data.myTasks || []);
  const service = data.myService;
  $("hours").textContent = service
    ? t(`累计 ${service.hours.toFixed(1)} 小时，积分 ${service.points.toFixed(1)}`, `${service.hours.toFixed(1)} hours, ${service.points.toFixed(1)} points`)
    : "";
  $("ledger").replaceChildren(
    ...(service ? service.entries : []).map((e) =>
      el("li", {}, `${e.at.slice(0, 10)} ${t(...(SOURCES[e.source] || [e.source, e.source]))} ${e.title} `,
        el("strong", {}, `${e.points > 0 ? "+" : ""}${e.points}`))
    )
  );
  renderLeave(data.myProfile);
  renderActivities(data.activities ? data.activities.edges.map((e) => e.node) : [], data.myProfile);
}

const SOURCES = {
  mobilisation: ["战时服务", "Mobilisation"],
  activity: ["活动", "Activity"],
  redemption: ["兑换", "Redeemed"],
};
const ACTIVITY_KINDS = {
  PATROL: ["巡逻", "Patrol"],
  BUILDING_ROUND: ["扫楼", "Building round"],
  DRILL: ["演练", "Drill"],
  COMMUNITY_EVENT: ["社区活动", "Community event"],
  OTHER: ["其他", "Other"],
};

// -- peacetime: leave, activities -----------------------------------------------------------

function renderLeave(profile) {
  const away = Boolean(profile && profile.onLeave);
  const open = profile && profile.leaves.find((l) => !l.endsAt || Date.parse(l.endsAt) > Date.now());
  $("leave-status").textContent = away
    ? t(`请假中${open && open.endsAt ? `，至 ${open.endsAt.slice(0, 10)}` : ""}`, `On leave${open && open.endsAt ? ` until ${open.endsAt.slice(0, 10)}` : ""}`)
    : t("在岗，可随时响应", "On duty");
  show($("leave-form"), Boolean(profile) && !away);
  show($("back-on-duty"), away);
}

function renderActivities(list, profile) {
  const me = profile && profile.id;
  $("activities").replaceChildren(
    ...list.map((a) => {
      const joined = a.people.some((p) => p.responder && p.responder.id === me);
      const when = `${a.startsAt.slice(5, 16).replace("T", " ")}`;
      return el(
        "li",
        { "data-activity": a.id },
        `${t(...(ACTIVITY_KINDS[a.kind] || [a.kind, a.kind]))} · ${a.title} · ${when} `,
        joined
          ? el("em", {}, t("已报名", "Signed up"))
          : el("button", { type: "button", onclick: () => signUp(a.id) }, t("报名", "Sign up"))
      );
    })
  );
}

async function act(query, variables, field, done) {
  try {
    const answer = await gql(token.get(), query, variables);
    const result = answer[field];
    if (result.__typename.endsWith("Error")) throw new Error(result.message);
    notice(done);
    await load();
  } catch (error) {
    notice(error.message, "error");
  }
}

function signUp(activity) {
  return act(
    `mutation($a: ID!) { signUp(activity: $a) { __typename ... on Error { message } } }`,
    { a: activity },
    "signUp",
    t("已报名", "Signed up")
  );
}

$("leave-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const until = $("leave-until").value;
  return act(
    `mutation($r: ID!, $reason: LeaveReason!, $e: DateTime) {
      recordLeave(responder: $r, reason: $reason, endsAt: $e) { __typename ... on Error { message } } }`,
    { r: data.myProfile.id, reason: $("leave-reason").value, e: until ? new Date(`${until}T23:59:59`).toISOString() : null },
    "recordLeave",
    t("已请假", "Leave recorded")
  );
});

$("back-on-duty").addEventListener("click", () =>
  act(
    `mutation($r: ID!) { backOnDuty(responder: $r) { __typename ... on Error { message } } }`,
    { r: data.myProfile.id },
    "backOnDuty",
    t("已销假，欢迎归队", "Back on duty")
  )
);

// -- reporting in (报到/报名), before there is anyone to sign in as ---------------------------

$("enrol-code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const answer = await gql(
      null,
      `mutation($p: String!, $d: String) { requestEnrolmentCode(phone: $p, device: $d) {
        __typename ... on SignInCodeSent { message } ... on Error { message } } }`,
      { p: $("enrol-phone").value.trim(), d: device() }
    );
    const result = answer.requestEnrolmentCode;
    if (result.__typename !== "SignInCodeSent") throw new Error(result.message);
    notice(result.message);
    show($("enrol-form"), true);
  } catch (error) {
    notice(error.message, "error");
  }
});

$("enrol-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const skills = $("enrol-skills").value.split(/[,，、]/).map((s) => s.trim()).filter(Boolean);
  try {
    const answer = await gql(
      null,
      `mutation($p: String!, $c: String!, $community: String!, $kind: EnrolmentKind!, $name: String!,
                $address: String!, $unit: String, $skills: [String!], $availability: String!,
                $consent: Boolean!, $d: String) {
        reportIn(phone: $p, code: $c, community: $community, kind: $kind, name: $name, address: $address,
                 unit: $unit, skills: $skills, availability: $availability, consent: $consent, device: $d) {
          __typename ... on EnrolmentReceived { message } ... on Error { message } } }`,
      {
        p: $("enrol-phone").value.trim(),
        c: $("enrol-code").value.trim(),
        community: $("enrol-community").value.trim(),
        kind: $("enrol-kind").value,
        name: $("enrol-name").value,
        address: $("enrol-address").value,
        unit: $("enrol-unit").value.trim() || null,
        skills,
        availability: $("enrol-availability").value,
        consent: $("enrol-consent").checked,
        d: device(),
      }
    );
    const result = answer.reportIn;
    if (result.__typename !== "EnrolmentReceived") throw new Error(result.message);
    notice(result.message);
    show($("enrol-form"), false);
  } catch (error) {
    notice(error.message, "error");
  }
});

function renderAssignment(mine) {
  const a = mine.assignment;
  $("grid-name").textContent = `${mine.mobilisation.title} · ${mine.grid.code} ${mine.grid.name}`;
  // 导航: the phone's own map app, at the grid (the server converts the point to its system).
  $("directions").replaceChildren(
    ...mine.directions.map((d) =>
      el("a", { class: "button", href: d.url, "data-app": d.app }, `${t("导航", "Directions")} · ${tPair(d.label)}`)
    )
  );
  let status = ASSIGNMENT_STATUS[a.status] || [a.status, a.status];
  if (pending("acknowledge", a.id)) status = ["已确认（待发送）", "Coming (waiting to send)"];
  if (pending("check-in", a.id)) status = ["已签到（待发送）", "Checked in (waiting to send)"];
  $("my-status").textContent = t(status[0], status[1]);
  $("travel").textContent = t(
    `距离 ${(a.distanceMetres / 1000).toFixed(1)} 公里，约 ${Math.round(a.travelMinutes)} 分钟`,
    `${(a.distanceMetres / 1000).toFixed(1)} km, about ${Math.round(a.travelMinutes)} min`
  );
  const answered = a.status !== "ASSIGNED" || pending("acknowledge", a.id);
  const onSite = a.status === "ON_SITE" || pending("check-in", a.id);
  show($("acknowledge"), !answered);
  show($("eta-label"), !answered);
  show($("decline"), !answered);
  show($("check-in"), answered && !onSite && a.status !== "DECLINED");
  $("teammates").replaceChildren(
    ...(mine.leader ? [el("li", {}, t("组长 ", "Leader "), el("a", { href: `tel:${mine.leader.phone}` }, `${mine.leader.name} ${mine.leader.phone}`))] : []),
    ...mine.teammates.map((p) =>
      el("li", {}, el("a", { href: `tel:${p.phone}` }, `${p.name} ${p.phone}`), ` · ${t(...(ASSIGNMENT_STATUS[p.status] || ["", ""]))}`)
    )
  );
  drawMyMap(mine.grid);
}

/** The grid and its centre on the small map, over the deployment's base map if it has one. */
async function drawMyMap(grid) {
  if (typeof L === "undefined") return;
  smallMap ??= loadBaseMap().then((base) => {
    const map = leafletMap($("my-map"), base);
    return Object.assign(map, { base, layer: L.layerGroup().addTo(map) });
  });
  const map = await smallMap;
  map.layer.clearLayers();
  const outline = shape(map.base, grid.geometry, { style: { color: "#b71c1c", weight: 2, fillOpacity: 0.15 } });
  outline.addTo(map.layer);
  const centre = (_, at) => L.circleMarker(at, { radius: 6, color: "#b71c1c" });
  shape(map.base, grid.centre, { pointToLayer: centre }).addTo(map.layer);
  map.fitBounds(outline.getBounds(), { padding: [8, 8] });
}

$("acknowledge").addEventListener("click", () => {
  const a = data.myAssignment.assignment;
  enqueue({
    kind: "acknowledge",
    key: a.id,
    label: ["确认到岗", "Acknowledge"],
    field: "acknowledgeAssignment",
    query: `mutation($id: ID!, $eta: Int, $c: String) {
      acknowledgeAssignment(id: $id, etaMinutes: $eta, clientMutationId: $c) {
        __typename ... on Assignment { status } ... on Error { message } } }`,
    variables: { id: a.id, eta: Number($("eta").value) || null },
  });
});

/** Ask why, from a list (and a note, needed for "other"); null when the cadre cancels. */
function askDeclineReason() {
  const dialog = $("decline-dialog");
  const form = dialog.querySelector("form");
  form.reset();
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (dialog.returnValue !== "yes") return resolve(null);
        const chosen = form.querySelector("input[name=reason]:checked")?.value;
        const note = $("decline-note").value.trim();
        if (!chosen || (chosen === "其他" && !note)) {
          notice(t("请选择原因（选“其他”时请说明）", "Choose a reason (say more for Other)"), "error");
          return resolve(null);
        }
        resolve(note ? `${chosen}：${note}` : chosen);
      },
      { once: true },
    );
  });
}

$("decline").addEventListener("click", async () => {
  const reason = await askDeclineReason();
  if (!reason) return;
  const a = data.myAssignment.assignment;
  enqueue({
    kind: "decline",
    key: a.id,
    label: ["无法前往", "Decline"],
    field: "declineAssignment",
    query: `mutation($id: ID!, $r: String!, $c: String) {
      declineAssignment(id: $id, reason: $r, clientMutationId: $c) {
        __typename ... on Assignment { status } ... on Error { message } } }`,
    variables: { id: a.id, r: reason },
  });
});

$("report-problem").addEventListener("click", () => {
  const dialog = $("problem-dialog");
  dialog.querySelector("form").reset();
  dialog.showModal();
  dialog.addEventListener(
    "close",
    () => {
      const text = $("problem-text").value.trim();
      if (dialog.returnValue !== "yes" || !text) return;
      const a = data.myAssignment.assignment;
      enqueue({
        kind: "problem",
        key: `${a.id}:${Date.now()}`,
        label: ["上报问题", "Report a problem"],
        field: "reportProblem",
        query: `mutation($id: ID!, $text: String!, $c: String) {
          reportProblem(assignment: $id, text: $text, clientMutationId: $c) {
            __typename ... on ProblemReport { status } ... on Error { message } } }`,
        variables: { id: a.id, text },
      });
      notice(t("问题已记下，将发给街道指挥中心", "Noted: it goes to the street command centre"), "success");
    },
    { once: true },
  );
});

$("check-in").addEventListener("click", () => {
  const a = data.myAssignment.assignment;
  if (!navigator.geolocation) {
    notice(t("此手机无法定位", "This phone cannot tell its location"), "error");
    return;
  }
  notice(t("正在定位……", "Finding your location..."));
  navigator.geolocation.getCurrentPosition(
    (position) => {
      notice("");
      enqueue({
        kind: "check-in",
        key: a.id,
        label: ["到岗签到", "Check in"],
        field: "checkIn",
        query: `mutation($id: ID!, $loc: LocationInput!, $c: String) {
          checkIn(assignment: $id, location: $loc, clientMutationId: $c) {
            __typename ... on Assignment { status } ... on Error { message } } }`,
        // The browser gives WGS-84 (GPS), whatever map app the phone has.
        variables: {
          id: a.id,
          loc: { lon: position.coords.longitude, lat: position.coords.latitude, crs: "wgs84" },
        },
      });
    },
    (error) => notice(t(`无法定位：${error.message}`, `No location: ${error.message}`), "error"),
    { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 }
  );
});

// -- tasks and households ---------------------------------------------------------------------

function renderTasks(tasks) {
  const box = $("tasks");
  if (!tasks.length) {
    box.replaceChildren(el("p", {}, t("暂无任务", "No task")));
    return;
  }
  box.replaceChildren(...tasks.map(renderTask));
}

function renderTask(task) {
  const head = el("h4", {}, taskTitle(task));
  if (task.kind === "HOUSEHOLD_CHECK" || task.kind === "SUPPLY_DELIVERY") {
    const delivery = task.kind === "SUPPLY_DELIVERY";
    const done = task.households.filter((h) => (delivery ? h.supplied : h.checked)).length;
    return el(
      "div",
      { class: "task", "data-task": task.id, "data-kind": task.kind },
      head,
      el("p", {}, t(`已完成 ${done} / ${task.households.length} 户`, `${done} of ${task.households.length} households done`)),
      el("ul", { class: "households" }, ...visitingOrder(task.households).map((h) => renderHousehold(task, h, delivery)))
    );
  }
  const buttons = [];
  if (task.status === "ASSIGNED" || task.status === "PENDING") {
    buttons.push(el("button", { type: "button", onclick: () => moveTask(task, "ACCEPTED", ["接受任务", "Accept task"]) }, t("接受", "Accept")));
  }
  if (task.status === "ACCEPTED" || task.status === "IN_PROGRESS") {
    buttons.push(el("button", { type: "button", onclick: () => moveTask(task, "DONE", ["完成任务", "Task done"]) }, t("完成", "Done")));
  }
  const status = TASK_STATUS[task.status] || [task.status, task.status];
  return el(
    "div",
    { class: "task", "data-task": task.id, "data-kind": task.kind },
    head,
    el("p", {}, t(...status)),
    ...buttons
  );
}

function renderHousehold(task, entry, delivery) {
  const h = entry.household;
  const landed = delivery ? entry.supplied : entry.checked;
  const key = `${task.id}:${h.id}`;
  const tags = h.tags.map((tag) => t(...(TAGS[tag] || [tag, tag]))).join(t("、", ", "));
  // Where to knock first (楼栋 单元 门牌), then which household and who lives there.
  const label = el(
    "span",
    { class: "code" },
    h.address ? el("strong", {}, `${h.address} `) : null,
    h.code,
    tags ? el("small", {}, ` ${tags}`) : null
  );
  if (landed) {
    const result = landed.result.toUpperCase();
    const shown = delivery ? t("已送达", "Delivered") : t(...(RESULTS[result] || [result, result]));
    return el("li", { class: "done", "data-household": h.code }, label, el("em", {}, ` ✓ ${shown}`));
  }
  if (pending("record", key)) {
    return el("li", { class: "pending", "data-household": h.code }, label, el("em", {}, t(" 待发送", " waiting to send")));
  }
  const buttons = delivery
    ? [el("button", { type: "button", onclick: () => record(task, h, "delivered", true) }, t("已送达", "Delivered"))]
    : Object.entries(RESULTS).map(([value, [zh, en]]) =>
        el("button", { type: "button", "data-result": value, onclick: () => record(task, h, value, false) }, t(zh, en))
      );
  return el("li", { "data-household": h.code }, label, el("span", { class: "buttons" }, ...buttons));
}

function record(task, household, result, delivery) {
  enqueue({
    kind: "record",
    key: `${task.id}:${household.id}`,
    label: delivery ? [`送达 ${household.code}`, `Delivered ${household.code}`] : [`排查 ${household.code}`, `Checked ${household.code}`],
    field: delivery ? "recordDelivery" : "recordHouseholdCheck",
    query: delivery
      ? `mutation($task: ID!, $h: ID!, $r: String!, $c: String) {
          recordDelivery(task: $task, household: $h, result: $r, clientMutationId: $c) {
            __typename ... on HouseholdRecord { id result } ... on Error { message } } }`
      : `mutation($task: ID!, $h: ID!, $r: CheckResult!, $c: String) {
          recordHouseholdCheck(task: $task, household: $h, result: $r, clientMutationId: $c) {
            __typename ... on HouseholdRecord { id result } ... on Error { message } } }`,
    variables: { task: task.id, h: household.id, r: result },
  });
}

function moveTask(task, to, label) {
  enqueue({
    kind: "task",
    key: task.id,
    label,
    field: "updateTask",
    query: `mutation($task: ID!, $to: TaskStatus!, $c: String) {
      updateTask(task: $task, to: $to, clientMutationId: $c) {
        __typename ... on Task { status } ... on Error { message } } }`,
    variables: { task: task.id, to },
  });
}

// -- start ------------------------------------------------------------------------------------

async function start() {
  if (!token.get()) {
    showSignIn();
    return;
  }
  show($("sign-in"), false);
  show($("home"), true);
  show($("sign-out"), true);
  const cached = localStorage.getItem(CACHE_KEY);
  if (cached && !data) {
    data = JSON.parse(cached);
    render();
  }
  await flush();
  await load();
}

/** What the minute's look compares: a new or changed assignment or task means a reload. */
function signature(seen) {
  const a = seen?.myAssignment?.assignment;
  return JSON.stringify([a?.id, a?.status, (seen?.myTasks || []).map((each) => [each.id, each.status])]);
}

/** The minute's look: a few fields, and everything again only when something changed (a
 * district's phones all look every minute, so the look must be light). */
async function look() {
  try {
    const seen = await gql(token.get(), LOOK);
    if (seen.myAssignment) skew = serverSkew(seen.myAssignment.deadline, seen.myAssignment.minutesLeft);
    if (signature(seen) !== signature(data)) await load();
  } catch (error) {
    // offline or signed out: the next look, or the next action, finds out
  }
}

// A new or changed assignment reaches the phone by message; the page also looks every minute,
// and as soon as the cadre comes back to it.
function lookIfIdle() {
  if (token.get() && navigator.onLine && !queue().length) look();
}
setInterval(lookIfIdle, 60000);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") lookIfIdle();
});

setInterval(() => {
  const mine = data?.myAssignment;
  if (mine) $("my-countdown").textContent = countdown(mine.deadline, Date.now() + skew);
}, 1000);

if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/ui/sw.js", { scope: "/ui/" }).catch(() => {});
}
applyLanguage(render);
start();
