// Light viewer for phones (MOB-1): study list, /rendered JPEG stack, swipe, window presets,
// low-bandwidth mode (small lossy preview first, full image after). No build step.
"use strict";
const WEB = "/dicom-web";
const TEXT = {
  vi: { search: "Tên hoặc mã bệnh nhân", find: "Tìm", back: "‹ Danh sách", lowbw: "Mạng yếu",
        none: "Không tìm thấy ca chụp", error: "Lỗi", openpdf: "Mở tài liệu PDF", loading: "Đang tải…",
        presets: { auto: "Tự động", soft: "Mô mềm", lung: "Phổi", bone: "Xương", brain: "Não" } },
  en: { search: "Patient name or ID", find: "Find", back: "‹ Studies", lowbw: "Low bandwidth",
        none: "No studies found", error: "Error", openpdf: "Open PDF document", loading: "Loading…",
        presets: { auto: "Auto", soft: "Soft tissue", lung: "Lung", bone: "Bone", brain: "Brain" } },
};
const PRESETS = { auto: null, soft: "40,400", lung: "-600,1500", bone: "300,1500", brain: "40,80" };
const VIDEO = /^1\.2\.840\.10008\.1\.2\.4\.10[0-8]/;
const PDF = "1.2.840.10008.5.1.4.1.1.104.1";
const $ = (id) => document.getElementById(id);
const state = { lang: localStorage.lang || "vi", stack: [], index: 0, window: null };

const value = (item, tag) => (item[tag] && item[tag].Value ? item[tag].Value[0] : "");
const name = (item) => { const v = value(item, "00100010"); return (v && v.Alphabetic) || ""; };

async function qido(path) {
  const response = await fetch(WEB + path, { headers: { Accept: "application/dicom+json" } });
  if (!response.ok) throw new Error((await response.json()).error || response.status);
  return response.json();
}

function translate() {
  const t = TEXT[state.lang];
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-i18n]").forEach((e) => { e.textContent = t[e.dataset.i18n]; });
  $("q").placeholder = t.search;
  $("lang").textContent = state.lang === "vi" ? "EN" : "VI";
  $("presets").replaceChildren(...Object.keys(PRESETS).map((key) => {
    const b = document.createElement("button");
    b.textContent = t.presets[key];
    b.onclick = () => { state.window = PRESETS[key]; show(); };
    return b;
  }));
}

async function search(event) {
  if (event) event.preventDefault();
  const q = $("q").value.trim();
  const filter = !q ? "" : /\d/.test(q) ? `&PatientID=${encodeURIComponent(q)}*`
                                       : `&PatientName=*${encodeURIComponent(q)}*&fuzzymatching=true`;
  try {
    const studies = await qido(`/studies?limit=50&includefield=00081030${filter}`);
    $("message").textContent = studies.length ? "" : TEXT[state.lang].none;
    $("studies").replaceChildren(...studies.map(studyItem));
  } catch (error) { $("message").textContent = `${TEXT[state.lang].error}: ${error.message}`; }
}

function studyItem(study) {
  const li = document.createElement("li");
  const date = String(value(study, "00080020")).replace(/(\d{4})(\d\d)(\d\d)/, "$3/$2/$1");
  li.innerHTML = "<b></b><small></small>";
  li.firstChild.textContent = name(study).replaceAll("^", " ");
  li.lastChild.textContent = [date, (study["00080061"]?.Value || []).join("/"),
                              value(study, "00081030")].filter(Boolean).join(" · ");
  li.onclick = () => openStudy(value(study, "0020000D"), li.firstChild.textContent);
  return li;
}

async function openStudy(studyUid, title) {
  $("studies").hidden = true; $("viewer").hidden = false; $("title").textContent = title;
  const series = await qido(`/studies/${studyUid}/series`);
  $("series").replaceChildren(...series.map((s) => {
    const img = document.createElement("img");
    const uid = value(s, "0020000E");
    img.src = `${WEB}/studies/${studyUid}/series/${uid}/thumbnail?viewport=64,64&quality=60`;
    img.onclick = () => openSeries(studyUid, uid, img);
    return img;
  }));
  if (series.length) openSeries(studyUid, value(series[0], "0020000E"), $("series").firstChild);
}

async function openSeries(studyUid, seriesUid, thumb) {
  document.querySelectorAll("#series img").forEach((i) => i.classList.toggle("on", i === thumb));
  const instances = await qido(`/studies/${studyUid}/series/${seriesUid}/instances`);
  instances.sort((a, b) => value(a, "00200013") - value(b, "00200013"));
  state.stack = instances.map((i) => ({
    url: value(i, "00081190"), sopClass: value(i, "00080016"), syntax: value(i, "00083002"),
  }));
  state.index = 0;
  show();
}

function imageUrl(entry, preview) {
  const size = Math.round(Math.min(innerWidth, 1024) * (devicePixelRatio || 1));
  const params = new URLSearchParams({ viewport: preview ? "256,256" : `${size},${size}`,
                                       quality: preview ? "40" : "85" });
  if (state.window) params.set("window", state.window);
  return `${entry.url}/rendered?${params}`;
}

function show() {
  const entry = state.stack[state.index];
  if (!entry) return;
  const video = VIDEO.test(entry.syntax), pdf = entry.sopClass === PDF;
  $("image").hidden = video || pdf; $("video").hidden = !video; $("pdf").hidden = !pdf;
  $("position").textContent = `${state.index + 1} / ${state.stack.length}`;
  if (video) { $("video").src = `${entry.url}/rendered`; return; }
  if (pdf) { $("pdf").href = `${entry.url}/rendered`; return; }
  const full = imageUrl(entry, false);
  if ($("lowbw").checked) {
    $("image").src = imageUrl(entry, true);  // small lossy preview first, then the full image
    const loader = new Image();
    loader.onload = () => { if (state.stack[state.index] === entry) $("image").src = full; };
    loader.src = full;
  } else {
    $("image").src = full;
  }
  [1, -1].forEach((step) => {  // warm the neighbours so swiping feels instant
    const next = state.stack[state.index + step];
    if (next && !VIDEO.test(next.syntax)) new Image().src = imageUrl(next, $("lowbw").checked);
  });
}

function step(delta) {
  state.index = Math.max(0, Math.min(state.stack.length - 1, state.index + delta));
  show();
}

let touchY = null;
$("stage").addEventListener("touchstart", (e) => { touchY = e.touches[0].clientY; });
$("stage").addEventListener("touchmove", (e) => {
  const dy = e.touches[0].clientY - touchY;
  if (Math.abs(dy) > 12) { step(dy > 0 ? -1 : 1); touchY = e.touches[0].clientY; }
});
$("stage").addEventListener("wheel", (e) => { e.preventDefault(); step(Math.sign(e.deltaY)); });
document.addEventListener("keydown", (e) => {
  if (e.key === "ArrowDown" || e.key === "ArrowRight") step(1);
  if (e.key === "ArrowUp" || e.key === "ArrowLeft") step(-1);
});
$("back").onclick = () => { $("viewer").hidden = true; $("studies").hidden = false; };
$("search").onsubmit = search;
$("lowbw").checked = localStorage.lowbw === "1";
$("lowbw").onchange = () => { localStorage.lowbw = $("lowbw").checked ? "1" : "0"; show(); };
$("lang").onclick = (e) => {
  e.preventDefault(); state.lang = state.lang === "vi" ? "en" : "vi";
  localStorage.lang = state.lang; translate();
};
translate();
const study = new URLSearchParams(location.search).get("StudyInstanceUID");
if (study) openStudy(study, ""); else search();
