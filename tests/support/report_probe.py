"""The render probe the report tests inject into the page (``write_report(..., probe_js=RENDER_PROBE_JS)``).

Run by the browser at the end of the body, it marks each chart with what was actually drawn, so a
headless browser's DOM dump (``chromium --dump-dom``) can tell a drawn chart from an empty one:

- ``data-drawn-elements`` on each ``figure.chart``: SVG elements with a non-empty bounding box;
- ``data-rendered-box`` on each ``figure.chart``: the chart's ``left,top,width,height`` in page pixels;
- ``data-document-height`` on ``body``: the page's full height (for a full-page screenshot).

Reports written for people never contain it.
"""

RENDER_PROBE_JS = """
(function () {
  var drawnTags = ['path', 'rect', 'line', 'polyline', 'polygon', 'circle', 'ellipse', 'text', 'use', 'image'];
  document.querySelectorAll('figure.chart').forEach(function (figure) {
    var svg = figure.querySelector('svg');
    if (!svg) { figure.setAttribute('data-drawn-elements', '0'); return; }
    var box = svg.getBoundingClientRect();
    var drawn = 0;
    svg.querySelectorAll(drawnTags.join(',')).forEach(function (el) {
      try { var b = el.getBBox(); if (b.width > 0 || b.height > 0) { drawn += 1; } } catch (e) {}
    });
    figure.setAttribute('data-drawn-elements', String(drawn));
    figure.setAttribute('data-rendered-box', [Math.round(box.left + window.scrollX), Math.round(box.top + window.scrollY),
                                              Math.round(box.width), Math.round(box.height)].join(','));
  });
  document.body.setAttribute('data-document-height', String(document.documentElement.scrollHeight));
})();
"""
