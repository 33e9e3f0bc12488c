/* Syllabus web UI: metric charts, histograms, parallel coordinates and small table helpers.
   Data come from the page (JSON in data- attributes, HTML-escaped by the server) or from
   the UI's own JSON endpoints; nothing is loaded from another origin. */
(function () {
  "use strict";

  var plotConfig = { displaylogo: false, responsive: true };
  var layoutBase = {
    margin: { l: 50, r: 16, t: 32, b: 40 },
    font: { size: 11 },
    legend: { orientation: "h", y: -0.25, yanchor: "top" },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)"
  };
  var state = { axis: "step", smoothing: 0, log: false };
  var cache = {};
  var metricCharts = [];

  function json(el, name) {
    try {
      return JSON.parse(el.getAttribute(name));
    } catch (e) {
      return null;
    }
  }

  /* Plotly reads a few HTML-like tags in its labels; stored names are shown as written. */
  function esc(text) {
    return String(text === null || text === undefined ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function layout(extra) {
    return Object.assign({}, layoutBase, extra);
  }

  function fetchSeries(url) {
    if (!cache[url]) {
      cache[url] = fetch(url, { credentials: "same-origin" }).then(function (r) {
        if (!r.ok) {
          throw new Error("could not load " + url + " (" + r.status + ")");
        }
        return r.json();
      });
    }
    return cache[url];
  }

  /* Exponential moving average with the start debiased (as TensorBoard does). */
  function smooth(values, weight) {
    if (!weight) {
      return values;
    }
    var out = [];
    var last = 0;
    var n = 0;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (v === null || !isFinite(v)) {
        out.push(null);
        continue;
      }
      last = last * weight + (1 - weight) * v;
      n += 1;
      out.push(last / (1 - Math.pow(weight, n)));
    }
    return out;
  }

  function xs(series) {
    if (state.axis === "time") {
      return series.time.map(function (t) { return new Date(t); });
    }
    if (state.axis === "relative") {
      var t0 = series.time.length ? Math.min.apply(null, series.time) : 0;
      return series.time.map(function (t) { return (t - t0) / 1000; });
    }
    return series.step;
  }

  function drawMetric(chart) {
    var traces = chart.data.map(function (s) {
      return {
        x: xs(s),
        y: smooth(s.value, state.smoothing),
        name: esc(s.name),
        type: "scatter",
        mode: s.value.length === 1 ? "markers" : "lines"
      };
    });
    var xTitle = { step: "step", time: "time (UTC)", relative: "seconds since first point" }[state.axis];
    Plotly.react(chart.el, traces, layout({
      title: { text: esc(chart.title), font: { size: 13 } },
      margin: { l: 50, r: 16, t: 32, b: chart.data.length > 1 ? 90 : 40 },
      xaxis: { title: { text: xTitle }, type: state.axis === "time" ? "date" : "linear" },
      yaxis: { type: state.log ? "log" : "linear" },
      showlegend: chart.data.length > 1
    }), plotConfig);
  }

  function initMetricCharts() {
    document.querySelectorAll("[data-metric-chart]").forEach(function (el) {
      var series = json(el, "data-series") || [];
      var chart = { el: el, title: el.getAttribute("data-title"), data: [] };
      metricCharts.push(chart);
      Promise.all(series.map(function (s) {
        return fetchSeries(s.url).then(function (data) {
          return Object.assign({}, data, { name: s.name });
        });
      })).then(function (data) {
        chart.data = data;
        drawMetric(chart);
        el.setAttribute("data-drawn", "1");
      }).catch(function (err) {
        el.textContent = String(err.message || err);
        el.classList.add("chart-error");
      });
    });
    document.querySelectorAll("[data-chart-controls]").forEach(function (box) {
      box.addEventListener("input", function (event) {
        var control = event.target.getAttribute("data-control");
        if (control === "axis") {
          state.axis = event.target.value;
        } else if (control === "smoothing") {
          state.smoothing = parseFloat(event.target.value) || 0;
          var out = event.target.parentNode.querySelector("output");
          if (out) {
            out.textContent = state.smoothing.toFixed(2);
          }
        } else if (control === "log") {
          state.log = event.target.checked;
        } else {
          return;
        }
        metricCharts.forEach(function (c) {
          if (c.data.length) {
            drawMetric(c);
          }
        });
      });
    });
  }

  function initHistograms() {
    document.querySelectorAll("[data-histogram]").forEach(function (el) {
      var h = json(el, "data-histogram");
      if (!h) {
        return;
      }
      var trace = {
        x: h.width ? h.x : h.x.map(esc), y: h.y, type: "bar", marker: { color: "#4c78a8" }
      };
      if (h.width) {
        trace.width = h.width;
      }
      Plotly.newPlot(el, [trace], layout({
        title: { text: esc(h.column), font: { size: 12 } },
        margin: { l: 40, r: 8, t: 28, b: 30 },
        bargap: h.width ? 0 : 0.2
      }), plotConfig);
      el.setAttribute("data-drawn", "1");
    });
  }

  /* A few stops of the viridis scale, interpolated: colour by the last dimension. */
  var VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function viridis(t) {
    t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
    var i = Math.min(Math.floor(t), VIRIDIS.length - 2);
    var f = t - i;
    var c = VIRIDIS[i].map(function (v, k) { return Math.round(v + f * (VIRIDIS[i + 1][k] - v)); });
    return "rgb(" + c.join(",") + ")";
  }

  function range(values) {
    var finite = values.filter(function (v) { return v !== null && isFinite(v); });
    if (!finite.length) {
      return [0, 1];
    }
    return [Math.min.apply(null, finite), Math.max.apply(null, finite)];
  }

  /* Parallel coordinates drawn as SVG lines over one vertical axis per dimension (each
     scaled to its own range), so they need no WebGL. */
  function initParallel() {
    var el = document.querySelector("[data-parallel]");
    if (!el) {
      return;
    }
    var p = json(el, "data-parallel");
    if (!p || p.dimensions.length < 2) {
      return;
    }
    var dims = p.dimensions;
    var ranges = dims.map(function (d) { return range(d.values); });
    var scale = function (v, r) {
      if (v === null || !isFinite(v)) {
        return null;
      }
      return r[1] === r[0] ? 0.5 : (v - r[0]) / (r[1] - r[0]);
    };
    var label = function (d, v) {
      if (v === null) {
        return "—";
      }
      return d.ticktext ? esc(d.ticktext[v]) : String(+v.toPrecision(4));
    };
    var last = dims.length - 1;
    var traces = p.runs.map(function (name, i) {
      return {
        type: "scatter",
        mode: "lines+markers",
        name: esc(name),
        x: dims.map(function (_, k) { return k; }),
        y: dims.map(function (d, k) { return scale(d.values[i], ranges[k]); }),
        text: dims.map(function (d) { return esc(d.label) + " = " + label(d, d.values[i]); }),
        hovertemplate: "%{text}<extra>" + esc(name) + "</extra>",
        line: { color: viridis(scale(dims[last].values[i], ranges[last]) || 0), width: 2 },
        marker: { size: 5 }
      };
    });
    var annotations = [];
    var shapes = [];
    dims.forEach(function (d, k) {
      shapes.push({ type: "line", x0: k, x1: k, y0: 0, y1: 1, line: { color: "#888", width: 1 } });
      annotations.push({ x: k, y: 1.12, text: esc(d.label), showarrow: false, font: { size: 11 } });
      var lo = d.ticktext ? esc(d.ticktext[0]) : String(+ranges[k][0].toPrecision(4));
      var hi = d.ticktext ? esc(d.ticktext[d.ticktext.length - 1]) : String(+ranges[k][1].toPrecision(4));
      annotations.push({ x: k, y: 1.03, text: hi, showarrow: false, font: { size: 10, color: "#666" } });
      annotations.push({ x: k, y: -0.06, text: lo, showarrow: false, font: { size: 10, color: "#666" } });
    });
    Plotly.newPlot(el, traces, layout({
      margin: { l: 40, r: 40, t: 60, b: 40 },
      xaxis: { visible: false, range: [-0.3, last + 0.3] },
      yaxis: { visible: false, range: [-0.1, 1.15] },
      shapes: shapes,
      annotations: annotations,
      showlegend: p.runs.length <= 12,
      hovermode: "closest"
    }), plotConfig);
    el.setAttribute("data-drawn", "1");
  }

  /* Charts whose whole plotly spec the server wrote into the page. */
  function initPlots() {
    document.querySelectorAll("[data-plot]").forEach(function (el) {
      var spec = json(el, "data-plot");
      if (!spec) {
        return;
      }
      var extra = Object.assign({}, spec.layout || {});
      spec.data.forEach(function (t) { t.name = esc(t.name); });
      if (spec.data.length > 1) {
        extra.margin = { l: 50, r: 16, t: 32, b: 100 };
      }
      Plotly.newPlot(el, spec.data, layout(extra), plotConfig);
      el.setAttribute("data-drawn", "1");
    });
  }

  function initTraffic() {
    document.querySelectorAll("[data-traffic]").forEach(function (el) {
      var split = (json(el, "data-traffic") || []).filter(function (t) { return t.percent !== null; });
      if (!split.length) {
        return;
      }
      Plotly.newPlot(el, [{
        type: "pie",
        hole: 0.5,
        labels: split.map(function (t) { return esc(t.role + " " + t.model); }),
        values: split.map(function (t) { return t.percent; }),
        sort: false
      }], layout({ margin: { l: 10, r: 10, t: 10, b: 10 }, showlegend: true }), plotConfig);
      el.setAttribute("data-drawn", "1");
    });
  }

  function initRunSelection() {
    var button = document.querySelector("[data-compare-button]");
    if (!button) {
      return;
    }
    var boxes = function () {
      return document.querySelectorAll("input[name=runs][form=compare-form]");
    };
    var update = function () {
      var n = Array.prototype.filter.call(boxes(), function (b) { return b.checked; }).length;
      button.disabled = n < 2;
      button.textContent = n ? "Compare " + n + " selected" : "Compare selected";
    };
    document.addEventListener("change", function (event) {
      if (event.target.matches("[data-select-all]")) {
        boxes().forEach(function (b) { b.checked = event.target.checked; });
      }
      update();
    });
    update();
  }

  function initSmallHelpers() {
    document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
    document.querySelectorAll("[data-filter-table]").forEach(function (input) {
      var table = document.getElementById(input.getAttribute("data-filter-table"));
      input.addEventListener("input", function () {
        var q = input.value.toLowerCase();
        table.querySelectorAll("tbody tr").forEach(function (tr) {
          tr.hidden = q && tr.textContent.toLowerCase().indexOf(q) < 0;
        });
      });
    });
  }

  function start() {
    initSmallHelpers();
    initRunSelection();
    if (typeof Plotly !== "undefined") {
      initMetricCharts();
      initHistograms();
      initParallel();
      initTraffic();
      initPlots();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
