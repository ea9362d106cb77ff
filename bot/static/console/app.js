// Counselor console: plain JavaScript, no build step, no third-party code.
// Every piece of text that comes from a person or from the server is rendered with textContent
// (never as HTML markup), so a message such as "<img src=x onerror=...>" shows as text.
"use strict";

(function () {
  const PRIORITY = {emergency: "Khẩn cấp", at_risk: "Có nguy cơ", request: "Yêu cầu"};
  const STATE = {queued: "Đang chờ", assigned: "Đang xử lý", closed: "Đã đóng", bot: "Bot"};
  const CHANNEL = {messenger: "Messenger", zalo: "Zalo"};
  const CENTER = {hanoi: "Hà Nội", danang: "Đà Nẵng", angiang: "An Giang"};
  const AUTHOR = {user: "Người dùng", bot: "Bot", counselor: "Tư vấn viên", system: "Hệ thống"};
  const STATUS = {pending: "đang chờ gửi", sending: "đang gửi", sent: "đã gửi", failed: "GỬI LỖI", done: "", ignored: ""};
  const OUTCOMES = [
    ["information", "Cung cấp thông tin (information)"],
    ["anti_trafficking_information", "Thông tin phòng, chống mua bán người"],
    ["referral_police", "Chuyển tuyến: Công an (police)"],
    ["referral_border_guard", "Chuyển tuyến: Bộ đội Biên phòng (border guard)"],
    ["referral_ngo", "Chuyển tuyến: Tổ chức phi chính phủ (NGO)"],
    ["referral_social_affairs", "Chuyển tuyến: Cơ quan xã hội (social affairs)"],
    ["referral_health", "Chuyển tuyến: Y tế (health)"],
    ["referral_justice", "Chuyển tuyến: Tư pháp (justice)"],
    ["psychological_counseling", "Tư vấn tâm lý (psychological counseling)"],
  ];
  // What bot/geo.py resolved a location to, as label and text (values are data, shown as text).
  const RESOLVED = [
    ["Tóm tắt (summary)", (r) => r.summary_vi || (r.summary && r.summary.vi) || r.summary],
    ["Địa điểm gần nhất (place)", (r) => r.place ? r.place + (r.distance_km != null ? ` (${r.distance_km} km)` : "") : ""],
    ["Tỉnh/thành mới (province)", (r) => r.province],
    ["Tỉnh/thành cũ (old province)", (r) => r.old_province && r.old_province !== r.province ? r.old_province : ""],
    ["Quốc gia (country)", (r) => (r.country_name && r.country_name.vi) || r.country],
    ["Ở nước ngoài (abroad)", (r) => r.in_vietnam === false ? "CÓ — ngoài Việt Nam" : ""],
    ["Biên giới (border)", (r) => r.border ? `sát biên giới ${r.border.country} (${r.border.distance_km} km)` +
        (r.border.gate ? `; ${r.border.gate} ${r.border.gate_distance_km} km` : "") : ""],
    ["Trung tâm khu vực (center)", (r) => r.center ? (CENTER[r.center] || r.center) : ""],
    ["Chuyển tuyến gợi ý (referral)", (r) => (r.referral && (r.referral.vi || r.referral.en)) || r.referral],
  ];

  const S = {
    me: null, csrf: null, queue: [], queueFetchedAt: 0, conv: null, ws: null, wsRetry: 0,
    counselors: [], canned: [], auditBefore: null, refreshTimer: null, view: "queue",
  };

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
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function show(node, visible) { node.hidden = !visible; }

  function fmtDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600);
    const m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (d) return `${d} ngày ${h} giờ`;
    if (h) return `${h} giờ ${m} phút`;
    if (m) return `${m} phút ${s}s`;
    return `${s}s`;
  }

  function fmtTime(iso) {
    if (!iso) return "";
    try {
      return new Date(iso).toLocaleString("vi-VN", {timeZone: "Asia/Ho_Chi_Minh", hour12: false});
    } catch (e) { return iso; }
  }

  function fmtValue(value) {
    if (value === null || value === undefined || value === "") return "";
    if (typeof value === "boolean") return value ? "có" : "không";
    if (Array.isArray(value)) return value.map(fmtValue).filter(Boolean).join(", ");
    if (typeof value === "object") return Object.values(value).map(fmtValue).filter(Boolean).join(" · ");
    return String(value);
  }

  let noticeTimer = null;
  function notify(text, kind) {
    const box = $("notice");
    box.textContent = text;
    box.className = kind || "info";
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 9000 : 5000);
  }

  async function api(method, path, body) {
    const headers = {"Accept": "application/json"};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && S.csrf) headers["X-CSRF-Token"] = S.csrf;
    let response;
    try {
      response = await fetch(path, {method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body)});
    } catch (e) {
      return {status: 0, data: {error: "Không kết nối được máy chủ (network error)"}};
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (response.status === 401 && path !== "/api/login" && path !== "/api/me") signedOut();
    return {status: response.status, data: data || {}};
  }

  // ---------------------------------------------------------------- sign-in

  async function boot() {
    bindEvents();
    const {status, data} = await api("GET", "/api/me");
    if (status === 200) start(data); else showLogin();
  }

  function showLogin() {
    show($("login-view"), true);
    show($("console-view"), false);
    show($("supervisor-view"), false);
    show($("topbar"), false);
    $("login-user").focus();
  }

  function signedOut() {
    if (!S.me) return;
    S.me = null; S.csrf = null;
    if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
    showLogin();
    notify("Phiên đăng nhập đã hết. Vui lòng đăng nhập lại.", "error");
  }

  async function login(event) {
    event.preventDefault();
    $("login-error").textContent = "";
    const {status, data} = await api("POST", "/api/login",
      {username: $("login-user").value.trim(), password: $("login-password").value});
    $("login-password").value = "";
    if (status === 200) { start(data); return; }
    $("login-error").textContent = status === 429
      ? "Đăng nhập sai quá nhiều lần. Vui lòng đợi 15 phút. (" + (data.error || "too many attempts") + ")"
      : status === 401 ? "Sai tên đăng nhập hoặc mật khẩu. (wrong name or password)"
      : (data.error || "Lỗi đăng nhập");
  }

  async function logout() {
    await api("POST", "/api/logout");
    S.me = null; S.csrf = null;
    if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
    S.conv = null;
    showLogin();
  }

  function start(data) {
    S.me = data.user; S.csrf = data.csrf_token;
    show($("login-view"), false);
    show($("topbar"), true);
    $("me").textContent = `${S.me.display_name || S.me.name} · ${S.me.role}` + (S.me.center ? ` · ${CENTER[S.me.center] || S.me.center}` : "");
    const casework = ["counselor", "supervisor", "admin"].includes(S.me.role);
    const oversight = ["supervisor", "admin"].includes(S.me.role);
    show($("nav-supervisor"), oversight);
    if (!casework) {
      show($("console-view"), false);
      show($("supervisor-view"), false);
      notify("Tài khoản biên tập nội dung không xem được hội thoại. (Content editors cannot read conversations.)", "info");
      return;
    }
    setView("queue");
    connectLive();
    loadQueue();
    loadCenters();
    loadCounselors();
  }

  // ---------------------------------------------------------------- live connection

  function connectLive() {
    if (!S.me) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/live`);
    S.ws = ws;
    ws.onopen = () => {
      S.wsRetry = 0;
      setLive(true);
      loadQueue();  // catch up on anything missed while disconnected
      if (S.conv) reloadConversationQuietly();
    };
    ws.onmessage = (msg) => {
      if (msg.data === "pong") return;
      let event;
      try { event = JSON.parse(msg.data); } catch (e) { return; }
      onEvent(event);
    };
    ws.onclose = (ev) => {
      setLive(false);
      if (S.ws !== ws || !S.me) return;
      if (ev.code === 4401) { signedOut(); return; }
      const delay = Math.min(10000, 500 * 2 ** S.wsRetry++);
      setTimeout(connectLive, delay);
    };
  }

  function setLive(on) {
    const node = $("live-state");
    node.textContent = on ? "● Trực tuyến" : "● Mất kết nối";
    node.className = "live " + (on ? "on" : "off");
  }

  function onEvent(event) {
    const cid = event.conversation_id;
    const current = S.conv && S.conv.conversation.id === cid;
    if (event.type === "queue" && S.view === "supervisor") scheduleSupervisorRefresh();
    if (event.type === "queue") {
      scheduleQueueRefresh();
      if (event.transferred_to && S.me && event.transferred_to === S.me.name) {
        notify(`Cuộc trò chuyện #${cid} được chuyển cho bạn bởi ${event.transferred_by || "?"}.`, "info");
      }
      if (current) {
        const conv = S.conv.conversation;
        conv.state = event.state; conv.priority = event.priority; conv.reason = event.reason;
        conv.assigned_to_id = event.assigned_to; conv.center = event.center || conv.center;
        if (event.assigned_to === null || event.assigned_to === undefined) conv.assigned_to = null;
        else if (S.me && event.assigned_to === S.me.id) conv.assigned_to = S.me.name;
        else if (event.transferred_to) conv.assigned_to = event.transferred_to;
        renderHeader();
      }
    } else if (event.type === "message") {
      const p = (event.message && event.message.payload) || {};
      event.message = Object.assign({location: p.location, link: p.link, attachments: p.attachments}, event.message);
      if (current) addMessage(event.message, true);
      if (current && event.message && event.message.location) reloadConversationQuietly();  // map + place
      markUnread(cid, event.message);
    } else if (event.type === "message_status") {
      if (current) updateMessageStatus(event.message_id, event.status, event.error);
      if (event.status === "failed") {
        notify(`Tin nhắn tới cuộc trò chuyện #${cid} không gửi được: ${event.error || "lỗi"}`, "error");
      }
    }
  }

  // ---------------------------------------------------------------- queue

  function scheduleQueueRefresh() {
    if (S.refreshTimer) return;
    S.refreshTimer = setTimeout(() => { S.refreshTimer = null; loadQueue(); }, 60);
  }

  async function loadQueue() {
    const {status, data} = await api("GET", "/api/queue");
    if (status !== 200) return;
    S.queue = data.conversations || [];
    S.queueFetchedAt = Date.now();
    renderQueue();
    if (S.conv) {
      const item = S.queue.find((c) => c.id === S.conv.conversation.id);
      if (item) {
        Object.assign(S.conv.conversation, {state: item.state, priority: item.priority, reason: item.reason,
          assigned_to: item.assigned_to, assigned_to_id: item.assigned_to_id, center: item.center});
        renderHeader();
      }
    }
  }

  const unread = new Set();

  function markUnread(cid, message) {
    if (!message || message.direction !== "in") return;
    if (S.conv && S.conv.conversation.id === cid) return;
    unread.add(cid);
    renderQueue();
  }

  function renderQueue() {
    const filter = $("center-filter").value;
    const elapsed = (Date.now() - S.queueFetchedAt) / 1000;
    const lists = {queued: $("queue-waiting"), assigned: $("queue-assigned")};
    clear(lists.queued); clear(lists.assigned);
    const counts = {queued: 0, assigned: 0};
    for (const c of S.queue) {
      if (filter && c.center !== filter && c.state === "queued") continue;
      const list = lists[c.state];
      if (!list) continue;
      counts[c.state]++;
      const mine = S.me && c.assigned_to === S.me.name;
      const item = el("li", {class: `q-item p-${c.priority || "request"}` + (mine ? " mine" : "") +
          (S.conv && S.conv.conversation.id === c.id ? " selected" : ""), dataset: {id: c.id}},
        el("button", {type: "button", class: "q-open", on: {click: () => openConversation(c.id)}},
          el("span", {class: `badge p-${c.priority}`, text: PRIORITY[c.priority] || c.priority || "—"}),
          el("span", {class: "q-reason", text: c.reason || ""}),
          unread.has(c.id) ? el("span", {class: "badge unread", text: "tin mới"}) : null,
          el("span", {class: "q-meta"},
            el("span", {class: "waiting", dataset: {base: c.waiting_s}, text: fmtDuration(c.waiting_s + elapsed)}),
            " · ", CHANNEL[c.channel] || c.channel, " · ", (c.language || "vi").toUpperCase(),
            " · ", CENTER[c.center] || c.center || "",
            c.where ? el("span", {class: "q-where", text: " · " + c.where}) : null,
            c.assigned_to ? el("span", {class: "q-holder", text: " · " + (mine ? "bạn" : c.assigned_to)}) : null,
            c.unreachable ? el("span", {class: "badge warn", text: "không liên lạc được"}) : null)));
      list.append(item);
    }
    $("count-waiting").textContent = counts.queued;
    document.title = (counts.queued ? `(${counts.queued}) ` : "") + "Tổng đài 111 · Bảng tư vấn";
    $("count-assigned").textContent = counts.assigned;
    show($("queue-waiting-empty"), counts.queued === 0);
    show($("queue-assigned-empty"), counts.assigned === 0);
  }

  function tickWaiting() {
    const elapsed = (Date.now() - S.queueFetchedAt) / 1000;
    for (const node of document.querySelectorAll(".waiting[data-base]")) {
      node.textContent = fmtDuration(Number(node.dataset.base) + elapsed);
    }
    if (S.conv) renderWindow();
  }

  async function loadCenters() {
    const {status, data} = await api("GET", "/api/centers");
    if (status !== 200) return;
    const box = $("centers");
    clear(box);
    for (const c of data.centers || []) {
      box.append(el("span", {class: "center " + (c.open ? "open" : "closed"),
        title: `${c.name}: ${c.hours_today}`, text: `${c.name} ${c.open ? "mở" : "đóng"}`}));
    }
  }

  async function loadCounselors() {
    const {status, data} = await api("GET", "/api/counselors");
    if (status !== 200) return;
    S.counselors = data.counselors || [];
    const select = $("transfer-to");
    clear(select);
    select.append(el("option", {value: "", text: "Chuyển cho…"}));
    for (const c of S.counselors) {
      if (S.me && c.name === S.me.name) continue;
      select.append(el("option", {value: c.name,
        text: `${c.display_name} (${c.role}${c.center ? ", " + (CENTER[c.center] || c.center) : ""})` +
              `${c.online ? " · trực tuyến" : ""} · ${c.active_chats} ca`}));
    }
  }

  // ---------------------------------------------------------------- conversation

  async function openConversation(id) {
    const {status, data} = await api("GET", `/api/conversations/${id}`);
    if (status !== 200) { notify(data.error || `Không mở được (#${id})`, "error"); return; }
    S.conv = data;
    unread.delete(id);
    document.body.classList.add("viewing-conv");
    show($("conv-placeholder"), false);
    show($("conv"), true);
    $("conv-error").textContent = "";
    $("reply-error").textContent = "";
    show($("close-form"), false);
    S.summaryDirty = false;
    renderConversation();
    renderQueue();
    loadCanned(id);
  }

  async function reloadConversationQuietly() {
    if (!S.conv) return;
    const id = S.conv.conversation.id;
    const {status, data} = await api("GET", `/api/conversations/${id}`);
    if (status === 200 && S.conv && S.conv.conversation.id === id) { S.conv = data; renderConversation(); }
  }

  function renderConversation() {
    renderHeader();
    renderSummary();
    renderLocations();
    const list = $("transcript");
    clear(list);
    for (const m of S.conv.messages) addMessage(m, false);
    list.lastElementChild && list.lastElementChild.scrollIntoView({block: "nearest"});
  }

  function holds() {
    const c = S.conv && S.conv.conversation;
    if (!c || !S.me) return false;
    return c.state === "assigned" && c.assigned_to === S.me.name;
  }

  function oversees() { return S.me && ["supervisor", "admin"].includes(S.me.role); }

  function renderHeader() {
    const c = S.conv.conversation;
    $("conv-title").textContent = `#${c.id} · ${CHANNEL[c.channel] || c.channel}`;
    const pr = $("conv-priority");
    pr.textContent = `${PRIORITY[c.priority] || c.priority || "—"} (${c.priority || "—"})`;
    pr.className = `badge p-${c.priority}`;
    $("conv-state").textContent = STATE[c.state] || c.state;
    $("conv-channel").textContent = CHANNEL[c.channel] || c.channel;
    $("conv-language").textContent = `Ngôn ngữ: ${(c.language || "vi").toUpperCase()}`;
    $("conv-center").textContent = `Trung tâm: ${CENTER[c.center] || c.center || "—"}`;
    $("conv-reason").textContent = c.reason ? `Lý do (reason): ${c.reason}` : "";
    $("conv-holder").textContent = c.assigned_to
      ? `Đang xử lý: ${c.assigned_to === (S.me && S.me.name) ? "bạn (you)" : c.assigned_to}` : "";
    const open = c.state === "queued" || c.state === "assigned";
    const canAct = open && (holds() || oversees());
    show($("btn-take"), c.state === "queued");
    for (const id of ["btn-transfer", "transfer-to", "btn-release", "btn-close-open"]) $(id).disabled = !canAct;
    $("btn-send").disabled = !canAct;
    for (const node of $("summary-form").querySelectorAll("input, select, textarea, button")) node.disabled = !canAct;
    const canTriage = c.state === "queued" || canAct;
    for (const node of $("triage-form").querySelectorAll("input, select, button")) node.disabled = !canTriage;
    $("btn-location-link").disabled = !canAct;
    $("reply-text").disabled = !canAct;
    $("reply-text").placeholder = canAct ? "Nhập tin trả lời… (reply)"
      : c.state === "queued" ? "Nhận cuộc trò chuyện để trả lời (take it to reply)"
      : open ? "Một tư vấn viên khác đang xử lý" : "Cuộc trò chuyện không còn trong hàng chờ";
    $("triage-priority").value = c.priority || "request";
    if (document.activeElement !== $("triage-reason")) $("triage-reason").value = c.reason || "";
    renderWindow();
  }

  function renderWindow() {
    const w = S.conv.window || {};
    const node = $("window");
    let text;
    if (w.unreachable) {
      text = "Không liên lạc được người này cho tới khi họ nhắn lại (unreachable).";
    } else if (!w.open) {
      text = "Đã hết thời hạn trả lời của nền tảng (reply window closed). Chờ người dùng nhắn lại.";
    } else {
      const left = Math.max(0, (Date.parse(w.human_closes_at) - Date.now()) / 1000);
      const mode = w.mode === "human_agent" ? " — đang dùng thẻ HUMAN_AGENT (sau 24 giờ)" : "";
      text = `Còn ${fmtDuration(left)} để trả lời qua ${CHANNEL[w.channel] || w.channel}` +
             ` (đến ${fmtTime(w.human_closes_at)})${mode}.`;
      if (left < 2 * 3600) text = "⚠ Sắp hết hạn trả lời! " + text;
    }
    node.textContent = text;
    const warn = !w.open || w.unreachable || (Date.parse(w.human_closes_at) - Date.now()) < 2 * 3600 * 1000;
    node.className = "window" + (warn ? " warn" : "");
  }

  function renderSummary(force) {
    if (S.summaryDirty && !force) return;  // never overwrite what the counselor is typing
    S.summaryDirty = false;
    const s = S.conv.summary || {};
    $("sum-safe_now").value = s.safe_now === true ? "true" : s.safe_now === false ? "false" : "";
    for (const key of ["where", "with_whom", "wants", "notes"]) $("sum-" + key).value = s[key] || "";
    $("sum-age").value = s.age === null || s.age === undefined ? "" : s.age;
    $("summary-saved").textContent = `Ngôn ngữ ${(s.language || "vi").toUpperCase()} · ${CHANNEL[s.channel] || s.channel}`;
  }

  function renderLocations() {
    const list = $("locations");
    clear(list);
    const locations = S.conv.locations || [];
    show($("locations-box"), locations.length > 0);
    for (const loc of locations) {
      const facts = el("dl", {class: "resolved"});
      const r = loc.resolved || {};
      for (const [label, pick] of RESOLVED) {
        let value = "";
        try { value = fmtValue(pick(r)); } catch (e) { value = ""; }
        if (!value) continue;
        facts.append(el("dt", {text: label}), el("dd", {text: value}));
      }
      facts.append(el("dt", {text: "Toạ độ"}),
        el("dd", {text: `${loc.lat.toFixed(5)}, ${loc.lon.toFixed(5)}` +
          (loc.accuracy_m ? ` (±${Math.round(loc.accuracy_m)} m)` : "") + ` · ${loc.source} · ${fmtTime(loc.created_at)}`}));
      if (loc.label) facts.append(el("dt", {text: "Tên do người dùng gửi"}), el("dd", {text: loc.label}));
      list.append(el("li", {class: "location", dataset: {lat: loc.lat, lon: loc.lon}},
        el("iframe", {class: "map", src: loc.map.embed_url, title: "Bản đồ vị trí (map)", loading: "lazy",
          referrerpolicy: "strict-origin", sandbox: "allow-scripts allow-same-origin"}),
        el("a", {href: loc.map.link_url, target: "_blank", rel: "noopener noreferrer",
          text: "Mở bản đồ lớn (open in OpenStreetMap)"}),
        facts));
    }
  }

  function addMessage(m, live) {
    const list = $("transcript");
    const existing = list.querySelector(`li[data-id="${Number(m.id)}"]`);
    if (existing) { updateMessageStatus(m.id, m.status, m.error); return; }
    if (live && S.conv && !S.conv.messages.some((x) => x.id === m.id)) S.conv.messages.push(m);
    const who = m.author === "counselor" && m.account ? `${AUTHOR.counselor} ${m.account}` : (AUTHOR[m.author] || m.author);
    const body = [];
    if (m.text) body.push(el("p", {class: "text", text: m.text}));
    if (m.location) {
      body.push(el("p", {class: "loc", text: `Vị trí (location): ${Number(m.location.lat).toFixed(5)}, ${Number(m.location.lon).toFixed(5)}` +
        (m.location.label ? ` — ${m.location.label}` : "")}));
    }
    if (m.link) body.push(el("p", {class: "hint", text: `Nút: ${m.link.title || ""} → ${m.link.url || ""}`}));
    for (const a of m.attachments || []) body.push(el("p", {class: "hint", text: `[Tệp đính kèm: ${a.type || "?"}${a.name ? " " + a.name : ""}]`}));
    if (!body.length) body.push(el("p", {class: "hint", text: "(không có nội dung văn bản)"}));
    const item = el("li", {class: `msg ${m.author} ${m.direction}`, dataset: {id: m.id}},
      el("div", {class: "msg-head"}, el("strong", {text: who}), " ", el("time", {text: fmtTime(m.created_at)})),
      ...body,
      m.direction === "out" ? el("p", {class: "status"}) : null);
    list.append(item);
    if (m.direction === "out") updateMessageStatus(m.id, m.status, m.error);
    if (live) item.scrollIntoView({block: "nearest"});
  }

  function updateMessageStatus(id, status, error) {
    const item = $("transcript").querySelector(`li[data-id="${Number(id)}"]`);
    if (!item) return;
    const node = item.querySelector(".status");
    if (!node) return;
    node.textContent = (STATUS[status] || status || "") + (status === "failed" && error ? `: ${error}` : "");
    item.classList.toggle("failed", status === "failed");
    if (S.conv) {
      const m = S.conv.messages.find((x) => x.id === id);
      if (m) { m.status = status; m.error = error; }
    }
  }

  async function loadCanned(id) {
    const {status, data} = await api("GET", `/api/canned?conversation=${id}`);
    const select = $("canned");
    clear(select);
    select.append(el("option", {value: "", text: "Mẫu trả lời (canned)…"}));
    if (status !== 200) return;
    S.canned = data.canned || [];
    S.canned.forEach((c, i) => select.append(el("option", {value: String(i), text: c.title})));
  }

  function convPath(suffix) { return `/api/conversations/${S.conv.conversation.id}/${suffix}`; }

  function showConvError(data, fallback) {
    const text = (data && data.error) || fallback;
    $("conv-error").textContent = text;
    notify(text, "error");
  }

  async function take() {
    const {status, data} = await api("POST", convPath("take"));
    if (status === 200) {
      $("conv-error").textContent = "";
      Object.assign(S.conv.conversation, data.conversation);
      renderHeader();
      notify("Bạn đã nhận cuộc trò chuyện này. (taken)", "ok");
      loadQueue();
    } else if (status === 409) {
      const who = data.assigned_to ? `${data.assigned_to} đã nhận cuộc trò chuyện này trước bạn.`
        : "Cuộc trò chuyện này không còn chờ trong hàng.";
      showConvError({error: `${who} (${data.error || "409"})`});
      loadQueue();
    } else {
      showConvError(data, `Không nhận được (${status})`);
    }
  }

  async function sendReply(event) {
    event.preventDefault();
    const text = $("reply-text").value.trim();
    if (!text) return;
    $("btn-send").disabled = true;
    const {status, data} = await api("POST", convPath("reply"), {text});
    $("btn-send").disabled = false;
    if (status === 202) {
      $("reply-text").value = "";
      $("reply-error").textContent = "";
      if (data.human_agent) notify("Đã gửi với thẻ HUMAN_AGENT (quá 24 giờ).", "info");
      if (!S.ws || S.ws.readyState !== WebSocket.OPEN) reloadConversationQuietly();  // no live echo
    } else {
      $("reply-error").textContent = data.error || `Không gửi được (${status})`;
    }
  }

  async function sendLocationLink() {
    const {status, data} = await api("POST", convPath("location-link"));
    if (status === 202) notify("Đã gửi link chia sẻ vị trí. (location link sent)", "ok");
    else $("reply-error").textContent = data.error || `Không gửi được (${status})`;
  }

  async function transfer() {
    const to = $("transfer-to").value;
    if (!to) { notify("Chọn người nhận trước. (pick someone)", "error"); return; }
    const {status, data} = await api("POST", convPath("transfer"), {to});
    if (status === 200) {
      Object.assign(S.conv.conversation, data.conversation);
      renderHeader();
      notify(`Đã chuyển cho ${to}.`, "ok");
      loadQueue(); loadCounselors();
    } else showConvError(data, `Không chuyển được (${status})`);
  }

  async function release() {
    if (!confirm("Trả cuộc trò chuyện lại cho bot? (release to the bot)")) return;
    const {status, data} = await api("POST", convPath("release"));
    if (status === 200) {
      S.conv.conversation.state = "bot"; S.conv.conversation.assigned_to = null;
      renderHeader(); notify("Đã trả lại cho bot.", "ok"); loadQueue();
    } else showConvError(data, `Không trả lại được (${status})`);
  }

  function openCloseForm() {
    const select = $("close-outcome");
    if (!select.options.length) {
      select.append(el("option", {value: "", text: "Chọn kết quả…"}));
      for (const [value, label] of OUTCOMES) select.append(el("option", {value, text: label}));
    }
    show($("close-form"), true);
    updateConsentHint();
    $("close-form").scrollIntoView({block: "nearest"});
  }

  function consentExemption() {
    const s = S.conv.summary || {};
    const reasons = [];
    const age = parseInt(s.age, 10);
    if (!Number.isNaN(age) && age < 16) reasons.push(`trẻ em (${age} tuổi)`);
    if (S.conv.conversation.priority === "emergency") reasons.push("nguy hiểm tức thì (khẩn cấp)");
    return reasons;
  }

  function updateConsentHint() {
    const referral = $("close-outcome").value.startsWith("referral_");
    show($("referral-fields"), referral);
    const reasons = consentExemption();
    $("consent-hint").textContent = reasons.length
      ? `Không bắt buộc có sự đồng ý: ${reasons.join("; ")}. (consent not required)`
      : "Người trưởng thành, không nguy hiểm tức thì: cần có sự đồng ý trước khi chuyển tuyến. (consent required)";
  }

  async function closeCase(event) {
    event.preventDefault();
    const outcome = $("close-outcome").value;
    if (!outcome) { notify("Chọn kết quả. (pick an outcome)", "error"); return; }
    const body = {outcome};
    if (outcome.startsWith("referral_")) {
      const consent = $("referral-consent").value;
      body.referral = {agency: $("referral-agency").value.trim(), sent: $("referral-sent").value.trim(),
        consent: consent === "yes" ? true : consent === "no" ? false : null};
    }
    const {status, data} = await api("POST", convPath("close"), body);
    if (status === 200) {
      show($("close-form"), false);
      S.conv.conversation.state = "closed"; S.conv.conversation.assigned_to = null;
      renderHeader(); notify("Đã đóng ca. (closed)", "ok"); loadQueue();
    } else showConvError(data, `Không đóng được (${status})`);
  }

  async function saveSummary(event) {
    event.preventDefault();
    const safe = $("sum-safe_now").value;
    const ageText = $("sum-age").value.trim();
    const body = {safe_now: safe === "" ? null : safe === "true", age: ageText === "" ? null : Number(ageText)};
    for (const key of ["where", "with_whom", "wants", "notes"]) body[key] = $("sum-" + key).value;
    const {status, data} = await api("PUT", convPath("summary"), body);
    if (status === 200) {
      S.conv.summary = data.summary;
      renderSummary(true);
      notify("Đã lưu tóm tắt. (summary saved)", "ok");
    } else showConvError(data, `Không lưu được (${status})`);
  }

  async function saveTriage(event) {
    event.preventDefault();
    const {status, data} = await api("PATCH", convPath("triage"),
      {priority: $("triage-priority").value, reason: $("triage-reason").value.trim() || undefined});
    if (status === 200) {
      S.conv.conversation.priority = data.priority; S.conv.conversation.reason = data.reason;
      renderHeader(); notify("Đã đổi phân loại (logged in the audit).", "ok"); loadQueue();
    } else showConvError(data, `Không đổi được (${status})`);
  }

  // ---------------------------------------------------------------- supervisor view

  function setView(view) {
    S.view = view;
    show($("console-view"), view === "queue");
    show($("supervisor-view"), view === "supervisor");
    $("nav-queue").classList.toggle("active", view === "queue");
    $("nav-supervisor").classList.toggle("active", view === "supervisor");
    if (view === "supervisor") loadSupervisor();
  }

  function cells(...values) { return el("tr", {}, ...values.map((v) => v instanceof Node ? el("td", {}, v) : el("td", {text: v ?? ""}))); }

  let supervisorTimer = null;
  function scheduleSupervisorRefresh() {
    if (supervisorTimer) return;
    supervisorTimer = setTimeout(() => { supervisorTimer = null; if (S.view === "supervisor") loadSupervisor(); }, 500);
  }

  async function loadSupervisor() {
    const {status, data} = await api("GET", "/api/supervisor/overview");
    if (status !== 200) { notify(data.error || "Không tải được", "error"); return; }
    const waiting = $("sup-waiting"); clear(waiting);
    for (const w of data.waiting) {
      waiting.append(cells(`#${w.id}`, PRIORITY[w.priority] || w.priority, w.reason, fmtDuration(w.waiting_s), CENTER[w.center] || w.center));
    }
    $("sup-longest").textContent = data.waiting.length ? `· lâu nhất ${fmtDuration(data.longest_wait_s)}` : "· không ai chờ";
    const people = $("sup-counselors"); clear(people);
    for (const c of data.counselors) {
      people.append(cells(c.display_name, c.role, CENTER[c.center] || c.center || "—", c.online ? "có" : "không",
        `${c.active_chats}` + (c.conversations.length ? " (" + c.conversations.map((x) => "#" + x.id).join(", ") + ")" : "")));
    }
    const refs = $("sup-referrals"); clear(refs);
    for (const r of data.referrals_30d) {
      refs.append(cells(`#${r.conversation_id}`, r.outcome, r.agency,
        r.consent_required ? (r.consent ? "có" : "không") : `không cần (${r.consent_not_required_because || ""})`, fmtTime(r.sent_at)));
    }
    S.auditBefore = null;
    clear($("audit"));
    loadAudit();
  }

  async function loadAudit() {
    const query = S.auditBefore ? `?before=${S.auditBefore}` : "";
    const {status, data} = await api("GET", "/api/audit" + query);
    if (status !== 200) return;
    for (const e of data.entries) {
      $("audit").append(cells(fmtTime(e.at), e.account || "—", e.action, e.target || "", e.detail ? JSON.stringify(e.detail) : ""));
    }
    S.auditBefore = data.next_before;
    show($("audit-more"), Boolean(data.next_before));
  }

  // ---------------------------------------------------------------- wiring

  function bindEvents() {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("nav-queue").addEventListener("click", () => setView("queue"));
    $("nav-supervisor").addEventListener("click", () => setView("supervisor"));
    $("center-filter").addEventListener("change", renderQueue);
    $("conv-back").addEventListener("click", () => document.body.classList.remove("viewing-conv"));
    $("btn-take").addEventListener("click", take);
    $("btn-transfer").addEventListener("click", transfer);
    $("btn-release").addEventListener("click", release);
    $("btn-close-open").addEventListener("click", openCloseForm);
    $("close-cancel").addEventListener("click", () => show($("close-form"), false));
    $("close-outcome").addEventListener("change", updateConsentHint);
    $("close-form").addEventListener("submit", closeCase);
    $("summary-form").addEventListener("submit", saveSummary);
    $("summary-form").addEventListener("input", () => { S.summaryDirty = true; });
    $("triage-form").addEventListener("submit", saveTriage);
    $("reply-form").addEventListener("submit", sendReply);
    $("btn-location-link").addEventListener("click", sendLocationLink);
    $("audit-more").addEventListener("click", loadAudit);
    $("canned").addEventListener("change", (ev) => {
      const item = S.canned[Number(ev.target.value)];
      if (item) { $("reply-text").value = item.text; $("reply-text").focus(); }
      ev.target.value = "";
    });
    $("reply-text").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("reply-form").requestSubmit();
    });
    setInterval(tickWaiting, 1000);
    setInterval(() => { if (S.me) { loadCenters(); } }, 60000);
    setInterval(() => { if (S.ws && S.ws.readyState === WebSocket.OPEN) S.ws.send("ping"); }, 20000);
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
