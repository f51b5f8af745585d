// gureum console: the little script the server-rendered pages use. Everything works as plain
// forms and links; this adds live updates (server-sent events), dialogs, confirmations,
// progress and results without a reload, table search and filters, the launch wizard's
// summary, the rule editor and the monitoring graphs. No libraries, no build step.
(function () {
  "use strict";
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var csrf = function () { var m = $('meta[name="csrf"]'); return m ? m.content : ""; };

  // --- toasts ---------------------------------------------------------------------------
  function toast(msg, ok) {
    var box = $("#toast");
    if (!box) return;
    var t = document.createElement("div");
    t.className = "toast " + (ok === false ? "err" : ok === true ? "ok" : "info");
    t.textContent = msg;
    box.appendChild(t);
    setTimeout(function () { t.classList.add("gone"); }, ok === false ? 9000 : 5000);
    setTimeout(function () { t.remove(); }, ok === false ? 9600 : 5600);
    return t;
  }
  try {
    var pending = sessionStorage.getItem("gureum-toast");
    if (pending) {
      sessionStorage.removeItem("gureum-toast");
      var p = JSON.parse(pending);
      document.addEventListener("DOMContentLoaded", function () { toast(p.message, p.ok); });
    }
  } catch (e) { /* storage unavailable */ }
  function toastAfterReload(message, ok) {
    try { sessionStorage.setItem("gureum-toast", JSON.stringify({ message: message, ok: ok })); } catch (e) {}
  }

  // --- confirmation dialog --------------------------------------------------------------
  function confirmBox(message, label) {
    return new Promise(function (resolve) {
      var d = document.createElement("dialog");
      d.className = "confirm";
      d.setAttribute("aria-label", "Confirm");
      var p = document.createElement("p");
      p.textContent = message;
      var row = document.createElement("div");
      row.className = "buttons";
      var no = document.createElement("button");
      no.type = "button"; no.textContent = "Cancel";
      var yes = document.createElement("button");
      yes.type = "button"; yes.className = "danger primary"; yes.textContent = label || "Confirm";
      row.appendChild(no); row.appendChild(yes);
      d.appendChild(p); d.appendChild(row);
      document.body.appendChild(d);
      var done = function (v) { d.close(); d.remove(); resolve(v); };
      no.addEventListener("click", function () { done(false); });
      yes.addEventListener("click", function () { done(true); });
      d.addEventListener("cancel", function (e) { e.preventDefault(); done(false); });
      d.showModal();
      yes.focus();
    });
  }

  function busy(btn, on) {
    if (!btn) return;
    if (on) {
      btn.dataset.label = btn.textContent;
      btn.setAttribute("aria-busy", "true");
      btn.disabled = true;
      btn.classList.add("working");
    } else {
      btn.removeAttribute("aria-busy");
      btn.classList.remove("working");
      btn.disabled = false;
    }
  }

  // --- forms: confirmation, progress, results -------------------------------------------
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.hasAttribute("data-keypair-form")) return keypairSubmit(ev, form);
    var btn = ev.submitter || $('button[type="submit"]', form);
    var message = (btn && btn.dataset.confirm) || form.dataset.confirm;
    var async = form.hasAttribute("data-async");
    if (!async) {
      if (message && !form.dataset.confirmed) {
        ev.preventDefault();
        confirmBox(message, btn && btn.textContent).then(function (ok) {
          if (!ok) return;
          form.dataset.confirmed = "1";
          if (btn && btn.name) {
            var h = document.createElement("input");
            h.type = "hidden"; h.name = btn.name; h.value = btn.value;
            form.appendChild(h);
          }
          form.submit();
        });
        return;
      }
      // A plain post: show that it is on its way.
      setTimeout(function () { busy(btn, true); }, 0);
      return;
    }
    ev.preventDefault();
    var go = function () {
      var body = new URLSearchParams(new FormData(form));
      if (btn && btn.name) body.append(btn.name, btn.value);
      busy(btn, true);
      var progress = toast((btn ? btn.textContent.trim() : "Working") + "…", null);
      fetch(form.getAttribute("action"), {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf() }
      }).then(function (r) {
        return r.json().catch(function () { return { ok: false, message: "HTTP " + r.status }; });
      }).then(function (res) {
        if (progress) progress.remove();
        busy(btn, false);
        if (form.dataset.selection) {
          toast(res.message, res.ok);
          updateSelection();
        } else if (res.ok) {
          toastAfterReload(res.message, true);
          location.href = res.location || location.href;
        } else {
          toast(res.message, false);
        }
      }).catch(function (e) {
        if (progress) progress.remove();
        busy(btn, false);
        toast("The request failed: " + e, false);
      });
    };
    if (message) confirmBox(message, btn && btn.textContent).then(function (ok) { if (ok) go(); });
    else go();
  });

  // --- create key pair: the private key downloads at once -------------------------------
  function keypairSubmit(ev, form) {
    ev.preventDefault();
    var btn = $('button[type="submit"]', form);
    var err = $(".field-error", form);
    if (err) err.remove();
    busy(btn, true);
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch", "X-CSRF-Token": csrf() }
    }).then(function (r) {
      var ct = r.headers.get("content-type") || "";
      if (ct.indexOf("application/json") === 0) {
        return r.json().then(function (res) { throw res; });
      }
      var cd = r.headers.get("content-disposition") || "";
      var m = /filename="([^"]+)"/.exec(cd);
      var name = r.headers.get("x-key-name");
      return r.blob().then(function (b) { return { blob: b, file: m ? m[1] : "key.pem", name: name }; });
    }).then(function (res) {
      busy(btn, false);
      var a = document.createElement("a");
      a.href = URL.createObjectURL(res.blob);
      a.download = res.file;
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      var dlg = form.closest("dialog");
      if (dlg) dlg.close();
      form.reset();
      var sel = $("#key_name");
      if (sel) {
        var o = document.createElement("option");
        o.value = res.name; o.textContent = res.name;
        sel.appendChild(o);
        sel.value = res.name;
        sel.dispatchEvent(new Event("change", { bubbles: true }));
        toast("Created key pair " + res.name + ": " + res.file + " downloaded. Keep it safe; it cannot be downloaded again.", true);
      } else {
        toastAfterReload("Created key pair " + res.name + ": " + res.file + " downloaded.", true);
        setTimeout(function () { location.reload(); }, 300);
      }
    }).catch(function (res) {
      busy(btn, false);
      var input = $('[name="key_name"]', form);
      var p = document.createElement("p");
      p.className = "field-error"; p.setAttribute("role", "alert");
      p.textContent = (res && res.message) || String(res);
      if (input) { input.setAttribute("aria-invalid", "true"); input.insertAdjacentElement("afterend", p); input.focus(); }
    });
  }

  // --- dialogs, menus, copy, tabs -------------------------------------------------------
  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target : ev.target.parentElement;
    if (!t) return;
    var open = t.closest("[data-open]");
    if (open) {
      var d = $(open.dataset.open);
      if (d && d.showModal) { d.showModal(); var f = $("input:not([type=hidden]),select,textarea", d); if (f) f.focus(); }
      return;
    }
    if (t.closest("[data-close]")) { var dd = t.closest("dialog"); if (dd) dd.close(); return; }
    var copy = t.closest("[data-copy]");
    if (copy) {
      var text = $(copy.dataset.copy).textContent.trim();
      (navigator.clipboard ? navigator.clipboard.writeText(text) : Promise.reject()).then(
        function () { toast("Copied to the clipboard", true); },
        function () { var r = document.createRange(); r.selectNodeContents($(copy.dataset.copy)); getSelection().removeAllRanges(); getSelection().addRange(r); });
      return;
    }
    var menu = t.closest("button.menu");
    if (menu) {
      var side = $("#side");
      var o = side.classList.toggle("open");
      menu.setAttribute("aria-expanded", o ? "true" : "false");
      return;
    }
    var tab = t.closest("[data-tab]");
    if (tab) {
      ev.preventDefault();
      $$("[data-tab]").forEach(function (x) { x.setAttribute("aria-selected", x === tab ? "true" : "false"); });
      $$(".tabpanel").forEach(function (p) { p.hidden = p.id !== tab.dataset.tab; });
      var first = $("#" + tab.dataset.tab + " input:not([type=hidden])");
      if (first) first.focus();
      return;
    }
    var add = t.closest("[data-add-row]");
    if (add) { addRule($(add.dataset.addRow)); return; }
    var rm = t.closest("[data-remove-row]");
    if (rm) { rm.closest("tr").remove(); return; }
    var addTag = t.closest("[data-add-tag]");
    if (addTag) {
      var rows = $(addTag.dataset.addTag);
      var row = rows.lastElementChild.cloneNode(true);
      $$("input", row).forEach(function (i) { i.value = ""; });
      rows.appendChild(row);
      $("input", row).focus();
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    $$("dialog[open]").forEach(function (d) { d.close(); d.showModal(); });
  });

  // --- tables: search, state filter, selection ------------------------------------------
  function refilter() {
    $$("[data-filter]").forEach(function (input) {
      var table = $(input.dataset.filter);
      if (!table) return;
      var q = input.value.trim().toLowerCase();
      var stateSel = $('[data-state-filter="' + input.dataset.filter + '"]');
      var st = stateSel ? stateSel.value : "";
      var shown = 0;
      var rows = $$("tbody tr:not(.empty)", table);
      rows.forEach(function (tr) {
        var vis = (!st || !tr.dataset.state || tr.dataset.state === st) &&
          (!q || (tr.dataset.search || tr.textContent.toLowerCase()).indexOf(q) >= 0);
        if (tr.hidden === vis) tr.hidden = !vis;
        if (vis) shown++;
      });
      var empty = $("tbody tr.empty", table);
      if (empty) empty.hidden = rows.length > 0;
      var count = $("#instance-count");
      if (count && table.id === "instances") count.textContent = "(" + shown + ")";
    });
  }
  document.addEventListener("input", function (ev) {
    if (ev.target.matches("[data-filter]")) refilter();
    // A source typed by hand: the source-type select follows it.
    if (ev.target.matches('.source input[name="source"]')) {
      var kind = ev.target.parentElement.querySelector("[data-source-kind]");
      var match = $$("option", kind).filter(function (o) { return o.value === ev.target.value.trim(); })[0];
      kind.value = match ? match.value : "custom";
    }
  });
  document.addEventListener("change", function (ev) {
    var t = ev.target;
    if (t.matches("[data-state-filter]")) {
      refilter();
      var u = new URL(location.href);
      if (t.value) u.searchParams.set("state", t.value); else u.searchParams.delete("state");
      history.replaceState(null, "", u);
    }
    if (t.matches("[data-select-all]")) {
      $$("tbody tr:not([hidden]) input[type=checkbox]", $(t.dataset.selectAll)).forEach(function (c) { c.checked = t.checked; });
    }
    if (t.matches("[data-rule-type]")) ruleType(t);
    if (t.matches("[data-autosubmit]")) t.form.submit();
    if (t.matches("[data-source-kind]")) {
      var input = t.parentElement.querySelector('input[name="source"]');
      if (t.value !== "custom") input.value = t.value;
      input.focus();
    }
    if (t.matches("[data-volume-type]")) volumeType(t);
    if (t.matches("[data-device-into]")) {
      var o = t.options[t.selectedIndex];
      if (o && o.dataset.device) $(t.dataset.deviceInto).value = o.dataset.device;
    }
    if (t.matches("[data-file-into]")) {
      var f = t.files && t.files[0];
      if (f) f.text().then(function (txt) { $(t.dataset.fileInto).value = txt.trim(); });
    }
    updateSelection();
    wizard();
  });

  // A volume type's fields: IOPS and throughput only for the types that take them (hidden
  // fields are disabled, so they are not posted).
  function volumeType(sel) {
    $$("[data-for-types]", sel.form).forEach(function (box) {
      var on = box.dataset.forTypes.split(" ").indexOf(sel.value) >= 0;
      box.hidden = !on;
      $$("input", box).forEach(function (i) { i.disabled = !on; });
    });
  }

  function updateSelection() {
    $$("form[data-selection]").forEach(function (form) {
      var states;
      if (form.dataset.selection === "single") {
        var s = $("#summary");
        states = s ? [s.dataset.state] : [];
      } else {
        states = $$('input[name="id"]:checked').map(function (c) { return c.closest("tr").dataset.state; });
        var info = $(".selinfo", form);
        if (info) info.textContent = states.length ? states.length + " selected" : "";
      }
      $$("button[data-needs]", form).forEach(function (b) {
        if (b.getAttribute("aria-busy") === "true") return;
        var needs = b.dataset.needs.split(" ");
        b.disabled = !states.some(function (s) { return needs.indexOf(s) >= 0; });
      });
    });
    $$("button[data-open][data-needs]").forEach(function (b) {
      var s = $("#summary");
      if (s) b.disabled = b.dataset.needs.split(" ").indexOf(s.dataset.state) < 0;
    });
  }

  // --- live updates ---------------------------------------------------------------------
  function applyOps(ops) {
    ops.forEach(function (op) {
      if (op.op === "replace") {
        var el = $(op.sel);
        if (el) el.outerHTML = op.html;
      } else if (op.op === "row" || op.op === "rows" || op.op === "remove") {
        var table = op.table || "#instances";
        var tbody = $(table + " tbody");
        if (!tbody) return;
        // A row whose dialog is open waits for the next change rather than closing it.
        var open = $('tr[data-id="' + op.id + '"] dialog[open]', tbody);
        if (open && op.op === "row") return;
        var checked = $$('input[name="id"]:checked', tbody).map(function (c) { return c.value; });
        if (op.op === "rows") {
          tbody.outerHTML = op.html;
          tbody = $(table + " tbody");
        } else if (op.op === "remove") {
          var gone = $('tr[data-id="' + op.id + '"]', tbody);
          if (gone) gone.remove();
        } else {
          var tmp = document.createElement("tbody");
          tmp.innerHTML = op.html;
          var row = tmp.firstElementChild;
          var old = $('tr[data-id="' + op.id + '"]', tbody);
          if (old) old.replaceWith(row); else tbody.insertBefore(row, tbody.firstElementChild);
          row.classList.add("changed");
          setTimeout(function () { row.classList.remove("changed"); }, 1200);
        }
        $$('input[name="id"]', tbody).forEach(function (c) { c.checked = checked.indexOf(c.value) >= 0; });
        var empty = $("tr.empty", tbody);
        if (empty) empty.hidden = $$("tr[data-id]", tbody).length > 0;
      }
    });
    refilter();
    updateSelection();
  }
  // One stream per visible page. A hidden tab lets its stream go (browsers allow only a few
  // connections per site over HTTP/1.1) and catches up in full when it is shown again.
  var live = document.body && document.body.dataset.live;
  var es = null;
  function connect(query) {
    es = new EventSource("/console/events?" + query);
    es.addEventListener("patch", function (e) { applyOps(JSON.parse(e.data).ops); });
    es.addEventListener("metrics", function (e) { addPoint(JSON.parse(e.data)); });
  }
  if (live && window.EventSource) {
    connect(live);
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        if (es) { es.close(); es = null; }
      } else if (!es) {
        connect(live.replace(/since=\d+/, "since=0"));
      }
    });
    window.addEventListener("pagehide", function () { if (es) es.close(); });
  }

  // --- monitoring graphs ----------------------------------------------------------------
  var points = [];
  var dataEl = $("#metrics-data");
  if (dataEl) { try { points = JSON.parse(dataEl.textContent); } catch (e) { points = []; } }
  function fmt(v, unit) {
    if (unit === "B/s") {
      if (v >= 1048576) return (v / 1048576).toFixed(1) + " MiB/s";
      if (v >= 1024) return (v / 1024).toFixed(1) + " KiB/s";
      return Math.round(v) + " B/s";
    }
    return (Math.round(v * 10) / 10) + " " + unit;
  }
  function drawGraphs() {
    $$("figure.graph").forEach(function (fig) {
      var svg = $("svg", fig);
      var key = fig.dataset.metric, unit = fig.dataset.unit;
      var W = 320, H = 120, P = 4;
      svg.setAttribute("viewBox", "0 0 " + W + " " + H);
      var vals = points.map(function (p) { return p[key]; });
      var limit = fig.dataset.limit && points.length ? points[points.length - 1][fig.dataset.limit] : 0;
      var max = Math.max(fig.dataset.max ? +fig.dataset.max : 0, Math.max.apply(null, vals.concat([1])) * 1.15);
      var last = vals.length ? vals[vals.length - 1] : null;
      var cap = $("figcaption", fig);
      cap.dataset.now = last === null ? "no data yet" : fmt(last, unit);
      if (vals.length < 2) {
        svg.innerHTML = '<text x="' + W / 2 + '" y="' + H / 2 + '" text-anchor="middle" class="nodata">Collecting data…</text>';
        return;
      }
      var t0 = points[0].t, t1 = points[points.length - 1].t, span = Math.max(t1 - t0, 1);
      var xy = points.map(function (p) {
        return [P + (W - 2 * P) * (p.t - t0) / span, H - P - (H - 2 * P) * p[key] / max];
      });
      var line = xy.map(function (q, i) { return (i ? "L" : "M") + q[0].toFixed(1) + " " + q[1].toFixed(1); }).join(" ");
      var area = line + " L" + xy[xy.length - 1][0].toFixed(1) + " " + (H - P) + " L" + xy[0][0].toFixed(1) + " " + (H - P) + " Z";
      var html = '<path class="area" d="' + area + '"/><path class="line" d="' + line + '"/>';
      if (limit && limit < max) {
        var y = H - P - (H - 2 * P) * limit / max;
        html += '<line class="limit" x1="0" x2="' + W + '" y1="' + y + '" y2="' + y + '"/>';
      }
      html += '<text x="' + (W - P) + '" y="12" text-anchor="end" class="max">' + fmt(max, unit) + "</text>";
      svg.innerHTML = html;
    });
  }
  function addPoint(p) {
    points.push(p);
    if (points.length > 120) points.shift();
    drawGraphs();
  }

  // --- security group rule editor -------------------------------------------------------
  function ruleType(sel) {
    var o = sel.options[sel.selectedIndex];
    var tr = sel.closest("tr");
    var port = $("[data-port-input]", tr);
    $("[data-proto]", tr).textContent = o.dataset.proto;
    if (o.dataset.port) { port.value = o.dataset.port; port.readOnly = true; }
    else { if (port.readOnly) port.value = ""; port.readOnly = false; port.focus(); }
  }
  var rowSeq = 1000;
  function addRule(tbody) {
    var tpl = $("#rule-template");
    var row = tpl.content.firstElementChild.cloneNode(true);
    rowSeq++;
    $$("[id]", row).forEach(function (el) { el.id = el.id.replace("999", String(rowSeq)); });
    tbody.appendChild(row);
    $("select", row).focus();
  }

  // --- launch wizard --------------------------------------------------------------------
  function wizard() {
    var form = $("#launch");
    if (!form) return;
    var mode = (form.querySelector('input[name="sg_mode"]:checked') || {}).value;
    $$("[data-when]", form).forEach(function (el) {
      var kv = el.dataset.when.split("=");
      el.hidden = (kv[0] === "sg_mode" ? mode : "") !== kv[1];
    });
    var vpc = $("#vpc_id").value;
    $$("#subnet_id option[data-vpc]").forEach(function (o) { o.hidden = o.dataset.vpc !== vpc; });
    var sn = $("#subnet_id");
    if (sn.selectedOptions[0] && sn.selectedOptions[0].hidden) sn.value = "";
    $$(".sg-select [data-vpc]").forEach(function (l) { l.hidden = l.dataset.vpc !== vpc; });
    var img = form.querySelector('input[name="image_id"]:checked');
    $("#sum-image").textContent = img ? img.dataset.label : "–";
    var type = form.querySelector('input[name="instance_type"]:checked');
    $("#sum-type").textContent = type ? type.value : "–";
    var sg;
    if (mode === "create") {
      var r = [];
      if (form.allow_ssh.checked) r.push("SSH");
      if (form.allow_https.checked) r.push("HTTPS");
      if (form.allow_http.checked) r.push("HTTP");
      sg = "New security group" + (r.length ? " (" + r.join(", ") + ")" : "");
    } else {
      sg = $$('input[name="sg_id"]:checked').map(function (c) { return c.parentElement.textContent.trim().split(" ")[0]; }).join(", ") || "none selected";
    }
    $("#sum-sg").textContent = sg;
    $("#sum-storage").textContent = "1 volume(s) – " + ($("#volume_size").value || "?") + " GiB";
  }
  document.addEventListener("input", function (ev) { if (ev.target.closest("#launch")) wizard(); });

  document.addEventListener("DOMContentLoaded", function () {
    refilter();
    updateSelection();
    wizard();
    drawGraphs();
  });
})();
