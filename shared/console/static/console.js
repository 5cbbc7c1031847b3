// Mekong console: sends forms and buttons marked data-api to the JSON API (with the session's
// CSRF token), shows the answer, refreshes the htmx lists, and drives the sign-in form.
// No UI text here: messages come from the page (body[data-messages]), in its language.
"use strict";

(() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const messages = () => JSON.parse(document.body.dataset.messages || "{}");
  const here = () => location.pathname + location.search;

  function toSignIn() {
    location.assign("/login?next=" + encodeURIComponent(here()));
  }

  async function call(method, url, body) {
    const headers = { "X-CSRF-Token": csrf(), Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined && method !== "GET") {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      return { ok: false, status: 0, data: { error: messages().network } };
    }
    let data = {};
    try {
      data = await response.json();
    } catch {
      data = {};
    }
    if (response.status === 401 && url !== "/api/auth/login") toSignIn();
    return { ok: response.ok, status: response.status, data };
  }

  // --- form values as JSON -------------------------------------------------------------
  function value(element) {
    const type = element.dataset.type || "";
    const text = element.value.trim();
    if (type === "int") return text === "" ? null : Number(text);
    if (type === "date") return text === "" ? null : new Date(text + "T23:59:59").getTime() / 1000;
    return element.value;
  }

  function formBody(form) {
    const body = {};
    for (const element of form.elements) {
      if (!element.name || element.disabled) continue;
      if (element.type === "checkbox" && element.dataset.type === "list") {
        body[element.name] = body[element.name] || [];
        if (element.checked) body[element.name].push(element.value);
      } else if (element.type === "checkbox") {
        body[element.name] = element.checked;
      } else if (element.tagName !== "BUTTON") {
        body[element.name] = value(element);
      }
    }
    return body;
  }

  function fillUrl(template, body) {
    return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(body[name] ?? ""));
  }

  function mismatch(form) {
    for (const element of form.querySelectorAll("[data-match]")) {
      if (element.value !== form.elements[element.dataset.match].value) return true;
    }
    return false;
  }

  // --- showing answers ------------------------------------------------------------------
  function outputOf(trigger) {
    return trigger.querySelector("[data-result]") || trigger.parentElement.querySelector("[data-result]");
  }

  function show(output, ok, text, secret) {
    if (!output) return;
    output.className = "result " + (ok ? "ok" : "error");
    output.textContent = text || "";
    if (secret) {
      const code = document.createElement("code");
      code.textContent = secret;
      output.append(" ", code);
    }
  }

  function answerText(trigger, reply) {
    const kind = trigger.dataset.kind || "";
    if (kind === "echo" && reply.ok && reply.data.ok) {
      return messages().echo_ok.replace("{ms}", reply.data.ms);
    }
    if (kind === "echo" || kind === "message") return reply.data.error || reply.data.message;
    return reply.ok ? messages().done : reply.data.error || messages().network;
  }

  function succeeded(trigger, reply) {
    const kind = trigger.dataset.kind || "";
    return kind === "echo" || kind === "message" ? reply.ok && reply.data.ok !== false : reply.ok;
  }

  function after(trigger) {
    const then = trigger.dataset.then || "refresh";
    if (then === "refresh") htmx.trigger(document.body, "refresh");
    else if (then.startsWith("/")) location.assign(then);
  }

  // --- forms and buttons marked data-api ------------------------------------------------
  async function send(trigger, body) {
    const output = outputOf(trigger);
    const method = trigger.dataset.method || "POST";
    const url = fillUrl(trigger.dataset.api, body || {});
    const reply = await call(method, url, method === "GET" ? undefined : body);
    const ok = succeeded(trigger, reply);
    const secret = ok && trigger.dataset.show ? reply.data[trigger.dataset.show] : "";
    show(output, ok, answerText(trigger, reply), secret);
    if (ok) after(trigger);
    return reply;
  }

  async function withBusy(element, work) {
    const buttons = element.tagName === "BUTTON" ? [element] : element.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      return await work();
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id === "login") {
      event.preventDefault();
      withBusy(form, () => signIn(form));
    } else if (form.dataset.api) {
      event.preventDefault();
      if (mismatch(form)) return show(outputOf(form), false, messages().mismatch);
      withBusy(form, () => send(form, formBody(form)));
    }
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-api]");
    if (!button) return;
    event.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    const body = button.dataset.body ? JSON.parse(button.dataset.body) : {};
    withBusy(button, () => send(button, body));
  });

  // --- sign-in ---------------------------------------------------------------------------
  async function newChallenge(form) {
    const reply = await call("GET", "/api/auth/challenge");
    if (!reply.ok) return;
    form.querySelector("#challenge").hidden = false;
    form.querySelector("#challenge-image").src = reply.data.image;
    form.elements.challenge_id.value = reply.data.challenge_id;
    form.elements.challenge_answer.value = "";
    form.elements.challenge_answer.required = true;
  }

  function signInError(reply) {
    const text = messages();
    if (reply.status === 0) return text.network;
    if (reply.status === 429) return text.rate_limited;
    if (reply.data.challenge_required) return text.challenge;
    if (reply.data.totp_required) return text.totp;
    if (reply.status === 401) return text.wrong_login;
    return reply.data.error;
  }

  async function signIn(form) {
    const reply = await call("POST", "/api/auth/login", formBody(form));
    const next = form.dataset.next || "/";
    if (reply.ok) {
      location.assign(reply.data.next ? "/login/next?next=" + encodeURIComponent(next) : next);
      return;
    }
    show(outputOf(form), false, signInError(reply));
    const challenging = !form.querySelector("#challenge").hidden;
    if (reply.data.challenge_required || challenging) await newChallenge(form);
    if (reply.data.totp_required) {
      form.querySelector("#totp-row").hidden = false;
      form.elements.totp.focus();
    }
  }

  // --- live pages: an element with data-events listens to the node's Server-Sent Events and
  // gets an htmx "changed" event for each (the element's hx-trigger re-reads it) -------------
  function listen(element) {
    const source = new EventSource(element.dataset.events);
    source.addEventListener("changed", () => htmx.trigger(element, "changed"));
    window.addEventListener("pagehide", () => source.close());
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-events]").forEach(listen);
  });

  // --- htmx: a session that ended sends the user to sign in --------------------------------
  document.addEventListener("htmx:responseError", (event) => {
    if (event.detail.xhr.status === 401) toSignIn();
  });
})();
