// edge-ecg live page: reads /events (Server-Sent Events) and draws; it never sends anything back.
"use strict";
(function () {
  const SPAN_S = 10;            // seconds of strip on screen
  const KEEP_S = 12;            // seconds of strip kept
  const MAX_EVENTS = 40;
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token");
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const S = { fs: 180, colors: {}, classes: [], strips: [], beats: [], ended: false, lastStatus: null };
  const pub = (window.edgeEcg = { drawn: {}, ticks: 0, frames: 0, state: "connecting" });

  function setState(state, text) {
    document.body.dataset.state = state;
    pub.state = state;
    $("state").textContent = state;
    const banner = $("banner");
    banner.hidden = !text;
    banner.textContent = text || "";
  }

  function clock(t) {
    t = Math.max(0, t || 0);
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = Math.floor(t % 60);
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function color(label) { return S.colors[label] || "#9ca3af"; }

  function addStrip(p) {
    if (!p || !p.v || !p.v.length) return;
    S.strips.push(p);
    const end = p.i0 + p.v.length;
    while (S.strips.length && S.strips[0].i0 + S.strips[0].v.length < end - KEEP_S * p.fs) S.strips.shift();
  }

  function addBeats(list) {
    for (const b of list || []) S.beats.push(b);
    const end = lastIndex();
    while (S.beats.length && (S.beats[0].i < end - KEEP_S * S.fs || S.beats.length > 400)) S.beats.shift();
  }

  function lastIndex() {
    const p = S.strips[S.strips.length - 1];
    return p ? p.i0 + p.v.length : 0;
  }

  function addEvents(list) {
    const ol = $("events");
    for (const e of list || []) {
      const li = document.createElement("li");
      li.className = "ev " + e.kind;
      const time = document.createElement("time");
      time.textContent = clock(e.t);
      const span = document.createElement("span");
      span.textContent = e.text;
      if (e.kind === "V" || e.kind === "S") span.style.color = color(e.kind);
      li.append(time, span);
      ol.prepend(li);
    }
    while (ol.children.length > MAX_EVENTS) ol.lastChild.remove();
  }

  function legend() {
    const el = $("legend");
    el.textContent = "";
    for (const c of S.classes) {
      const s = document.createElement("span");
      const i = document.createElement("i");
      i.style.background = color(c);
      s.append(i, c);
      el.append(s);
    }
  }

  function counts(c) {
    const el = $("counts");
    el.textContent = "";
    for (const k of S.classes) {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.id = "count-" + k;
      const b = document.createElement("b");
      b.style.background = color(k);
      b.textContent = k;
      chip.append(b, String((c && c[k]) || 0));
      el.append(chip);
    }
  }

  function status(st) {
    S.lastStatus = st;
    $("hr").textContent = st.hr;
    $("beats").textContent = st.beats;
    counts(st.counts);
    $("quality").textContent = st.lost ? "lost" : st.quality;
    $("time").textContent = clock(st.t);
    $("lat50").textContent = st.latency.p50;
    $("lat99").textContent = st.latency.p99;
    const body = $("stages").tBodies[0];
    body.textContent = "";
    for (const [name, v] of Object.entries(st.stages || {})) {
      const tr = body.insertRow();
      tr.insertCell().textContent = name.replace("_", " ");
      tr.insertCell().textContent = v.p50 == null ? "-" : v.p50.toFixed(3);
      tr.insertCell().textContent = v.p99 == null ? "-" : v.p99.toFixed(3);
    }
    const dl = $("health");
    dl.textContent = "";
    const rows = [["source", S.source], ["state", st.lost || "receiving"], ["gaps", st.gaps],
      ["unclassified", st.unclassified], ["glitches", st.glitches], ["dropped samples", st.dropped]];
    for (const [k, v] of Object.entries(st.source_counters || {})) rows.push([k.replace(/_/g, " "), v]);
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      dl.append(dt, dd);
    }
    $("adapt").textContent = st.adapt ? "wearer: " + st.adapt : "";
    if (st.battery != null) {
      $("battery-tile").hidden = false;
      $("battery").textContent = st.battery + " %";
    }
    if (!S.ended) {
      if (st.lost) setState("lost", "signal lost: " + st.lost);
      else setState("live", "");
    }
  }

  // ---- the strip
  const canvas = $("strip");
  const ctx = canvas.getContext("2d");
  let lo = -1, hi = 1;

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const fs = S.fs, end = lastIndex(), start = end - SPAN_S * fs;
    const top = 22, plotH = h - top - 6;
    const x = (i) => ((i - start) / (SPAN_S * fs)) * w;
    // ECG paper: 0.2 s columns, a darker one every second
    for (let k = Math.ceil(start / (0.2 * fs)); k * 0.2 * fs <= end; k++) {
      const i = k * 0.2 * fs;
      ctx.strokeStyle = k % 5 === 0 ? "#e89aa7" : "#f6d5db";
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(x(i), top); ctx.lineTo(x(i), h); ctx.stroke();
    }
    // amplitude: follow the visible range, smoothly
    let mn = Infinity, mx = -Infinity;
    for (const p of S.strips) {
      if (p.i0 + p.v.length < start) continue;
      for (let k = Math.max(0, Math.floor(start - p.i0)); k < p.v.length; k++) {
        const v = p.v[k];
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
    }
    if (mn < mx) {
      const pad = 0.08 * (mx - mn);
      lo += 0.3 * (mn - pad - lo);
      hi += 0.3 * (mx + pad - hi);
    }
    const y = (v) => top + plotH * (1 - (v - lo) / (hi - lo || 1));
    ctx.strokeStyle = "#1d2330";
    ctx.lineWidth = 1.3;
    ctx.beginPath();
    let prevEnd = null;
    for (const p of S.strips) {
      if (p.i0 + p.v.length < start) continue;
      const k0 = Math.max(0, Math.floor(start - p.i0));
      for (let k = k0; k < p.v.length; k++) {
        const i = p.i0 + k;
        const joined = k > k0 || (k === 0 && prevEnd === p.i0);  // a gap in the stream breaks the line
        if (joined) ctx.lineTo(x(i), y(p.v[k]));
        else ctx.moveTo(x(i), y(p.v[k]));
      }
      prevEnd = p.i0 + p.v.length;
    }
    ctx.stroke();
    // beats: a tick at the R peak and the class letter above, in the class colour
    const drawn = {};
    const letters = [];
    ctx.font = "bold 14px system-ui, sans-serif";
    ctx.textAlign = "center";
    for (const b of S.beats) {
      if (b.i < start || b.i > end) continue;
      const label = b.l || "·";
      const c = b.l ? color(b.l) : "#c0c4cc";
      ctx.strokeStyle = c;
      ctx.globalAlpha = 0.55;
      ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(x(b.i), top); ctx.lineTo(x(b.i), h); ctx.stroke();
      ctx.globalAlpha = 1;
      ctx.fillStyle = c;
      ctx.fillText(label, x(b.i), 16);
      drawn[label] = (drawn[label] || 0) + 1;
      letters.push(label);
    }
    pub.drawn = drawn;
    pub.frames += 1;
    canvas.dataset.labels = letters.join("");
  }

  function frame() { draw(); setTimeout(() => requestAnimationFrame(frame), 100); }

  // ---- the stream
  function hello(st) {
    S.fs = st.fs || S.fs;
    S.colors = st.colors || {};
    S.classes = st.classes || [];
    S.source = st.source;
    S.strips = [];
    S.beats = [];
    $("source").textContent = "· " + (st.source || "");
    document.title = "edge-ecg · " + (st.source || "live");
    legend();
    counts({});
    $("events").textContent = "";
    for (const p of st.strips || []) addStrip(p);
    addBeats(st.beats);
    addEvents(st.events);
    if (st.status && st.status.beats !== undefined) status(st.status);
    else setState("live", "");
    if (st.status && st.status.ended) end(st.status.ended, false);
  }

  function end(msg, withEvents) {
    S.ended = true;
    if (withEvents) addEvents(msg.events);
    setState("ended", "stream ended: " + msg.reason);
    if (es) es.close();
  }

  let es = null;
  function connect() {
    es = new EventSource("events" + query);
    es.addEventListener("hello", (m) => hello(JSON.parse(m.data)));
    es.addEventListener("tick", (m) => {
      const d = JSON.parse(m.data);
      addStrip(d.strip);
      addBeats(d.beats);
      addEvents(d.events);
      pub.ticks += 1;
    });
    es.addEventListener("status", (m) => { const d = JSON.parse(m.data); addEvents(d.events); status(d); });
    es.addEventListener("end", (m) => end(JSON.parse(m.data), true));
    es.onerror = () => {
      if (!S.ended) setState("disconnected", "connection to the stream lost: retrying");
    };
  }
  connect();
  frame();
})();
