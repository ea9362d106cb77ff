// Content admin: plain JavaScript, no build step, no third-party code.
// Every text that comes from the server (answers, examples, phrases, names) is rendered with
// textContent, never as HTML markup.
"use strict";

(function () {
  const OPS = {add: "Thêm", edit: "Sửa", remove: "Xoá", add_topic: "Chủ đề mới"};
  const STATES = {queued: "Đang chờ (queued)", validating: "Đang kiểm tra (validating)",
    training: "Đang huấn luyện (training)", testing: "Đang kiểm thử (testing)", loading: "Đang nạp (loading)",
    done: "Đã xuất bản (done)", refused: "Bị từ chối (refused)", failed: "Lỗi (failed)"};
  const STEP_STATES = {waiting: "chờ", running: "đang chạy", done: "xong", failed: "lỗi", refused: "từ chối"};
  const STATUS = {active: "đang hoạt động", suspended: "bị đình chỉ", revoked: "bị thu hồi"};
  const PRIORITIES = [["emergency", "khẩn cấp (emergency)"], ["at_risk", "có nguy cơ (at_risk)"]];

  const S = {me: null, csrf: null, view: "answers", answer: null, answers: [], intent: null,
    job: null, pollTimer: null, phrasesVersion: 0, csv: null};

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "value") node.value = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function fmtTime(iso) {
    if (!iso) return "";
    try { return new Date(iso).toLocaleString("vi-VN"); } catch (e) { return iso; }
  }

  let noticeTimer = null;
  function notice(text, kind) {
    const box = $("notice");
    box.textContent = text;
    box.className = kind || "";
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 4000);
  }

  async function api(method, path, body, raw) {
    const headers = {};
    const init = {method, headers, credentials: "same-origin"};
    if (method !== "GET") headers["X-CSRF-Token"] = S.csrf || "";
    if (raw !== undefined) {
      headers["Content-Type"] = "text/csv";
      init.body = raw;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.status === 401) { showLogin(); }
    return {status: response.status, ok: response.ok, data: data || {}};
  }

  function renderDiff(pre, diff) {
    clear(pre);
    const lines = (diff || "").split("\n");
    if (!diff) { pre.append(el("span", {class: "hunk", text: "(không có thay đổi — no change)"})); return; }
    for (const line of lines) {
      let cls = "";
      if (line.startsWith("+++") || line.startsWith("---") || line.startsWith("@@")) cls = "hunk";
      else if (line.startsWith("+")) cls = "add";
      else if (line.startsWith("-")) cls = "del";
      pre.append(el("span", {class: cls || null, text: line}), cls ? "" : "\n");
    }
  }

  // ---------------------------------------------------------------- sign-in

  function showLogin() {
    $("login-view").hidden = false;
    $("topbar").hidden = true;
    for (const v of document.querySelectorAll(".view")) v.hidden = true;
    clearInterval(S.pollTimer);
  }

  async function start() {
    const r = await api("GET", "/api/me");
    if (r.status !== 200) { showLogin(); return; }
    signedIn(r.data);
  }

  function signedIn(data) {
    S.me = data.user;
    S.csrf = data.csrf_token;
    $("login-view").hidden = true;
    $("topbar").hidden = false;
    $("me").textContent = `${S.me.display_name || S.me.name} · ${S.me.role}`;
    const allowed = S.me.role === "content_editor" || S.me.role === "admin";
    $("forbidden").hidden = allowed;
    if (!allowed) { for (const v of document.querySelectorAll(".view")) v.hidden = true; return; }
    show(S.view);
  }

  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    const r = await api("POST", "/api/login", {username: $("login-user").value, password: $("login-password").value});
    if (r.status !== 200) {
      $("login-error").textContent = r.data.error || "Không đăng nhập được.";
      return;
    }
    $("login-password").value = "";
    signedIn(r.data);
  });

  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/logout");
    S.me = null; S.csrf = null;
    showLogin();
  });

  // ---------------------------------------------------------------- views

  function show(view) {
    S.view = view;
    for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === view);
    for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== `view-${view}`;
    if (view === "answers") loadAnswers();
    if (view === "examples") { loadIntents(); loadModels(); resumePublish(); }
    if (view === "safety") { loadPhrases(); loadPhraseHistory(); }
    if (view === "agencies") loadAgencies();
  }
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));

  // ---------------------------------------------------------------- answers

  async function loadAnswers() {
    const q = $("answer-search").value.trim();
    const r = await api("GET", "/api/content/responses" + (q ? `?q=${encodeURIComponent(q)}` : ""));
    if (!r.ok) { notice(r.data.error || "Lỗi tải câu trả lời", "error"); return; }
    S.answers = r.data.responses || [];
    $("answer-count").textContent = `${S.answers.length} câu trả lời`;
    const list = $("answer-list");
    clear(list);
    for (const a of S.answers) {
      const first = (a.text || "").split("\n")[0];
      const li = el("li", {dataset: {key: a.key, lang: a.lang},
        class: S.answer && S.answer.key === a.key && S.answer.lang === a.lang ? "active" : null},
        el("span", {class: "key", text: a.key}), " ", el("span", {class: "badge", text: a.lang}),
        el("span", {class: "first", text: first}));
      li.addEventListener("click", () => openAnswer(a.key, a.lang));
      list.append(li);
    }
  }

  $("answer-search-form").addEventListener("submit", (event) => { event.preventDefault(); loadAnswers(); });

  async function openAnswer(key, lang) {
    const r = await api("GET", `/api/content/responses/${encodeURIComponent(key)}/${encodeURIComponent(lang)}`);
    if (!r.ok) { notice(r.data.error || "Lỗi", "error"); return; }
    S.answer = r.data;
    for (const li of $("answer-list").children) {
      li.classList.toggle("active", li.dataset.key === key && li.dataset.lang === lang);
    }
    $("answer-empty").hidden = true;
    $("answer-editor").hidden = false;
    $("answer-key").textContent = key;
    $("answer-lang").textContent = lang;
    $("answer-version").textContent = `phiên bản ${r.data.version} · ${r.data.updated_by || ""} · ${fmtTime(r.data.updated_at)}`;
    $("answer-placeholders").textContent = r.data.placeholders.length
      ? r.data.placeholders.map((p) => `{${p}}`).join(", ") : "không có (none)";
    $("answer-text").value = r.data.text;
    $("answer-error").textContent = "";
    $("answer-preview-box").hidden = true;
    $("answer-diff-box").hidden = true;
    updateLength();
    loadHistory();
  }

  function updateLength() {
    $("answer-length").textContent = `${$("answer-text").value.length} ký tự`;
  }
  $("answer-text").addEventListener("input", updateLength);

  async function previewAnswer() {
    if (!S.answer) return null;
    const r = await api("POST", "/api/content/preview",
      {key: S.answer.key, lang: S.answer.lang, text: $("answer-text").value});
    if (!r.ok) { $("answer-error").textContent = r.data.error || "Lỗi"; return null; }
    $("answer-error").textContent = r.data.error || "";
    $("answer-preview").textContent = r.data.preview.notification;
    $("answer-rendered").textContent = r.data.rendered;
    $("answer-preview-box").hidden = false;
    renderDiff($("answer-diff"), r.data.diff);
    $("answer-diff-box").hidden = false;
    return r.data;
  }
  $("answer-preview-btn").addEventListener("click", previewAnswer);

  $("answer-save").addEventListener("click", async () => {
    if (!S.answer) return;
    const {key, lang, version} = S.answer;
    const r = await api("PUT", `/api/content/responses/${encodeURIComponent(key)}/${encodeURIComponent(lang)}`,
      {text: $("answer-text").value, version});
    if (!r.ok) { $("answer-error").textContent = r.data.error || `Lỗi ${r.status}`; return; }
    $("answer-error").textContent = "";
    notice(`Đã lưu phiên bản ${r.data.version} — có hiệu lực ngay ở tin nhắn tiếp theo.`, "ok");
    renderDiff($("answer-diff"), r.data.diff);
    $("answer-diff-box").hidden = false;
    await openAnswer(key, lang);
    $("answer-diff-box").hidden = false;
    renderDiff($("answer-diff"), r.data.diff);
    loadAnswers();
  });

  async function loadHistory() {
    const {key, lang} = S.answer;
    const r = await api("GET", `/api/content/responses/${encodeURIComponent(key)}/${encodeURIComponent(lang)}/history`);
    const list = $("answer-history");
    clear(list);
    if (!r.ok) return;
    for (const v of r.data.versions) {
      const pre = el("pre", {class: "diff"});
      renderDiff(pre, v.diff);
      const li = el("li", {dataset: {version: v.version}},
        el("span", {class: "meta", text: `Phiên bản ${v.version} · ${v.author || "?"} · ${fmtTime(v.created_at)}` +
          (v.current ? " · đang dùng (current)" : "")}),
        v.current ? null : el("button", {type: "button", class: "link revert", text: "Khôi phục (revert)",
          on: {click: () => revertAnswer(v.version)}}),
        el("details", {}, el("summary", {text: "thay đổi (diff)"}), pre));
      list.append(li);
    }
  }

  async function revertAnswer(version) {
    const {key, lang} = S.answer;
    const r = await api("POST", `/api/content/responses/${encodeURIComponent(key)}/${encodeURIComponent(lang)}/revert`,
      {version});
    if (!r.ok) { notice(r.data.error || "Lỗi", "error"); return; }
    notice(`Đã khôi phục phiên bản ${version} (thành phiên bản ${r.data.version}).`, "ok");
    await openAnswer(key, lang);
    renderDiff($("answer-diff"), r.data.diff);
    $("answer-diff-box").hidden = false;
    loadAnswers();
  }

  // ---------------------------------------------------------------- examples

  async function loadIntents() {
    const r = await api("GET", "/api/content/intents");
    if (!r.ok) { notice(r.data.error || "Lỗi", "error"); return; }
    const list = $("intent-list");
    clear(list);
    const intents = [...r.data.intents].sort((a, b) => (b.topic - a.topic) || a.name.localeCompare(b.name));
    for (const it of intents) {
      const counts = it.examples_after !== it.examples ? `${it.examples} → ${it.examples_after}` : `${it.examples}`;
      const li = el("li", {dataset: {intent: it.name}, class: [it.new ? "new" : "", S.intent === it.name ? "active" : ""].join(" ").trim() || null},
        el("span", {class: "count", text: counts + (it.pending ? ` · ${it.pending} chờ` : "")}),
        el("span", {class: "key", text: it.name}));
      li.addEventListener("click", () => openIntent(it.name));
      list.append(li);
    }
    renderPending(r.data.pending || []);
  }

  function describe(change) {
    if (change.op === "add") return `${change.intent}: + “${change.text}”`;
    if (change.op === "remove") return `${change.intent}: − “${change.old_text}”`;
    if (change.op === "edit") return `${change.intent}: “${change.old_text}” → “${change.text}”`;
    const d = change.detail || {};
    return `${change.intent}: chủ đề mới “${d.title || ""}” (${(d.examples || []).length} câu hỏi mẫu)`;
  }

  function renderPending(changes) {
    const list = $("pending-list");
    clear(list);
    $("pending-empty").hidden = changes.length > 0;
    for (const c of changes) {
      list.append(el("li", {dataset: {id: c.id}},
        el("span", {class: "what"}, el("strong", {text: OPS[c.op] || c.op}), " ", describe(c),
          el("small", {text: ` · ${c.created_by || ""} · ${fmtTime(c.created_at)}`}),
          c.error ? el("span", {class: "stale", text: c.error}) : null),
        el("button", {type: "button", class: "link", text: "Bỏ (discard)", on: {click: () => discard(c.id)}})));
    }
  }

  async function discard(id) {
    const r = await api("DELETE", `/api/content/changes/${id}`);
    if (!r.ok) { notice(r.data.error || "Lỗi", "error"); return; }
    await loadIntents();
    if (S.intent) openIntent(S.intent);
  }

  async function openIntent(name) {
    const r = await api("GET", `/api/content/intents/${encodeURIComponent(name)}`);
    if (!r.ok) { notice(r.data.error || "Lỗi", "error"); return; }
    S.intent = name;
    $("topic-form").hidden = true;
    $("intent-detail").hidden = false;
    for (const li of $("intent-list").children) li.classList.toggle("active", li.dataset.intent === name);
    $("intent-name").textContent = name;
    $("intent-counts").textContent = `${r.data.count} câu hỏi khác nhau` +
      (r.data.count_after !== r.data.count ? ` → ${r.data.count_after} sau khi xuất bản` : "") +
      ` (cần ít nhất ${r.data.min_examples}); câu trả lời: ${r.data.answer_key}`;
    $("example-error").textContent = "";
    const list = $("example-list");
    clear(list);
    const shown = r.data.new ? r.data.drafted.map((t) => ({text: t, twin: null})) : r.data.examples;
    for (const ex of shown) {
      const li = el("li", {},
        el("span", {class: "text", text: ex.text}),
        ex.twin ? el("span", {class: "twin", text: `+ ${ex.twin}`}) : null,
        r.data.new ? null : el("button", {type: "button", class: "link", text: "Sửa", on: {click: () => editExample(ex.text)}}),
        r.data.new ? null : el("button", {type: "button", class: "link", text: "Xoá", on: {click: () => removeExample(ex.text)}}));
      list.append(li);
    }
  }

  async function draft(body, errorBox) {
    const r = await api("POST", "/api/content/changes", body);
    if (!r.ok) { $(errorBox).textContent = r.data.error || `Lỗi ${r.status}`; return false; }
    $(errorBox).textContent = "";
    notice("Đã lưu bản nháp; xuất bản để đưa vào mô hình.", "ok");
    await loadIntents();
    if (S.intent) await openIntent(S.intent);
    return true;
  }

  $("example-add-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("example-new").value.trim();
    if (!text || !S.intent) return;
    if (await draft({op: "add", intent: S.intent, text}, "example-error")) $("example-new").value = "";
  });

  async function editExample(old) {
    const text = window.prompt("Sửa câu hỏi mẫu (edit example):", old);
    if (text === null || text.trim() === "" || text.trim() === old) return;
    await draft({op: "edit", intent: S.intent, old_text: old, text: text.trim()}, "example-error");
  }

  async function removeExample(old) {
    if (!window.confirm(`Xoá câu hỏi mẫu “${old}”?`)) return;
    await draft({op: "remove", intent: S.intent, old_text: old}, "example-error");
  }

  $("topic-new-btn").addEventListener("click", () => {
    $("intent-detail").hidden = true;
    $("topic-form").hidden = false;
    $("topic-error").textContent = "";
  });
  $("topic-cancel").addEventListener("click", () => { $("topic-form").hidden = true; });
  $("topic-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {intent: $("topic-intent").value.trim(), title: $("topic-title").value,
      examples: $("topic-examples").value.split("\n").map((t) => t.trim()).filter((t) => t),
      answers: {vi: $("topic-answer-vi").value, en: $("topic-answer-en").value}};
    const r = await api("POST", "/api/content/topics", body);
    if (!r.ok) { $("topic-error").textContent = r.data.error || `Lỗi ${r.status}`; return; }
    $("topic-error").textContent = (r.data.warnings || []).join("\n");
    notice("Đã lưu chủ đề mới (bản nháp).", "ok");
    S.intent = body.intent;
    await loadIntents();
    await openIntent(body.intent);
  });

  // ---------------------------------------------------------------- publish

  $("publish-btn").addEventListener("click", async () => {
    const r = await api("POST", "/api/publish");
    if (r.status !== 202) {
      notice(r.data.error || `Lỗi ${r.status}`, "error");
      if (r.status === 409 && r.data.id) follow(r.data.id);
      return;
    }
    follow(r.data.id);
  });

  async function resumePublish() {
    const r = await api("GET", "/api/publish");
    if (!r.ok) return;
    if (r.data.active) follow(r.data.active);
    else if (r.data.jobs && r.data.jobs.length && !S.job) renderJob(r.data.jobs[0]);
  }

  function follow(id) {
    S.job = id;
    clearInterval(S.pollTimer);
    poll();
    S.pollTimer = setInterval(poll, 1000);
  }

  async function poll() {
    if (!S.job) return;
    const r = await api("GET", `/api/publish/${S.job}`);
    if (!r.ok) { clearInterval(S.pollTimer); return; }
    renderJob(r.data);
    if (["done", "refused", "failed"].includes(r.data.state)) {
      clearInterval(S.pollTimer);
      loadIntents();
      loadModels();
      if (r.data.state === "done") notice("Đã xuất bản: mô hình mới đang phục vụ.", "ok");
    }
  }

  function renderJob(job) {
    $("publish-status").hidden = false;
    $("publish-state").textContent = `#${job.id} · ${STATES[job.state] || job.state}`;
    const progress = job.progress || {};
    const percent = progress.percent || 0;
    $("publish-progress").value = percent;
    $("publish-percent").textContent = `${percent} %`;
    $("publish-detail").textContent = progress.detail || "";
    const steps = $("publish-steps");
    clear(steps);
    for (const step of progress.steps || []) {
      steps.append(el("li", {class: step.state, dataset: {step: step.name}},
        step.label, " ", el("span", {class: "state",
          text: `— ${STEP_STATES[step.state] || step.state}` + (step.seconds != null ? ` (${step.seconds} s)` : "") +
            (step.detail ? ` · ${step.detail}` : "")})));
    }
    $("publish-error").textContent = job.error || "";
    renderGate(job.gate);
  }

  function pct(x) { return x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)} %`; }
  function num(x) { return x === null || x === undefined ? "—" : Number(x).toFixed(3); }

  function renderGate(gate) {
    const box = $("publish-gate");
    clear(box);
    box.hidden = !gate;
    if (!gate) return;
    const row = (label, c, s) => el("tr", {}, el("th", {text: label}), el("td", {text: c}), el("td", {text: s}));
    const c = gate.candidate || {}, s = gate.serving || {};
    box.append(
      el("p", {class: gate.passed ? "pass" : "fail",
        text: gate.passed ? "Đạt kiểm thử NLU (gate passed)" : "Không đạt kiểm thử NLU (gate failed)"}),
      el("table", {},
        el("tr", {}, el("th", {text: ""}), el("th", {text: `mô hình mới (${gate.candidate_model || "candidate"})`}),
          el("th", {text: `đang phục vụ (${gate.serving_model || "serving"})`})),
        row("risk recall", num(c.risk_recall), num(s.risk_recall)),
        row("false escalation", pct(c.false_escalation_rate), pct(s.false_escalation_rate)),
        row("macro F1", num(c.macro_f1), num(s.macro_f1))),
      el("p", {class: "muted", text: `Yêu cầu risk recall ≥ ${num(gate.required_risk_recall)}`}));
    for (const reason of gate.reasons || []) box.append(el("p", {class: "fail", text: reason}));
  }

  async function loadModels() {
    const r = await api("GET", "/api/publish/models");
    const list = $("model-list");
    clear(list);
    if (!r.ok) return;
    for (const m of r.data.models) {
      list.append(el("li", {dataset: {model: m.name}},
        el("span", {text: m.name}),
        el("small", {text: `${(m.size_bytes / 1e6).toFixed(1)} MB · ${fmtTime(m.modified_at)}` +
          (m.gate ? ` · risk recall ${num(m.gate.risk_recall)}` : "")}),
        m.serving ? el("span", {class: "serving", text: "đang phục vụ (serving)"})
          : el("button", {type: "button", class: "link", text: "Quay lại mô hình này (roll back)",
            on: {click: () => rollback(m.name)}})));
    }
  }

  async function rollback(name) {
    if (!window.confirm(`Nạp lại mô hình ${name}?`)) return;
    const r = await api("POST", "/api/publish/rollback", {model: name});
    if (!r.ok) { notice(r.data.error || "Lỗi", "error"); return; }
    notice(`Đang phục vụ ${name}.`, "ok");
    loadModels();
  }

  // ---------------------------------------------------------------- safety phrases

  function phraseRow(p) {
    const select = el("select", {class: "priority", "aria-label": "priority"});
    for (const [value, label] of PRIORITIES) {
      select.append(el("option", {value, text: label, selected: p.priority === value}));
    }
    return el("tr", {},
      el("td", {}, el("input", {class: "phrase", value: p.phrase || "", "aria-label": "phrase"})),
      el("td", {}, select),
      el("td", {}, el("input", {class: "reason", value: p.reason || "", "aria-label": "reason"})),
      el("td", {}, el("button", {type: "button", class: "link", text: "Xoá",
        on: {click: (event) => event.target.closest("tr").remove()}})));
  }

  function draftPhrases() {
    return [...$("phrase-rows").querySelectorAll("tr")].map((tr) => ({
      phrase: tr.querySelector(".phrase").value.trim(), priority: tr.querySelector(".priority").value,
      reason: tr.querySelector(".reason").value.trim()})).filter((p) => p.phrase || p.reason);
  }

  async function loadPhrases() {
    const r = await api("GET", "/api/content/safety-phrases");
    if (!r.ok) { notice(r.data.error || "Lỗi", "error"); return; }
    S.phrasesVersion = r.data.version;
    $("phrases-version").textContent = `phiên bản ${r.data.version} · ${r.data.count} cụm từ`;
    const body = $("phrase-rows");
    clear(body);
    for (const p of r.data.phrases) body.append(phraseRow(p));
    $("phrases-error").textContent = "";
  }

  $("phrase-add").addEventListener("click", () => {
    const row = phraseRow({phrase: "", priority: "at_risk", reason: ""});
    $("phrase-rows").prepend(row);
    row.querySelector(".phrase").focus();
  });

  $("phrases-save").addEventListener("click", async () => {
    const r = await api("PUT", "/api/content/safety-phrases", {phrases: draftPhrases(), version: S.phrasesVersion});
    if (!r.ok) { $("phrases-error").textContent = r.data.error || `Lỗi ${r.status}`; return; }
    notice(r.data.unchanged ? "Không có thay đổi." :
      `Đã lưu phiên bản ${r.data.version}: +${r.data.added.length} −${r.data.removed.length} ~${r.data.changed.length}`, "ok");
    loadPhrases();
    loadPhraseHistory();
  });

  async function check(draft) {
    const body = {text: $("check-text").value};
    if (draft) body.phrases = draftPhrases();
    const r = await api("POST", "/api/content/safety-check", body);
    const out = $("check-result");
    if (!r.ok) { out.className = "result error"; out.textContent = r.data.error || "Lỗi"; return; }
    if (r.data.escalate) {
      out.className = "result escalate";
      out.textContent = `Chuyển tư vấn viên: ${r.data.priority} — ${r.data.reason} (khớp: ${r.data.matched.join(", ")})`;
    } else {
      out.className = "result calm";
      out.textContent = "Không khớp cụm từ nào (no escalation).";
    }
  }
  $("check-saved").addEventListener("click", () => check(false));
  $("check-draft").addEventListener("click", () => check(true));

  async function loadPhraseHistory() {
    const r = await api("GET", "/api/content/safety-phrases/history");
    const list = $("phrases-history");
    clear(list);
    if (!r.ok) return;
    const describeList = (items) => items.map((p) => p.phrase).join(", ");
    for (const v of r.data.versions) {
      list.append(el("li", {},
        el("span", {class: "meta", text: `Phiên bản ${v.version} · ${v.author || "?"} · ${fmtTime(v.at)} · ${v.count} cụm từ` +
          (v.reverted_to !== null && v.reverted_to !== undefined ? ` · khôi phục bản ${v.reverted_to}` : "")}),
        el("button", {type: "button", class: "link", text: "Khôi phục bản này", on: {click: () => revertPhrases(v.version)}}),
        v.version === 1 ? el("button", {type: "button", class: "link", text: "Khôi phục bản trước đó (version 0)",
          on: {click: () => revertPhrases(0)}}) : null,
        el("div", {class: "muted", text: [v.added.length ? `+ ${describeList(v.added)}` : "",
          v.removed.length ? `− ${describeList(v.removed)}` : "",
          v.changed.length ? `~ ${v.changed.map((c) => c.phrase).join(", ")}` : ""].filter((x) => x).join(" · ")})));
    }
  }

  async function revertPhrases(version) {
    const r = await api("POST", "/api/content/safety-phrases/revert", {version});
    if (!r.ok) { notice(r.data.error || "Lỗi", "error"); return; }
    notice(`Đã khôi phục danh sách phiên bản ${version}.`, "ok");
    loadPhrases();
    loadPhraseHistory();
  }

  // ---------------------------------------------------------------- agencies

  async function loadAgencies() {
    const q = $("agency-search").value.trim();
    const r = await api("GET", "/api/agencies" + (q ? `?q=${encodeURIComponent(q)}` : ""));
    if (!r.ok) return;
    $("agency-count").textContent = `${r.data.matched} / ${r.data.total} doanh nghiệp` + (r.data.truncated ? " (đã cắt bớt)" : "");
    const body = $("agency-rows");
    clear(body);
    for (const a of r.data.agencies) {
      body.append(el("tr", {},
        el("td", {text: a.name}), el("td", {text: a.licence_number}),
        el("td", {class: `status-${a.status}`, text: STATUS[a.status] || a.status}),
        el("td", {text: a.licensed_on || ""}), el("td", {text: a.status_changed_on || ""})));
    }
  }
  $("agency-search-form").addEventListener("submit", (event) => { event.preventDefault(); loadAgencies(); });

  $("agency-file").addEventListener("change", () => { S.csv = null; $("agency-apply").disabled = true; $("agency-plan").hidden = true; });

  async function readFile() {
    const file = $("agency-file").files[0];
    if (!file) { $("agency-error").textContent = "Chọn tệp CSV trước (choose a CSV file)."; return null; }
    return await file.arrayBuffer();
  }

  $("agency-dry-run").addEventListener("click", async () => {
    const data = await readFile();
    if (!data) return;
    const r = await api("POST", "/api/agencies/import?dry_run=1", undefined, data);
    const plan = $("agency-plan");
    clear(plan);
    if (!r.ok) {
      $("agency-error").textContent = r.data.row ? `Dòng ${r.data.row}: ${r.data.error} — không có gì thay đổi.` : (r.data.error || `Lỗi ${r.status}`);
      plan.hidden = true;
      $("agency-apply").disabled = true;
      return;
    }
    $("agency-error").textContent = "";
    S.csv = data;
    const section = (title, items, fmt) => {
      plan.append(el("h3", {text: `${title}: ${items.length}`}));
      const ul = el("ul", {});
      for (const item of items.slice(0, 100)) ul.append(el("li", {text: fmt(item)}));
      if (items.length > 100) ul.append(el("li", {text: `… và ${items.length - 100} mục khác`}));
      plan.append(ul);
    };
    section("Thêm (added)", r.data.added, (a) => `${a.name} (${a.licence_number}, ${STATUS[a.status] || a.status})`);
    section("Thay đổi (changed)", r.data.changed, (c) => `${c.name} (${c.licence_number}): ` +
      Object.entries(c.changes).map(([f, [a, b]]) => `${f}: ${a ?? "—"} → ${b ?? "—"}`).join("; "));
    section("Bỏ khỏi danh sách (removed)", r.data.removed, (a) => `${a.name} (${a.licence_number})`);
    plan.hidden = false;
    $("agency-apply").disabled = false;
  });

  $("agency-apply").addEventListener("click", async () => {
    if (!S.csv) return;
    const r = await api("POST", "/api/agencies/import", undefined, S.csv);
    if (!r.ok) { $("agency-error").textContent = r.data.row ? `Dòng ${r.data.row}: ${r.data.error}` : (r.data.error || "Lỗi"); return; }
    notice(`Đã nhập: +${r.data.added.length} ~${r.data.changed.length} −${r.data.removed.length}`, "ok");
    S.csv = null;
    $("agency-apply").disabled = true;
    $("agency-plan").hidden = true;
    loadAgencies();
  });

  start();
})();
