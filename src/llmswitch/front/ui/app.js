// llmswitch dashboard: plain DOM, no framework, no build step. Live state arrives over
// Server-Sent Events (/admin/events); everything else is the admin JSON API, same origin.
// Text from the gateway is only ever set as text (never parsed as HTML).
"use strict";

(function () {
  const SVGNS = "http://www.w3.org/2000/svg";

  function fill(el, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "class") el.setAttribute("class", v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const h = (tag, attrs, ...kids) => fill(document.createElement(tag), attrs, kids);
  const s = (tag, attrs, ...kids) => fill(document.createElementNS(SVGNS, tag), attrs, kids);
  // Replace an element's children (arrays flattened, like h's).
  function put(el, ...kids) {
    el.replaceChildren();
    return fill(el, {}, kids);
  }

  function usd(x) {
    if (x === null || x === undefined) return "–";
    return "$" + (Math.abs(x) < 1 ? x.toFixed(4) : x.toFixed(2));
  }
  const num = (x, unit) => (x === null || x === undefined ? "–" : Math.round(x) + (unit || ""));
  const pct = (r) => (r * 100).toFixed(r < 0.1 ? 1 : 0) + "%";

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    // Every write says JSON, a DELETE without a body too: the gateway refuses a write
    // from a page (it has an Origin) in a type no CORS preflight guards.
    if (method !== "GET") opts.headers["Content-Type"] = "application/json";
    if (body !== undefined) opts.body = JSON.stringify(body);
    const r = await fetch(path, opts);
    const text = await r.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!r.ok) {
      const err = new Error(data && data.error ? data.error.message : r.status + " " + r.statusText);
      err.status = r.status;
      err.data = data;
      throw err;
    }
    return data;
  }

  function table(caption, head, rows) {
    return h(
      "div",
      { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
      h(
        "table",
        {},
        h("caption", {}, caption),
        h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
        h(
          "tbody",
          {},
          rows.length
            ? rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))
            : h("tr", {}, h("td", { colspan: head.length, class: "empty" }, "nothing yet"))
        )
      )
    );
  }

  function badge(text, kind) {
    return h("span", { class: "badge " + (kind || text) }, text);
  }

  // A fleet's Redis link: up, or "cluster degraded" with why (budgets and limits local).
  function clusterBadge(c) {
    return c.state === "up" ? badge("up", "up") : badge("cluster degraded: " + c.reason, "down");
  }

  function bar(label, ratio, detail) {
    const fillEl = h("div", { class: "fill" });
    const clamped = Math.max(0, Math.min(1, ratio));
    fillEl.style.width = (clamped * 100).toFixed(1) + "%";
    if (ratio >= 1) fillEl.classList.add("over");
    else if (ratio >= 0.8) fillEl.classList.add("warn");
    return h(
      "div",
      { class: "meter" },
      h("div", { class: "meter-label" }, h("span", {}, label), h("span", {}, detail)),
      h(
        "div",
        {
          class: "track",
          role: "meter",
          "aria-label": label,
          "aria-valuemin": "0",
          "aria-valuemax": "100",
          "aria-valuenow": Math.round(clamped * 100),
        },
        fillEl
      )
    );
  }

  // A bar chart over a series: one or two values per point, labels under some bars.
  function columns(title, points, series) {
    const W = 640;
    const H = 180;
    const pad = { l: 48, r: 8, t: 10, b: 28 };
    const max = Math.max(1e-9, ...points.flatMap((p) => series.map((se) => p[se.key] || 0)));
    const n = Math.max(1, points.length);
    const slot = (W - pad.l - pad.r) / n;
    const bw = Math.max(1, (slot * 0.8) / series.length);
    const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
    const fmt = series[0].fmt || ((v) => String(Math.round(v * 100) / 100));
    const kids = [
      s("line", { x1: pad.l, x2: W - pad.r, y1: y(0), y2: y(0), class: "axis" }),
      s("text", { x: pad.l - 4, y: y(max) + 4, class: "tick", "text-anchor": "end" }, fmt(max)),
      s("text", { x: pad.l - 4, y: y(0), class: "tick", "text-anchor": "end" }, fmt(0)),
    ];
    const every = Math.ceil(n / 8);
    points.forEach((p, i) => {
      series.forEach((se, j) => {
        const v = p[se.key] || 0;
        const x = pad.l + i * slot + slot * 0.1 + j * bw;
        kids.push(
          s(
            "rect",
            { x, y: y(v), width: bw, height: Math.max(0, y(0) - y(v)), class: "bar " + se.cls },
            s("title", {}, p.label + " " + se.name + ": " + (se.fmt || String)(v))
          )
        );
      });
      if (i % every === 0) {
        kids.push(
          s("text", { x: pad.l + i * slot + slot / 2, y: H - 8, class: "tick", "text-anchor": "middle" }, p.short)
        );
      }
    });
    const legend = h(
      "p",
      { class: "legend" },
      series.map((se) => h("span", { class: "key " + se.cls }, se.name))
    );
    return h(
      "figure",
      {},
      h("figcaption", {}, title),
      s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, class: "chart" }, kids),
      legend
    );
  }

  function hbars(title, rows, key, fmt) {
    const max = Math.max(1e-9, ...rows.map((r) => r[key] || 0));
    return h(
      "figure",
      {},
      h("figcaption", {}, title),
      rows.length
        ? rows.map((r) => bar(r.key === null ? "(none)" : String(r.key), (r[key] || 0) / max, fmt(r[key] || 0)))
        : h("p", { class: "empty" }, "nothing in this window")
    );
  }

  const bootEl = document.getElementById("boot");
  const boot = bootEl ? JSON.parse(bootEl.textContent) : {};
  let state = null;
  let current = null;
  const views = {};

  // ---------------------------------------------------------------- overview
  views.overview = {
    init(body) {
      this.budgets = h("div", { class: "card", id: "budgets" });
      this.now = h("div", { class: "card", id: "now" });
      this.savings = h("div", { class: "card", id: "savings" });
      this.chart = h("div", { class: "card wide", id: "traffic" });
      body.append(h("div", { class: "grid" }, this.now, this.budgets, this.savings, this.chart));
    },
    update() {
      if (!state) return;
      const b = state.budget;
      const rows = [];
      for (const [name, spent, limit] of [
        ["Today", b.spent_day_usd, b.daily_usd],
        ["This week", b.spent_week_usd, b.weekly_usd],
        ["This month", b.spent_month_usd, b.monthly_usd],
      ]) {
        if (limit === null || limit === undefined) rows.push(h("p", {}, name + ": " + usd(spent) + " (no budget)"));
        else rows.push(bar(name, limit > 0 ? spent / limit : 1, usd(spent) + " of " + usd(limit)));
      }
      for (const [scope, ratio] of Object.entries(b.used_ratio || {})) {
        if (!scope.startsWith("all/")) rows.push(bar(scope, ratio, pct(ratio)));
      }
      put(this.budgets, h("h3", {}, "Spend against budgets"), rows);
      const backends = Object.values(state.backends);
      const up = backends.filter((x) => x.health && x.health.checked && x.health.up).length;
      const down = backends.filter((x) => x.health && x.health.checked && !x.health.up).length;
      put(this.now, 
        h("h3", {}, "Now"),
        h(
          "dl",
          {},
          h("dt", {}, "In flight"), h("dd", {}, String(state.in_flight)),
          h("dt", {}, "Backends"), h("dd", {}, `${up} up, ${down} down, ${backends.length - up - down} unknown`),
          h("dt", {}, "Budget"), h("dd", {}, b.exceeded ? badge("exceeded", "down") : badge("ok", "up")),
          h("dt", {}, "Uptime"), h("dd", {}, num(state.uptime_s, " s")),
          h("dt", {}, "Draining"), h("dd", {}, state.draining ? "yes" : "no"),
          ...(state.cluster ? [h("dt", {}, "Cluster"), h("dd", {}, clusterBadge(state.cluster))] : [])
        )
      );
    },
    async refresh() {
      const [day, week, hours] = await Promise.all([
        api("GET", "/admin/stats?since=24h&group_by=model"),
        api("GET", "/admin/stats?since=7d&group_by=model"),
        api("GET", "/admin/stats?since=24h&group_by=hour"),
      ]);
      const line = (label, t) =>
        h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, usd(t.cost_usd)), h("td", {}, usd(t.baseline_cost_usd)), h("td", { class: "good" }, usd(t.savings_usd)));
      put(this.savings, 
        h("h3", {}, "What routing saved"),
        h("p", {}, "Against every request on " + (day.baseline_model || "(no priced baseline)") + ":"),
        h("div", { class: "scroll" },
          h("table", {},
            h("thead", {}, h("tr", {}, h("td", {}), h("th", { scope: "col" }, "Spent"), h("th", { scope: "col" }, "Baseline"), h("th", { scope: "col" }, "Saved"))),
            h("tbody", {}, line("Last 24 h", day.total), line("Last 7 days", week.total))))
      );
      put(this.chart, 
        columns("Requests and errors per hour, last 24 h", series(hours), [
          { key: "requests", name: "requests", cls: "s1", fmt: (v) => String(Math.round(v)) },
          { key: "errors", name: "errors", cls: "s2", fmt: (v) => String(Math.round(v)) },
        ])
      );
    },
  };

  // A stats answer grouped by hour or day as one point per bucket of its window, empty
  // buckets included (the answer lists only buckets with traffic).
  function series(stats) {
    const step = stats.group_by === "day" ? 86400000 : 3600000;
    const byKey = new Map(stats.groups.map((g) => [g.key, g]));
    const points = [];
    const start = Math.floor(Date.parse(stats.since) / step) * step;
    for (let t = start; t < Date.parse(stats.until) && points.length < 2400; t += step) {
      const key = new Date(t).toISOString().replace(".000Z", "Z");
      const g = byKey.get(key) || { requests: 0, errors: 0, cost_usd: 0 };
      points.push({
        ...g,
        label: key.slice(0, step === 3600000 ? 16 : 10).replace("T", " ") + (step === 3600000 ? " UTC" : ""),
        short: step === 3600000 && key.slice(11, 13) !== "00" ? key.slice(11, 16) : key.slice(5, 10),
      });
    }
    return points;
  }

  // ---------------------------------------------------------------- backends & models
  views.backends = {
    init(body) {
      this.body = body;
    },
    update() {
      if (!state) return;
      const brows = Object.entries(state.backends).map(([name, b]) => {
        const hl = b.health || {};
        const health = !hl.checked ? "unknown" : hl.up ? "up" : "down";
        const pool = b.pool || {};
        return [
          name,
          b.kind + " · " + b.locality,
          badge(health),
          badge(pool.breaker || "–", pool.breaker === "closed" ? "up" : pool.breaker === "open" ? "down" : "unknown"),
          String(pool.in_flight ?? "–"),
          num(hl.last_latency_ms, " ms"),
          String(hl.consecutive_failures ?? 0),
          hl.last_error || "",
        ];
      });
      const mrows = Object.entries(state.models).map(([name, m]) => [
        name,
        badge(m.breaker, m.breaker === "closed" ? "up" : m.breaker === "open" ? "down" : "unknown"),
        num(m.latency_ms, " ms"),
        num(m.ttfb_ms, " ms"),
        m.success === null ? "–" : pct(m.success),
      ]);
      const crows = Object.entries(state.cooldowns).map(([scope, left]) => [scope, left.toFixed(1) + " s"]);
      // With [cluster] redis_url: every instance of the fleet, a gone one included.
      const prows = (state.fleet ? state.fleet.peers : []).map((p) => [
        p.id + (p.self ? " (this one)" : ""),
        p.address || "–",
        badge(p.state, p.state === "up" ? "up" : "down"),
        new Date(p.started * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC",
        p.last_seen_s_ago.toFixed(1) + " s ago",
      ]);
      put(this.body, 
        table("Backends", ["Backend", "Kind", "Health", "Breaker", "In flight", "Probe latency", "Failures", "Last error"], brows),
        table("Models", ["Model", "Breaker", "Latency (EWMA)", "Time to first byte", "Success"], mrows),
        table("Rate-limit cooldowns", ["Scope", "Left"], crows),
        state.fleet ? table("Fleet peers", ["Instance", "Address", "State", "Started", "Last seen"], prows) : null
      );
    },
  };

  // ---------------------------------------------------------------- actors
  views.actors = {
    init(body) {
      this.body = body;
    },
    update() {
      if (!state) return;
      const sup = state.supervisor;
      const items = sup.actors.map((a) =>
        h(
          "li",
          { class: "actor" },
          h("div", { class: "actor-head" }, h("strong", {}, a.name), " ", badge(a.state, a.state === "running" ? "up" : "down"),
            " restarts " + a.restarts + " · up " + num(a.uptime_s, " s")),
          bar("mailbox", a.mailbox.depth / Math.max(1, a.mailbox.capacity),
            `${a.mailbox.depth} / ${a.mailbox.capacity}` + (a.mailbox.dropped ? ` (${a.mailbox.dropped} dropped)` : "")),
          a.last_error ? h("p", { class: "error" }, "last error: " + a.last_error) : null,
          h("details", {}, h("summary", {}, "state"),
            h("dl", {}, Object.entries(a.summary).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))])))
        )
      );
      put(this.body, 
        h("p", {}, "supervisor (one_for_one) ", sup.gave_up ? badge("gave up: " + sup.gave_up, "down") : badge("running", "up")),
        h("ul", { class: "tree" }, items)
      );
    },
  };

  // ---------------------------------------------------------------- requests
  views.requests = {
    init(body) {
      const field = (name, label, attrs) =>
        h("label", {}, label, h("input", { name, type: "text", autocomplete: "off", ...attrs }));
      this.form = h(
        "form",
        { class: "filters", id: "request-filters" },
        field("client", "Client"),
        field("model", "Model"),
        field("status", "Status", { inputmode: "numeric", pattern: "[0-9]{3}" }),
        field("harness", "Harness"),
        field("instance", "Instance"),
        h("label", {}, "Rows", h("select", { name: "limit" }, ["50", "100", "500"].map((n) => h("option", { value: n, selected: n === "100" }, n)))),
        h("button", { type: "submit" }, "Filter")
      );
      this.form.addEventListener("submit", (e) => {
        e.preventDefault();
        this.refresh();
      });
      this.out = h("div", { id: "request-log" });
      this.msg = h("p", { role: "status", class: "msg" });
      body.append(this.form, this.msg, this.out);
    },
    update() {},
    async refresh() {
      const params = new URLSearchParams();
      for (const [k, v] of new FormData(this.form)) if (String(v).trim()) params.set(k, String(v).trim());
      try {
        const data = await api("GET", "/admin/requests?" + params);
        this.msg.textContent = data.requests.length + " request(s)";
        put(this.out,
          table(
            "Recent requests, newest first",
            ["Time", "Client", "Harness", "Model", "Backend", "Status", "Routing", "Reason", "Latency", "Tokens", "Cost"],
            data.requests.map((r) => [
              new Date(r.ts * 1000).toISOString().replace("T", " ").slice(0, 19),
              r.client || "–",
              r.harness || "–",
              (r.requested_model || "") + " → " + (r.chosen_model || "–"),
              r.backend || "–",
              badge(String(r.status), r.status < 400 ? "up" : "down"),
              [r.tier && "tier " + r.tier, r.rule && "rule " + r.rule, r.profile && "profile " + r.profile, r.task && "task " + r.task, r.classification, r.instance && "on " + r.instance]
                .filter(Boolean).join(" · "),
              h("span", { class: "reason" }, r.reason || r.error || ""),
              num(r.latency_ms, " ms"),
              (r.tokens_in ?? "–") + " / " + (r.tokens_out ?? "–"),
              usd(r.cost_usd),
            ])
          )
        );
      } catch (err) {
        this.msg.textContent = "Could not read the request log: " + err.message;
      }
    },
  };

  // ---------------------------------------------------------------- charts
  function utcDay(offset) {
    const d = new Date();
    d.setUTCHours(0, 0, 0, 0);
    d.setUTCDate(d.getUTCDate() + offset);
    return d.toISOString().slice(0, 10);
  }
  const WINDOWS = {
    "24h": { label: "Last 24 hours", q: "since=24h", by: "hour" },
    yesterday: { label: "Yesterday (UTC)", q: () => `since=${utcDay(-1)}&until=${utcDay(0)}`, by: "hour" },
    "7d": { label: "Last 7 days", q: "since=7d", by: "day" },
    "30d": { label: "Last 30 days", q: "since=30d", by: "day" },
  };

  views.charts = {
    init(body) {
      this.pick = h("select", { id: "window", "aria-label": "Window" },
        Object.entries(WINDOWS).map(([k, w]) => h("option", { value: k }, w.label)));
      this.pick.addEventListener("change", () => this.refresh());
      this.out = h("div", { class: "grid" });
      body.append(h("p", {}, h("label", { for: "window" }, "Window "), this.pick), this.out);
    },
    update() {},
    async refresh() {
      const w = WINDOWS[this.pick.value];
      const q = typeof w.q === "function" ? w.q() : w.q;
      const [time, model, client] = await Promise.all(
        [w.by, "model", "client"].map((by) => api("GET", `/admin/stats?${q}&group_by=${by}`))
      );
      const per = w.by === "hour" ? "hour" : "day";
      const pts = series(time);
      const t = model.total;
      put(this.out,
        h("div", { class: "card wide" },
          h("p", { class: "totals" }, `${t.requests} requests · ${t.errors} errors · spent ${usd(t.cost_usd)} · saved ${usd(t.savings_usd)} against ${model.baseline_model || "no baseline"}`)),
        h("div", { class: "card wide" }, columns(`Cost per ${per}`, pts, [{ key: "cost_usd", name: "cost", cls: "s3", fmt: usd }])),
        h("div", { class: "card wide" }, columns(`Requests per ${per}`, pts, [
          { key: "requests", name: "requests", cls: "s1", fmt: (v) => String(Math.round(v)) },
          { key: "errors", name: "errors", cls: "s2", fmt: (v) => String(Math.round(v)) },
        ])),
        h("div", { class: "card" }, hbars("Cost per model", model.groups, "cost_usd", usd)),
        h("div", { class: "card" }, hbars("Requests per model", model.groups, "requests", String)),
        h("div", { class: "card wide" },
          table("Per model", ["Model", "Requests", "Errors", "Cost", "Saved", "p50 latency"],
            model.groups.map((g) => [g.key || "(none)", String(g.requests), String(g.errors), usd(g.cost_usd), usd(g.savings_usd), num(g.latency_ms.p50, " ms")])),
          table("Per client", ["Client", "Requests", "Errors", "Cost", "Saved"],
            client.groups.map((g) => [g.key || "(anonymous)", String(g.requests), String(g.errors), usd(g.cost_usd), usd(g.savings_usd)])))
      );
    },
  };

  // ---------------------------------------------------------------- settings
  views.settings = {
    init(body) {
      this.msg = h("p", { role: "status", class: "msg", id: "settings-msg" });
      this.routing = h("div", { class: "card wide" });
      this.live = h("div", { class: "card wide", id: "live-settings" });
      this.keys = h("div", { class: "card wide" });
      const reload = h("button", { type: "button", id: "reload-config" }, "Reload the config file");
      reload.addEventListener("click", () => this.reload());
      this.fixed = h("div", { class: "card wide" },
        h("h3", {}, "Config file"),
        h("p", { class: "note" },
          "Backends, models, rules, profiles and keys come from the config file: edit it, then " +
          "reload. A value saved on this page stays on top of the file's until you take it " +
          "back to the file."),
        h("p", {}, reload));
      body.append(this.msg, this.routing, this.live, this.keys, this.fixed);
    },
    update() {},
    say(text) {
      this.msg.textContent = text;
    },
    async reload() {
      try {
        const r = await api("POST", "/admin/reload", {});
        const more = r.needs_restart.length ? "; needs a restart: " + r.needs_restart.join(", ") : "";
        this.say(`config ${r.status} (generation ${r.generation})` +
          (r.applied.length ? ": " + r.applied.join(", ") : "") + more);
      } catch (err) {
        this.say(err.message);
      }
    },
    async act(what, fn) {
      try {
        await fn();
        this.say(what + ": done");
      } catch (err) {
        this.say(what + " failed: " + err.message);
      }
      await this.refresh();
    },
    async refresh() {
      const [routing, keys] = await Promise.all([api("GET", "/admin/routing"), api("GET", "/admin/keys")]);
      const profile = h("select", { id: "profile", name: "profile" },
        boot.profiles.map((p) => h("option", { value: p, selected: p === routing.profile }, p)));
      const profileForm = h("form", { class: "row" },
        h("label", { for: "profile" }, "Profile "), profile, h("button", { type: "submit" }, "Set profile"));
      profileForm.addEventListener("submit", (e) => {
        e.preventDefault();
        this.act("profile " + profile.value, () => api("PUT", "/admin/routing/profile", { profile: profile.value }));
      });
      const overrides = boot.tasks.map((task) => {
        const sel = h("select", { id: "override-" + task, "aria-label": "Model for " + task },
          h("option", { value: "" }, "(routing decides)"),
          boot.models.map((m) => h("option", { value: m, selected: routing.overrides[task] === m }, m)));
        const btn = h("button", { type: "button", id: "apply-" + task }, "Apply");
        btn.addEventListener("click", () =>
          this.act("override " + task, () => sel.value
            ? api("PUT", "/admin/routing/overrides/" + encodeURIComponent(task), { model: sel.value })
            : api("DELETE", "/admin/routing/overrides/" + encodeURIComponent(task))));
        return [task, sel, btn];
      });
      put(this.routing, 
        h("h3", {}, "Routing"),
        profileForm,
        table("Per-task overrides", ["Task", "Model", ""], overrides),
        table("Rules", ["Name", "Rule"], routing.rules.map((r) => [r.name, JSON.stringify(r)]))
      );
      const name = h("input", { id: "key-name", name: "name", required: true, pattern: "[A-Za-z0-9._-]{1,64}", autocomplete: "off" });
      const keyForm = h("form", { class: "row" }, h("label", { for: "key-name" }, "New key name "), name, h("button", { type: "submit" }, "Create key"));
      const shown = h("p", { id: "new-key", class: "note" });
      keyForm.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          const made = await api("POST", "/admin/keys", { name: name.value });
          put(shown, "Key for " + made.name + " (shown once): ", h("code", {}, made.key));
          this.say("key " + made.name + ": created");
        } catch (err) {
          this.say("creating the key failed: " + err.message);
        }
        await this.refreshKeys();
      });
      this.keyTable = h("div");
      put(this.keys, h("h3", {}, "Client keys"), keyForm, shown, this.keyTable);
      this.renderKeys(keys);
      this.renderLive(routing);
    },
    // Allow/block and budgets: stored over the file's (PUT), or back to the file (DELETE).
    renderLive(routing) {
      const val = routing.settings, src = routing.sources;
      const store = (key, value) =>
        this.act(key, () => api("PUT", "/admin/routing/settings/" + key, { value }));
      const from = (key) => h("span", { class: "badge", id: "from-" + key.replace(/\W/g, "-") }, src[key]);
      const back = (key, id) => h("button", {
        type: "button", id: "clear-" + id, disabled: src[key] !== "stored",
        onclick: () => this.act(key + " back to the file", () => api("DELETE", "/admin/routing/settings/" + key)),
      }, "Back to the file");
      const form = (id, submit, ...kids) => {
        const f = h("form", { id: id + "-form" }, kids);
        f.addEventListener("submit", (e) => {
          e.preventDefault();
          submit();
        });
        return f;
      };
      const list = (key, id, label) => {
        const boxes = [...new Set([...boot.models, ...val[key]])].map((m) =>
          h("input", { type: "checkbox", id: id + "-" + m, value: m, checked: val[key].includes(m) }));
        return form(id, () => store(key, boxes.filter((b) => b.checked).map((b) => b.value)),
          h("fieldset", {}, h("legend", {}, label + " ", from(key)),
            h("div", { class: "row" }, boxes.map((b) => h("label", { for: b.id }, b, " " + b.value))),
            h("div", { class: "row" }, h("button", { type: "submit", id: "save-" + id }, "Save"), back(key, id))));
      };
      const usdInput = (id, value, label) => h("input", {
        type: "number", id, min: "0", step: "any", inputmode: "decimal", placeholder: "no limit",
        value: value === null || value === undefined ? "" : value, "aria-label": label,
      });
      const amount = (key, id, label) => {
        const input = usdInput(id, val[key], label);
        return form(id, () => store(key, input.value === "" ? null : Number(input.value)),
          h("div", { class: "row" }, h("label", { for: id }, label + " (USD) "), input, from(key),
            h("button", { type: "submit", id: "save-" + id }, "Save"), back(key, id)));
      };
      const tasks = boot.tasks.map((t) => usdInput("task-budget-" + t, val["budget.task_daily_usd"][t], "Daily USD for " + t));
      const taskForm = form("task-budgets", () => store("budget.task_daily_usd", Object.fromEntries(
        tasks.filter((i) => i.value !== "").map((i) => [i.id.slice("task-budget-".length), Number(i.value)]))),
        table("Daily budget per task type", ["Task", "USD"], boot.tasks.map((t, i) => [t, tasks[i]])),
        h("div", { class: "row" }, from("budget.task_daily_usd"),
          h("button", { type: "submit", id: "save-task-budgets" }, "Save task budgets"),
          back("budget.task_daily_usd", "task-budgets")));
      put(this.live,
        h("h3", {}, "Allow, block and budgets"),
        h("p", { class: "note" }, "Applied from the next request on; an empty budget means no limit. " +
          "Per-key budgets belong to the keys."),
        list("routing.allow", "allow", "Allowed models (none ticked: every model)"),
        list("routing.block", "block", "Blocked models"),
        amount("budget.daily_usd", "budget-daily", "Daily budget"),
        amount("budget.weekly_usd", "budget-weekly", "Weekly budget"),
        amount("budget.monthly_usd", "budget-monthly", "Monthly budget"),
        taskForm);
    },
    async refreshKeys() {
      this.renderKeys(await api("GET", "/admin/keys"));
    },
    renderKeys(keys) {
      put(this.keyTable, 
        table("Keys", ["Name", "Source", "Policy", ""], keys.keys.map((k) => [
          k.name, k.source, JSON.stringify(k.policy),
          k.source === "store"
            ? h("button", { type: "button", onclick: () => this.act("revoke " + k.name, () => api("DELETE", "/admin/keys/" + encodeURIComponent(k.name))) }, "Revoke")
            : "config file",
        ]))
      );
    },
  };

  // ---------------------------------------------------------------- playground
  views.playground = {
    init(body) {
      this.prompt = h("textarea", { id: "prompt", rows: "5", required: true, placeholder: "Type a prompt" });
      this.model = h("select", { id: "route-model" },
        ["auto", ...boot.profiles.map((p) => "auto:" + p), ...boot.models].map((m) => h("option", { value: m }, m)));
      this.work = h("select", { id: "work-class" }, h("option", { value: "" }, "(classify it)"), boot.tasks.map((t) => h("option", { value: t }, t)));
      const form = h("form", { id: "playground-form" },
        h("label", { for: "prompt" }, "Prompt"), this.prompt,
        h("div", { class: "row" },
          h("label", { for: "route-model" }, "Model "), this.model,
          h("label", { for: "work-class" }, "Task "), this.work,
          h("button", { type: "submit" }, "Route it")));
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        this.route();
      });
      this.out = h("div", { id: "decision", "aria-live": "polite" });
      body.append(form, this.out);
    },
    update() {},
    refresh() {},
    async route() {
      const req = { model: this.model.value, messages: [{ role: "user", content: this.prompt.value }] };
      if (this.work.value) req.signals = { work_class: this.work.value };
      let d;
      try {
        d = await api("POST", "/admin/route", req);
      } catch (err) {
        if (!err.data || err.data.error) {
          put(this.out, h("p", { class: "error" }, err.message));
          return;
        }
        d = err.data;
      }
      const c = d.classification;
      put(this.out,
        h("dl", {},
          h("dt", {}, "Model"), h("dd", { id: "decided-model" }, d.model ? d.model + " on " + d.backend + " (" + d.locality + ")" : "none can take it"),
          h("dt", {}, "Tier"), h("dd", {}, d.tier || "–"),
          h("dt", {}, "Rule"), h("dd", {}, d.rule || "–"),
          h("dt", {}, "Profile"), h("dd", {}, d.profile || "–"),
          h("dt", {}, "Classification"), h("dd", {}, c ? `${c.complexity} ${c.task_type}, ~${c.token_estimate} tokens${c.sensitive ? ", sensitive" : ""}` : "–"),
          h("dt", {}, "Reason"), h("dd", {}, d.reason)),
        table("Candidates, in order", ["Model", "Backend", "Locality"], d.candidates.map((x) => [x.model, x.backend, x.locality])),
        table("Excluded", ["Model", "Why"], d.excluded.map((x) => [x.model, x.why]))
      );
    },
  };

  // ---------------------------------------------------------------- shell
  const refreshing = {};
  async function refresh(name) {
    if (refreshing[name]) return;
    refreshing[name] = true;
    try {
      await views[name].refresh();
    } catch (err) {
      const msg = document.querySelector(`#view-${name} .body`);
      msg.prepend(h("p", { class: "error" }, "Could not load: " + err.message));
    } finally {
      refreshing[name] = false;
    }
  }

  function show(name, focus) {
    if (!views[name]) name = "overview";
    current = name;
    for (const sec of document.querySelectorAll("section.view")) sec.hidden = sec.id !== "view-" + name;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.view === name) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    views[name].update();
    if (views[name].refresh) refresh(name);
    if (focus) document.getElementById("h-" + name).focus();
  }

  let lastRows = null;
  function onState(next) {
    const moved = state !== null && next.ledger_rows !== lastRows;
    state = next;
    lastRows = next.ledger_rows;
    document.getElementById("live").textContent = "live";
    views[current].update();
    // New rows in the ledger: re-read what is drawn from it (the event says when).
    if (moved && ["overview", "requests"].includes(current)) refresh(current);
  }

  function listen() {
    const es = new EventSource("/admin/events");
    es.addEventListener("state", (e) => onState(JSON.parse(e.data)));
    es.addEventListener("bye", () => {
      document.getElementById("live").textContent = "the gateway is shutting down";
      es.close();
      setTimeout(listen, 5000);
    });
    es.addEventListener("error", () => {
      document.getElementById("live").textContent = "reconnecting…";
    });
  }

  function startDashboard() {
    for (const [name, view] of Object.entries(views)) {
      view.init(document.querySelector(`#view-${name} .body`));
    }
    const logout = document.getElementById("logout");
    if (logout) {
      logout.addEventListener("click", async () => {
        await api("POST", "/ui/logout", {});
        location.reload();
      });
    }
    window.addEventListener("hashchange", () => show(location.hash.slice(1), true));
    show(location.hash.slice(1), false);
    listen();
  }

  function startLogin() {
    const form = document.getElementById("login");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api("POST", "/ui/login", { token: document.getElementById("token").value });
        location.reload();
      } catch (err) {
        document.getElementById("login-error").textContent = err.message;
      }
    });
  }

  if (document.body.dataset.page === "login") startLogin();
  else startDashboard();
})();
