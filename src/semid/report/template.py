"""The HTML page of a report: one Jinja2 template, CSS inline, nothing fetched from anywhere.

The Content-Security-Policy forbids every load but inline styles and ``data:`` images, so even a
link or image that slipped in from data could not reach the network."""

from __future__ import annotations

CSS = """
:root { --fg: #1d2329; --muted: #5b6670; --line: #d9dee3; --head: #f3f5f7; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); }
header { padding: 18px 32px; border-bottom: 1px solid var(--line); background: var(--head); }
header h1 { margin: 0; font-size: 24px; }
.layout { display: flex; align-items: flex-start; }
nav { position: sticky; top: 0; flex: 0 0 260px; max-height: 100vh; overflow-y: auto; padding: 16px; font-size: 13px;
      border-right: 1px solid var(--line); }
nav ul { list-style: none; margin: 0; padding: 0; }
nav li.l3 { padding-left: 14px; }
nav a { color: var(--accent); text-decoration: none; }
main { flex: 1; min-width: 0; padding: 8px 32px 48px; max-width: 1250px; }
h2 { margin-top: 36px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { margin-top: 26px; }
h4, h5, h6 { margin: 18px 0 6px; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--head); padding: 1px 4px;
       border-radius: 3px; }
pre { background: var(--head); padding: 10px; overflow-x: auto; border-radius: 4px; }
pre code { padding: 0; white-space: pre; }
table { display: block; overflow-x: auto; border-collapse: collapse; margin: 10px 0 16px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; vertical-align: top; }
th { background: var(--head); text-align: left; }
tbody tr:nth-child(even) { background: #fafbfc; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; max-height: 560px; width: auto; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; }
.intro { color: var(--fg); }
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="generator" content="semid report">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<header><h1>{{ title }}</h1></header>
<div class="layout">
<nav aria-label="contents"><ul>
{%- for s in sections if s.level <= 3 %}
<li class="l{{ s.level }}"><a href="#{{ s.anchor }}">{{ s.title }}</a></li>
{%- endfor %}
</ul></nav>
<main>
<div class="intro">{{ intro }}</div>
{%- for s in sections %}
<section id="{{ s.anchor }}" data-level="{{ s.level }}">
<h{{ s.level }}>{{ s.title }}</h{{ s.level }}>
{{ s.body }}
</section>
{%- endfor %}
</main>
</div>
</body>
</html>
"""

FIGURE = """<figure><img src="data:image/png;base64,{{ data }}" alt="{{ caption }}" data-name="{{ name }}">
<figcaption>{{ caption }}</figcaption></figure>
"""
