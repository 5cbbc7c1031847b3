// The capture page: preview, start/stop/snapshot (buttons and F8/F9), state (RIS-6.7, FEAT-2.1).
"use strict";
const TEXT = {
  vi: { title: "Ghi hình nội soi / siêu âm", device: "Thiết bị", accession: "Số phiếu chỉ định",
    start: "● Ghi (F8)", stop: "■ Dừng (F8)", snapshot: "◉ Chụp ảnh (F9)", state: "Trạng thái",
    frames: "Khung hình", dropped: "Bỏ khung", duplicated: "Lặp khung", recording: "Đang ghi",
    stored: "Đã lưu", storing: "Đang lưu…", noorder: "Không có chỉ định này", lang: "EN" },
  en: { title: "Endoscopy / ultrasound capture", device: "Device", accession: "Accession number",
    start: "● Record (F8)", stop: "■ Stop (F8)", snapshot: "◉ Snapshot (F9)", state: "State",
    frames: "Frames", dropped: "Dropped", duplicated: "Duplicated", recording: "Recording",
    stored: "Stored", storing: "Storing…", noorder: "No such order", lang: "VI" },
};
let lang = localStorage.getItem("mekong.lang") || "vi";
let csrf = "";
let status = null;
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key] || key;

function translate() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $("lang").textContent = t("lang");
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (reply.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); }
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(data.error || reply.statusText);
  return data;
}

function say(text, error) { $("message").textContent = text; $("message").className = error ? "error" : ""; }
const device = () => $("device").value;

async function loadDevices() {
  const me = await api("GET", "/api/auth/me").catch(() => ({}));
  csrf = me.csrf || "";
  const { devices } = await api("GET", "/api/capture");
  $("device").innerHTML = "";
  for (const d of devices) {
    const option = new Option(d.label ? `${d.label} (${d.name})` : d.name, d.name);
    $("device").append(option);
  }
  const wanted = new URLSearchParams(location.search).get("device");
  if (wanted) $("device").value = wanted;
  showPreview();
}

function showPreview() {
  if (device()) $("preview").src = `/api/capture/${encodeURIComponent(device())}/preview`;
}

async function lookUpOrder() {
  const accession = $("accession").value.trim();
  if (!accession) { $("order").textContent = ""; return; }
  try {
    const order = await api("GET", `/api/orders/${encodeURIComponent(accession)}`);
    const p = order.patient;
    $("order").textContent = `${p.name.replaceAll("^", " ")} · ${p.id} · ${p.birth_date} · ${order.procedure.description}`;
  } catch (e) { $("order").textContent = t("noorder"); }
}

async function start() {
  say("");
  try { await api("POST", `/api/capture/${device()}/start`, { accession: $("accession").value.trim() }); }
  catch (e) { say(e.message, true); }
  refresh();
}

async function stop() {
  say(t("storing"));
  try { stored(await api("POST", `/api/capture/${device()}/stop`)); say(t("stored")); }
  catch (e) { say(e.message, true); }
  refresh();
}

async function snapshot() {
  try {
    stored(await api("POST", `/api/capture/${device()}/snapshot`, { accession: $("accession").value.trim() }));
    say(t("stored"));
  } catch (e) { say(e.message, true); }
}

function stored(result) {
  if (!result.sop_uid) { say(result.error || "?", true); return; }
  const item = document.createElement("li");
  const what = result.frames > 1 ? `video ${result.frames}` : "ảnh/still";
  item.textContent = `${new Date().toLocaleTimeString()} ${what} · ${result.sop_uid}`;
  $("stored").prepend(item);
}

async function refresh() {
  if (!device()) return;
  try { status = await api("GET", `/api/capture/${device()}`); } catch (e) { return; }
  const rec = status.recording;
  document.body.classList.toggle("recording", !!rec);
  const rows = [[t("state"), rec ? `${t("recording")} ${rec.seconds} s · ${rec.accession}` : status.state]];
  if (rec) rows.push([t("frames"), rec.frames], [t("dropped"), rec.dropped], [t("duplicated"), rec.duplicated]);
  else if (status.last) rows.push([t("frames"), status.last.frames_sent ?? ""], [t("dropped"), status.last.dropped], [t("duplicated"), status.last.duplicated]);
  $("state").innerHTML = "";
  for (const [k, v] of rows) { $("state").append(Object.assign(document.createElement("dt"), { textContent: k }), Object.assign(document.createElement("dd"), { textContent: v })); }
}

document.addEventListener("keydown", (event) => {
  if (event.key === "F8") { event.preventDefault(); (status && status.recording) ? stop() : start(); }
  if (event.key === "F9") { event.preventDefault(); snapshot(); }
});
$("start").onclick = start; $("stop").onclick = stop; $("snapshot").onclick = snapshot;
$("device").onchange = () => { showPreview(); refresh(); };
$("accession").onchange = lookUpOrder;
$("lang").onclick = (e) => { e.preventDefault(); lang = lang === "vi" ? "en" : "vi"; localStorage.setItem("mekong.lang", lang); translate(); refresh(); };
translate();
loadDevices().then(refresh).catch((e) => say(e.message, true));
setInterval(refresh, 1000);
