// Reviewer page: sign in with a reviewer key, work the queue, decide cases. Plain JS, no build step.
"use strict";
(() => {
  const T = {
    zh: {
      title: "身份复核", signout: "退出", key: "复核人 API 密钥", signin: "登录", state: "状态", type: "类型", all: "全部",
      st_open: "待处理", st_in_review: "复核中", st_resolved: "已结案",
      t_comparison_failed: "比对未通过", t_comparison_review: "比对待复核", t_duplicate_face: "疑似重复人脸", t_photo_correction: "照片勘误", t_identity_check: "身份复核", t_intake_mismatch: "入学身份证比对",
      college: "学院", centre: "学习中心", since: "起", until: "止", apply: "筛选", student: "学生", opened: "立案时间", empty: "队列中没有案件",
      back: "返回队列 (Esc)", score: "相似度", decision: "结论", name: "姓名", ksh: "考生号", student_no: "学号", id_masked: "身份证号", intake: "入学批次",
      note: "备注", o_same_person: "本人", o_impersonation: "冒名顶替", o_needs_new_photo: "需重新采集照片", o_dismissed: "不成立",
      hint: "快捷键：1 本人 · 2 冒名顶替 · 3 需重新采集照片 · 4 不成立 · N 下一个 · Esc 返回",
      admission: "录取照片", graduation: "毕业照片", id_card: "身份证照片", student_a: "学生甲", student_b: "学生乙", case: "案件", total: "共",
      need_reviewer: "此密钥不是复核人（reviewer）角色", saved: "已保存：", done: "队列已处理完", lang: "English",
      d_match: "通过", d_review: "待复核", d_mismatch: "不一致", d_unusable: "无法比对", d_duplicate: "疑似同一人",
      members: "组内全部学生", matrix: "两两相似度", save_members: "提交成员结论", v_confirmed: "同一人", v_dismissed: "排除", v_none: "未定",
      group_hint: "逐一判断：“同一人”表示与其他标为同一人的学生是同一个人；“排除”表示与组内其他人都不是同一人。全部判断后案件自动结案。",
      pick_one: "请至少为一名学生选择结论",
      lists: "学院名单", back_queue: "返回队列", show_lists: "查看名单", download_xlsx: "下载 XLSX", none_listed: "无",
      l_missing_photo: "缺少照片", l_spec_failed: "照片不合规", l_in_review: "复核中", l_impersonation: "身份复核未通过", l_not_compared: "尚未比对",
    },
    en: {
      title: "Identity review", signout: "Sign out", key: "Reviewer API key", signin: "Sign in", state: "State", type: "Type", all: "All",
      st_open: "Open", st_in_review: "In review", st_resolved: "Resolved",
      t_comparison_failed: "Comparison failed", t_comparison_review: "Comparison review", t_duplicate_face: "Duplicate face", t_photo_correction: "Photo correction", t_identity_check: "Identity check", t_intake_mismatch: "Intake ID-card check",
      college: "College", centre: "Learning centre", since: "From", until: "To", apply: "Filter", student: "Student", opened: "Opened", empty: "No cases in the queue",
      back: "Back to queue (Esc)", score: "Score", decision: "Decision", name: "Name", ksh: "Candidate no.", student_no: "Student no.", id_masked: "ID number", intake: "Intake",
      note: "Note", o_same_person: "Same person", o_impersonation: "Impersonation", o_needs_new_photo: "Needs new photo", o_dismissed: "Dismiss",
      hint: "Shortcuts: 1 same person · 2 impersonation · 3 needs new photo · 4 dismiss · N next · Esc back",
      admission: "Admission photo", graduation: "Graduation photo", id_card: "ID-card photo", student_a: "Student A", student_b: "Student B", case: "Case", total: "Total",
      need_reviewer: "This key does not hold the reviewer role", saved: "Saved: ", done: "Queue finished", lang: "中文",
      d_match: "match", d_review: "review", d_mismatch: "mismatch", d_unusable: "unusable", d_duplicate: "possible same person",
      members: "Every student in the group", matrix: "Pairwise scores", save_members: "Save member verdicts", v_confirmed: "Same person", v_dismissed: "Not the same", v_none: "undecided",
      group_hint: "Decide each student: 'Same person' means the same person as the others marked so; 'Not the same' means nobody else in the group. The case closes when every student has a verdict.",
      pick_one: "Choose a verdict for at least one student",
      lists: "College lists", back_queue: "Back to queue", show_lists: "Show lists", download_xlsx: "Download XLSX", none_listed: "none",
      l_missing_photo: "Missing photo", l_spec_failed: "Photo fails the specification", l_in_review: "In review", l_impersonation: "Failed identity re-review", l_not_compared: "Not compared yet",
    },
  };
  const $ = (id) => document.getElementById(id);
  let lang = sessionStorage.getItem("lang") || "zh";
  let key = sessionStorage.getItem("key") || "";
  let current = null;
  let blobs = [];
  let colleges = [];
  const t = (k) => (T[lang][k] ?? k);

  function applyLang() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $("lang").textContent = t("lang");
    document.title = t("title");
  }

  function status(msg, ok) { $("status").textContent = msg || ""; $("status").className = ok ? "ok" : ""; }

  async function api(path, opts = {}) {
    const headers = Object.assign({ Authorization: "Bearer " + key }, opts.headers || {});
    const res = await fetch(path, Object.assign({}, opts, { headers }));
    if (!res.ok) {
      let body = {};
      try { body = await res.json(); } catch (e) { body = {}; }
      const msg = body.code ? `[${body.code}] ${lang === "zh" ? body.message_zh : body.message_en}` : `HTTP ${res.status}`;
      const err = new Error(msg); err.status = res.status; throw err;
    }
    return res;
  }

  function show(view) {
    for (const v of ["signin-view", "queue-view", "case-view", "lists-view"]) $(v).hidden = v !== view;
    $("signout").hidden = view === "signin-view";
    $("to-lists").hidden = view === "signin-view";
  }

  async function signIn(candidate) {
    key = candidate;
    try {
      const me = await (await api("/api/v1/me")).json();
      if (me.role !== "reviewer") { key = ""; status(t("need_reviewer")); return; }
      sessionStorage.setItem("key", key);
      colleges = me.scopes.filter((s) => !s.startsWith("学习中心:"));
      $("who").textContent = `${me.name}` + (me.scopes.length ? ` (${me.scopes.join(", ")})` : "");
      status("");
      await loadQueue();
    } catch (e) { key = ""; sessionStorage.removeItem("key"); status(e.message); show("signin-view"); }
  }

  function filters(overrides = {}) {
    const p = new URLSearchParams();
    const f = { state: $("f-state").value, type: $("f-type").value, college: $("f-college").value.trim(), centre: $("f-centre").value.trim(), since: $("f-since").value, until: $("f-until").value };
    Object.assign(f, overrides);
    for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
    return p;
  }

  async function fetchQueue(overrides = {}) {
    return (await api("/api/v1/cases?" + filters(overrides).toString())).json();
  }

  async function loadQueue() {
    show("queue-view");
    try {
      const data = await fetchQueue();
      const tbody = $("queue").querySelector("tbody");
      tbody.replaceChildren();
      for (const c of data.items) {
        const tr = document.createElement("tr");
        tr.className = "case-row"; tr.tabIndex = 0; tr.dataset.id = c.id;
        for (const v of [c.id, t("t_" + c.case_type), t("st_" + c.state), `${c.name || ""} ${c.ksh || ""}`, c.college || "", c.centre || "", (c.created_at || "").replace("T", " ").slice(0, 16)]) {
          const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
        }
        tr.addEventListener("click", () => openCase(c.id));
        tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") openCase(c.id); });
        tbody.appendChild(tr);
      }
      $("empty").hidden = data.items.length > 0;
      const byState = Object.entries(data.counts.state).map(([k, n]) => `${t("st_" + k)} ${n}`).join(" · ");
      const byType = Object.entries(data.counts.type).map(([k, n]) => `${t("t_" + k)} ${n}`).join(" · ");
      $("counts").textContent = `${t("total")} ${data.total} | ${byState} | ${byType}`;
    } catch (e) { status(e.message); if (e.status === 401) signOut(); }
  }

  async function photo(url, img) {
    img.removeAttribute("src");
    if (!url) return;
    const blob = await (await api(url)).blob();
    const u = URL.createObjectURL(blob); blobs.push(u); img.src = u;
  }

  async function openCase(id) {
    try {
      let res = await (await api(`/api/v1/cases/${id}`)).json();
      if (res.state === "open") res = await (await api(`/api/v1/cases/${id}/claim`, { method: "POST" })).json();
      current = res;
      blobs.forEach((u) => URL.revokeObjectURL(u)); blobs = [];
      show("case-view");
      $("case-title").textContent = `${t("case")} #${res.id} · ${t("t_" + res.case_type)} · ${t("st_" + res.state)}`;
      $("score").textContent = res.score == null ? "—" : res.score.toFixed(4);
      $("decision").textContent = res.decision ? t("d_" + res.decision) : "—";
      const ul = $("reasons"); ul.replaceChildren();
      for (const r of res.reasons) { const li = document.createElement("li"); li.textContent = `[${r.code}] ${lang === "zh" ? r.message_zh : r.message_en}`; ul.appendChild(li); }
      const tb = $("students").querySelector("tbody"); tb.replaceChildren();
      for (const s of res.students) {
        if (!s) continue;
        const tr = document.createElement("tr");
        for (const v of [s.name, s.ksh, s.student_no, s.id_masked, s.college, s.centre, s.intake]) { const td = document.createElement("td"); td.textContent = v || ""; tr.appendChild(td); }
        tb.appendChild(tr);
      }
      const log = $("notes-log"); log.replaceChildren();
      for (const n of res.notes) {
        const li = document.createElement("li"), head = document.createElement("span"), body = document.createElement("div");
        head.className = "note-head"; head.textContent = `${n.at} · ${n.author}`;
        body.className = "note-text"; body.textContent = n.text;
        li.append(head, body); log.appendChild(li);
      }
      $("note").value = "";
      const group = (res.members || []).length > 0;
      const views = res.views || [];
      $("group").hidden = !group;
      $("views").hidden = group || !views.length;
      $("pair-photos").hidden = group || views.length > 0;
      if (group) {
        await showGroup(res);
      } else if (views.length) {
        await showViews(views);
      } else {
        for (const side of ["a", "b"]) {
          const p = res.photos[side];
          $("label-" + side).textContent = p ? t(p.label) : "—";
          await photo(p ? p.url : null, $("photo-" + side));
        }
      }
      status("");
    } catch (e) { status(e.message); }
  }

  function cell(tag, text, cls) {
    const el = document.createElement(tag);
    el.textContent = text == null ? "" : String(text);
    if (cls) el.className = cls;
    return el;
  }

  // A single student's photos side by side (ID card, admission, graduation), each labelled in Chinese and English;
  // a kind the student lacks (or a record without an image) gets a placeholder; the two compared are marked.
  async function showViews(views) {
    const box = $("views"); box.replaceChildren();
    const imgs = [];
    for (const v of views) {
      const fig = document.createElement("figure");
      fig.className = "view" + (v.compared ? " compared" : "") + (v.url && v.has_image ? "" : " missing");
      fig.dataset.kind = v.kind;
      if (v.url && v.has_image) {
        const img = document.createElement("img"); img.alt = `${v.label_zh} ${v.label_en}`; img.className = "view-photo";
        fig.appendChild(img); imgs.push([v.url, img]);
      } else {
        fig.appendChild(cell("div", v.photo_id ? "无图像 / no image" : "无此照片 / no photo", "placeholder"));
      }
      const cap = document.createElement("figcaption");
      cap.append(cell("span", v.label_zh, "label-zh"), cell("span", v.label_en, "label-en"));
      if (v.compared) cap.appendChild(cell("span", "比对 / compared", "tag"));
      fig.appendChild(cap);
      box.appendChild(fig);
    }
    for (const [url, img] of imgs) await photo(url, img);
  }

  async function showGroup(res) {
    const cards = $("member-cards"); cards.replaceChildren();
    const done = res.state === "resolved";
    const imgs = [];
    res.members.forEach((m, i) => {
      const fig = document.createElement("figure");
      fig.className = "member" + (m.outcome ? " v-" + m.outcome : "");
      fig.dataset.member = String(m.member_id);
      const img = document.createElement("img"); img.alt = ""; img.className = "member-photo"; fig.appendChild(img); imgs.push([m.photo_url, img]);
      fig.appendChild(cell("p", `${i + 1}. ${m.name || ""}`, "facts-line member-name"));
      for (const v of [m.ksh, m.id_masked, m.college, m.centre]) fig.appendChild(cell("p", v, "facts-line"));
      fig.appendChild(cell("p", `${t("decision")}: ${t("v_" + (m.outcome || "none"))}`, "facts-line member-outcome"));
      const row = document.createElement("div"); row.className = "verdict";
      for (const v of ["confirmed", "dismissed"]) {
        const label = document.createElement("label");
        const input = document.createElement("input");
        input.type = "radio"; input.name = "verdict-" + m.member_id; input.value = v; input.disabled = done;
        input.className = "verdict-" + v; input.checked = m.outcome === v;
        label.appendChild(input); label.appendChild(document.createTextNode(" " + t("v_" + v)));
        row.appendChild(label);
      }
      fig.appendChild(row);
      cards.appendChild(fig);
    });
    const head = $("matrix").querySelector("thead"); head.replaceChildren();
    const hr = document.createElement("tr"); hr.appendChild(cell("th", ""));
    res.members.forEach((m, i) => hr.appendChild(cell("th", `${i + 1}. ${m.name || ""}`)));
    head.appendChild(hr);
    const body = $("matrix").querySelector("tbody"); body.replaceChildren();
    res.matrix.forEach((row, i) => {
      const tr = document.createElement("tr");
      tr.appendChild(cell("th", `${i + 1}. ${res.members[i].name || ""}`));
      for (const v of row) tr.appendChild(cell("td", v == null ? "—" : v.toFixed(3), "score"));
      body.appendChild(tr);
    });
    $("members-submit").disabled = done;
    for (const [url, img] of imgs) await photo(url, img);
  }

  async function decideMembers() {
    if (!current || current.state === "resolved" || !(current.members || []).length) return;
    const verdicts = [];
    for (const m of current.members) {
      const picked = document.querySelector(`input[name="verdict-${m.member_id}"]:checked`);
      if (picked && picked.value !== m.outcome) verdicts.push({ member_id: m.member_id, outcome: picked.value });
    }
    if (!verdicts.length) { status(t("pick_one")); return; }
    const id = current.id;
    try {
      const res = await (await api(`/api/v1/cases/${id}/members`, { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ verdicts, note: $("note").value, pairs_seen: current.pairs.length }) })).json();
      if (res.state === "resolved") { status(`${t("saved")}#${id} → ${t("o_" + res.outcome)}`, true); await next(id); }
      else { await openCase(id); status(`${t("saved")}#${id}`, true); }
    } catch (e) { status(e.message); }
  }

  async function decide(outcome) {
    if (!current || current.state === "resolved") return;
    const id = current.id;
    try {
      await api(`/api/v1/cases/${id}/resolve`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ outcome, note: $("note").value }) });
      status(`${t("saved")}#${id} → ${t("o_" + outcome)}`, true);
      await next(id);
    } catch (e) { status(e.message); }
  }

  async function next(after) {
    const data = await fetchQueue({ state: "open" });
    const nxt = data.items.find((c) => c.id !== after);
    if (nxt) { await openCase(nxt.id); } else { current = null; await loadQueue(); status(t("done"), true); }
  }

  function listsCollege() { return $("l-college").value.trim(); }

  // A 学院's five lists (from /api/v1/lists/{college}): one titled table each, with the server's Chinese headers.
  async function loadLists() {
    const box = $("lists-tables"); box.replaceChildren();
    const college = listsCollege();
    if (!college) return;
    try {
      const data = await (await api("/api/v1/lists/" + encodeURIComponent(college))).json();
      for (const item of data.lists) {
        const sec = document.createElement("section"); sec.className = "college-list"; sec.dataset.kind = item.kind;
        sec.appendChild(cell("h3", `${t("l_" + item.kind)} (${item.rows.length})`));
        if (item.rows.length) {
          const table = document.createElement("table");
          const hr = document.createElement("tr"); item.headers.forEach((h) => hr.appendChild(cell("th", h)));
          const head = document.createElement("thead"); head.appendChild(hr); table.appendChild(head);
          const body = document.createElement("tbody");
          for (const row of item.rows) { const tr = document.createElement("tr"); row.forEach((v) => tr.appendChild(cell("td", v))); body.appendChild(tr); }
          table.appendChild(body); sec.appendChild(table);
        } else sec.appendChild(cell("p", t("none_listed"), "hint"));
        box.appendChild(sec);
      }
      status("");
    } catch (e) { status(e.message); if (e.status === 401) signOut(); }
  }

  async function downloadLists() {
    const college = listsCollege();
    if (!college) return;
    try {
      const blob = await (await api("/api/v1/lists/" + encodeURIComponent(college) + "/xlsx")).blob();
      const a = document.createElement("a"); a.href = URL.createObjectURL(blob); a.download = `${college}-名单.xlsx`;
      document.body.appendChild(a); a.click(); a.remove(); setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) { status(e.message); }
  }

  function openLists() {
    current = null; show("lists-view");
    if (!listsCollege() && colleges.length) $("l-college").value = colleges[0];
    loadLists();
  }

  function signOut() { key = ""; current = null; sessionStorage.removeItem("key"); $("who").textContent = ""; show("signin-view"); }

  document.addEventListener("DOMContentLoaded", () => {
    applyLang();
    $("lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; sessionStorage.setItem("lang", lang); applyLang(); if (current) openCase(current.id); else if (!$("lists-view").hidden) loadLists(); else if (key) loadQueue(); });
    $("signin-form").addEventListener("submit", (ev) => { ev.preventDefault(); signIn($("key").value.trim()); $("key").value = ""; });
    $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadQueue(); });
    $("signout").addEventListener("click", signOut);
    $("to-lists").addEventListener("click", openLists);
    $("lists-back").addEventListener("click", () => loadQueue());
    $("lists-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadLists(); });
    $("lists-xlsx").addEventListener("click", downloadLists);
    $("back").addEventListener("click", () => { current = null; loadQueue(); });
    document.querySelectorAll(".actions button").forEach((b) => b.addEventListener("click", () => decide(b.dataset.outcome)));
    $("members-submit").addEventListener("click", decideMembers);
    document.addEventListener("keydown", (ev) => {
      if ($("case-view").hidden) return;
      if (ev.target && ev.target.tagName === "TEXTAREA") { if (ev.key === "Escape") ev.target.blur(); return; }
      const map = { "1": "same_person", "2": "impersonation", "3": "needs_new_photo", "4": "dismissed" };
      if (map[ev.key]) { ev.preventDefault(); decide(map[ev.key]); }
      else if (ev.key === "n" || ev.key === "N") { ev.preventDefault(); next(current ? current.id : 0); }
      else if (ev.key === "Escape") { current = null; loadQueue(); }
    });
    if (key) signIn(key); else show("signin-view");
  });
})();
