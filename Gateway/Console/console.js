// The OrleansIot console: a page per concern, each a client of the HTTP API as the OpenAPI document describes it.
// The API key lives in this tab's sessionStorage (never in a URL); every error the API answers is shown, never dropped.
'use strict';

const KEY = 'orleansiot.apiKey';
const PAGE_SIZE = 50;
let stopPage = () => {};   // what the current page must stop (timers) when the route changes
let notice = null;         // an error to show on the next page (a redirect would otherwise clear it)

// --- small helpers ----------------------------------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  const view = document.getElementById('view');
  view.replaceChildren(...nodes);
}

function pretty(value) {
  return value === undefined || value === null ? '—' : JSON.stringify(value, null, 2);
}

function time(value) {
  if (value === undefined || value === null || value === '') return '—';
  const date = typeof value === 'number' ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value);
  return isNaN(date) ? String(value) : date.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function showError(error) {
  const box = document.getElementById('error');
  box.textContent = error instanceof Error ? error.message : String(error);
  box.hidden = false;
}

function clearError() {
  const box = document.getElementById('error');
  box.hidden = true;
  box.textContent = '';
}

// --- the API ------------------------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, detail) {
    super(`${status} ${code}: ${detail}`);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Error(`The node cannot be reached (${method} ${path}): ${e.message}`);
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!response.ok) {
    const code = (json && (json.code || json.title)) || response.statusText;
    const detail = (json && (json.detail || json.message)) || text || 'no details';
    if (response.status === 401 && location.hash !== '#/signin') {
      sessionStorage.removeItem(KEY);
    }
    throw new ApiError(response.status, code, detail);
  }
  return json;
}

// Runs a page's loader; what it throws is shown.
async function guarded(action) {
  try {
    await action();
  } catch (e) {
    showError(e);
  }
}

// --- pages ----------------------------------------------------------------------------------------------------------------

function signInPage() {
  document.getElementById('nav').hidden = true;
  const input = el('input', { type: 'password', id: 'api-key', autocomplete: 'off', placeholder: 'oiot_…' });
  const form = el('form', {
    class: 'card signin', id: 'sign-in', onsubmit: async (event) => {
      event.preventDefault();
      clearError();
      sessionStorage.setItem(KEY, input.value.trim());
      try {
        await api('GET', '/api/things?maxResults=1');   // any role may read: the key is good
        if (location.hash === '#/fleet') route(); else location.hash = '#/fleet';
      } catch (e) {
        sessionStorage.removeItem(KEY);
        showError(e.status === 401 ? `Sign-in refused: ${e.message}` : e);
      }
    },
  },
  el('h1', {}, 'Sign in'),
  el('label', { for: 'api-key' }, 'API key'),
  input,
  el('button', { type: 'submit' }, 'Sign in'),
  el('p', { class: 'muted' }, 'The key is kept in this browser tab only (session storage) and sent as a Bearer token.'));
  show(form);
  input.focus();
}

async function fleetPage(params) {
  const query = params.get('q') || 'thingName:*';
  const box = el('input', { type: 'text', id: 'query', value: query, 'aria-label': 'Fleet index query' });
  const results = el('div', { id: 'results' }, el('p', { class: 'muted' }, 'Searching…'));
  show(
    el('h1', {}, 'Fleet'),
    el('form', {
      class: 'inline', id: 'search', onsubmit: (event) => {
        event.preventDefault();
        location.hash = `#/fleet?q=${encodeURIComponent(box.value)}`;
      },
    }, box, el('button', { type: 'submit' }, 'Search')),
    el('p', { class: 'muted' }, 'AWS fleet-indexing syntax: thingName:lamp-*, attributes.room:hall, shadow.reported.on:true, connectivity.connected:false …'),
    results);

  const tokens = [null];   // the page tokens seen, for Previous
  async function load(index) {
    const page = await api('POST', '/api/indices/search', { queryString: query, maxResults: PAGE_SIZE, nextToken: tokens[index] ?? undefined });
    if (page.nextToken) tokens[index + 1] = page.nextToken;
    const rows = page.things.map((t) => el('tr', {},
      el('td', {}, el('a', { href: `#/thing/${encodeURIComponent(t.thingName)}`, class: 'thing-link' }, t.thingName)),
      el('td', {}, t.thingTypeName ?? '—'),
      el('td', {}, t.connectivity ? el('span', { class: t.connectivity.connected ? 'ok' : 'muted' }, t.connectivity.connected ? 'connected' : 'disconnected') : '—'),
      el('td', {}, Object.entries(t.attributes ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—')));
    results.replaceChildren(
      el('table', { id: 'things' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Thing'), el('th', {}, 'Type'), el('th', {}, 'Connectivity'), el('th', {}, 'Attributes'))),
        el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No thing matches.')))),
      el('div', { class: 'pager' },
        el('button', { class: 'secondary', id: 'previous', disabled: index === 0, onclick: () => guarded(() => load(index - 1)) }, 'Previous'),
        el('span', { class: 'muted' }, `page ${index + 1}`),
        el('button', { class: 'secondary', id: 'next', disabled: !page.nextToken, onclick: () => guarded(() => load(index + 1)) }, 'Next')));
  }

  await load(0);
}

async function thingPage(name) {
  const thing = await api('GET', `/api/things/${encodeURIComponent(name)}`);
  const desired = el('pre', { id: 'desired' }, '…');
  const reported = el('pre', { id: 'reported' }, '…');
  const delta = el('pre', { id: 'delta' }, '…');
  const version = el('span', { id: 'shadow-version', class: 'muted' });
  const editor = el('textarea', { id: 'desired-editor', 'aria-label': 'Desired state (JSON)' });
  const saved = el('span', { class: 'muted', id: 'saved' });
  const jobs = el('div', { id: 'thing-jobs' });
  const connectivity = el('dd', { id: 'connectivity' }, '…');
  const history = el('div', { id: 'connection-history' });
  let edited = false;
  editor.addEventListener('input', () => { edited = true; });
  // Live views (shadow, telemetry) end with the page.
  const live = new AbortController();
  stopPage = () => live.abort();

  function render(shadow) {
    desired.textContent = pretty(shadow.state?.desired);
    reported.textContent = pretty(shadow.state?.reported);
    delta.textContent = pretty(shadow.state?.delta);
    version.textContent = `version ${shadow.version}, ${time(shadow.timestamp)}`;
    if (!edited) editor.value = JSON.stringify(shadow.state?.desired ?? {}, null, 2);
  }

  function renderNone() {
    [desired, reported, delta].forEach((p) => { p.textContent = '—'; });
    version.textContent = 'no shadow yet';
  }

  async function refreshShadow() {
    try {
      render(await api('GET', `/things/${encodeURIComponent(name)}/shadow`));
    } catch (e) {
      if (e.status !== 404) throw e;
      renderNone();
    }
  }

  async function save(event) {
    event.preventDefault();
    clearError();
    let value;
    try {
      value = JSON.parse(editor.value);
    } catch (e) {
      showError(`The desired state is not JSON: ${e.message}`);
      return;
    }
    await guarded(async () => {
      const answer = await api('POST', `/things/${encodeURIComponent(name)}/shadow`, { state: { desired: value } });
      saved.textContent = `saved as version ${answer.version}`;
      edited = false;
    });
  }

  show(
    el('h1', {}, name, ' ', el('a', { href: `#/usage?thing=${encodeURIComponent(name)}`, id: 'thing-usage', class: 'muted' }, '(usage)')),
    el('div', { class: 'card' }, el('dl', {},
      el('dt', {}, 'Type'), el('dd', {}, thing.thingTypeName ?? '—'),
      el('dt', {}, 'Version'), el('dd', {}, thing.version),
      el('dt', {}, 'Attributes'), el('dd', { id: 'attributes' }, Object.entries(thing.attributes ?? {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—'),
      el('dt', {}, 'Connectivity'), connectivity)),
    el('h2', {}, 'Classic shadow ', version),
    el('div', { class: 'grid3' },
      el('div', {}, el('h2', {}, 'Desired'), desired),
      el('div', {}, el('h2', {}, 'Reported'), reported),
      el('div', {}, el('h2', {}, 'Delta'), delta)),
    el('h2', {}, 'Change the desired state'),
    el('form', { id: 'desired-form', onsubmit: save }, editor, el('div', { class: 'pager' }, el('button', { type: 'submit', id: 'save-desired' }, 'Update desired'), saved)),
    el('h2', {}, 'Live telemetry'),
    telemetryPanel(name, live.signal),
    el('h2', {}, 'Connection history'),
    history,
    el('h2', {}, 'Jobs'),
    jobs);

  await refreshShadow();
  try {
    const status = await api('GET', `/api/things/${encodeURIComponent(name)}/status`);
    const c = status.connectivity;
    connectivity.replaceChildren(c.connected
      ? el('span', { class: 'ok' }, `connected since ${time(c.since)} to ${c.node ?? '—'} (MQTT ${c.protocolVersion === 5 ? '5' : '3.1.1'}, from ${c.remoteAddress ?? '—'})`)
      : el('span', { class: 'muted' }, `disconnected${c.lastDisconnectAt ? ` at ${time(c.lastDisconnectAt)} (${c.disconnectReason ?? 'no reason'})` : ''}`),
      el('span', { class: 'muted' }, ` · first seen ${time(status.firstSeenAt)}; ${status.usage.messagesIn} messages in, ${status.usage.messagesOut} out since`));
    const past = status.history ?? [];
    history.replaceChildren(past.length
      ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Connected'), el('th', {}, 'Ended'), el('th', {}, 'Reason'), el('th', {}, 'Node'), el('th', {}, 'From'), el('th', {}, 'MQTT'))),
        el('tbody', {}, past.map((h) => el('tr', {},
          el('td', {}, time(h.connectedAt)), el('td', {}, h.endedAt ? time(h.endedAt) : 'replaced, end not reported'), el('td', {}, h.disconnectReason ?? '—'),
          el('td', {}, h.node ?? '—'), el('td', {}, h.remoteAddress ?? '—'), el('td', {}, h.protocolVersion === 5 ? '5' : '3.1.1')))))
      : el('p', { class: 'muted' }, 'No connection has ended yet.'));
  } catch (e) {
    if (e.status !== 404) throw e;
    connectivity.textContent = 'never connected';
    history.replaceChildren(el('p', { class: 'muted' }, 'Never connected.'));
  }

  const executions = await api('GET', `/api/things/${encodeURIComponent(name)}/jobs`);
  const list = executions.executionSummaries ?? [];
  jobs.replaceChildren(list.length
    ? el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Job'), el('th', {}, 'Status'), el('th', {}, 'Queued'))),
      el('tbody', {}, list.map((x) => el('tr', {},
        el('td', {}, x.jobId), el('td', {}, x.jobExecutionSummary?.status ?? '—'), el('td', {}, time(x.jobExecutionSummary?.queuedAt))))))
    : el('p', { class: 'muted' }, 'No job executions.'));

  // Live: the node pushes every new version (server-sent events over fetch, so the key stays in a header).
  readEvents(`/api/things/${encodeURIComponent(name)}/shadow/changes`, live.signal, { shadow: render, none: renderNone }, 'Live view of the shadow');
}

// Reads a server-sent event stream of the API until the signal aborts (fetch, so the key stays in a header),
// reconnecting after a failure (shown) with a pause. handlers: event name => function of its parsed data.
async function readEvents(path, signal, handlers, what) {
  while (!signal.aborted) {
    try {
      const response = await fetch(path, {
        headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY)}`, Accept: 'text/event-stream' },
        signal,
      });
      if (!response.ok) {
        const text = await response.text();
        let detail = text;
        try { detail = JSON.parse(text).detail ?? text; } catch { /* not JSON */ }
        throw new Error(`${response.status}: ${detail || 'refused'}`);
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && handlers[event]) handlers[event](JSON.parse(data));
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      showError(`${what}: ${e.message}; reconnecting`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// The numbers in a JSON value, by dotted path (objects two levels deep): what the telemetry chart draws.
function numbersOf(value, prefix = '', depth = 0, out = {}) {
  if (typeof value === 'number' && isFinite(value)) out[prefix || 'value'] = value;
  else if (value && typeof value === 'object' && !Array.isArray(value) && depth < 3) {
    for (const [k, v] of Object.entries(value)) numbersOf(v, prefix ? `${prefix}.${k}` : k, depth + 1, out);
  }
  return out;
}

// An SVG drawing (no library): the element, and add(tag, attributes, text) to draw into it.
function svgCanvas(id, width, height) {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('id', id);
  svg.setAttribute('role', 'img');
  const add = (tag, attributes, text) => {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  return { svg, add };
}

const SERIES_COLOURS = ['#1f6feb', '#d9480f', '#2b8a3e', '#7048e8', '#c2255c', '#0c8599'];

// A line per numeric field over the last points (SVG, no library), scaled to the values shown.
function lineChart(series) {
  const width = 760, height = 180, pad = 40;
  const { svg, add } = svgCanvas('telemetry-chart', width, height + 20);
  const points = [...series.values()].flat();
  if (points.length === 0) {
    add('text', { x: 0, y: 20, 'font-size': 12, fill: '#66707c' }, 'No numbers yet: the chart draws the numeric fields of JSON messages.');
    return svg;
  }
  const t0 = Math.min(...points.map((p) => p.t)), t1 = Math.max(t0 + 1, ...points.map((p) => p.t));
  let lo = Math.min(...points.map((p) => p.v)), hi = Math.max(...points.map((p) => p.v));
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (width - pad - 8);
  const y = (v) => 8 + (1 - (v - lo) / (hi - lo)) * (height - 16);
  add('text', { x: 0, y: 14, 'font-size': 11, fill: '#66707c' }, String(+hi.toPrecision(4)));
  add('text', { x: 0, y: height, 'font-size': 11, fill: '#66707c' }, String(+lo.toPrecision(4)));
  let i = 0;
  for (const [name, list] of series) {
    const colour = SERIES_COLOURS[i % SERIES_COLOURS.length];
    add('polyline', { points: list.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' '), fill: 'none', stroke: colour, 'stroke-width': 2, 'data-series': name });
    const last = list[list.length - 1];
    add('circle', { cx: x(last.t), cy: y(last.v), r: 3, fill: colour });
    add('text', { x: pad + i * 120, y: height + 16, 'font-size': 11, fill: colour }, `${name} ${last.v}`);
    i++;
  }
  return svg;
}

// The device's live telemetry: the messages on a topic filter (GET /api/watch), charted and listed.
function telemetryPanel(name, signal) {
  const filter = el('input', { type: 'text', id: 'telemetry-filter', value: `+/${name}/#`, 'aria-label': 'Topic filter' });
  const chart = el('div', { id: 'telemetry-chart-box' });
  const status = el('span', { class: 'muted', id: 'telemetry-status' }, 'connecting…');
  const messages = el('tbody', { id: 'telemetry-messages' });
  const series = new Map();
  let dropped = 0;
  let watch = null;

  const redraw = () => chart.replaceChildren(lineChart(series));
  function start() {
    watch?.abort();
    watch = new AbortController();
    signal.addEventListener('abort', () => watch.abort(), { once: true });
    series.clear();
    messages.replaceChildren();
    redraw();
    status.textContent = 'connecting…';
    readEvents(`/api/watch?filter=${encodeURIComponent(filter.value)}`, watch.signal, {
      watching: (w) => { status.textContent = `watching ${w.filter} from ${w.node}`; },
      message: (m) => {
        let json = null;
        try { json = m.payload === null ? null : JSON.parse(m.payload); } catch { json = null; }
        for (const [path, v] of Object.entries(numbersOf(json))) {
          if (!series.has(path)) {
            if (series.size >= SERIES_COLOURS.length) continue;
            series.set(path, []);
          }
          const list = series.get(path);
          list.push({ t: m.timestamp, v });
          if (list.length > 120) list.shift();
        }
        messages.prepend(el('tr', {}, el('td', {}, time(m.timestamp)), el('td', {}, m.topic), el('td', {}, m.clientId),
          el('td', {}, el('code', {}, m.payload ?? `base64 ${m.payloadBase64}`))));
        while (messages.children.length > 10) messages.lastChild.remove();
        redraw();
      },
      dropped: (d) => { dropped += d.count; status.textContent = `${status.textContent.replace(/ · missed \d+$/, '')} · missed ${dropped}`; },
    }, 'Live telemetry');
  }

  const panel = el('div', {},
    el('form', { class: 'pager', onsubmit: (e) => { e.preventDefault(); clearError(); start(); } },
      filter, el('button', { type: 'submit', id: 'telemetry-watch' }, 'Watch'), status),
    chart,
    el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Topic'), el('th', {}, 'Client'), el('th', {}, 'Payload'))), messages));
  start();
  return panel;
}

function progressOf(details) {
  const d = details ?? {};
  const done = ['numberOfSucceededThings', 'numberOfFailedThings', 'numberOfRejectedThings', 'numberOfCanceledThings', 'numberOfTimedOutThings', 'numberOfRemovedThings']
    .reduce((sum, k) => sum + (d[k] ?? 0), 0);
  const total = done + (d.numberOfQueuedThings ?? 0) + (d.numberOfInProgressThings ?? 0);
  return { done, total, succeeded: d.numberOfSucceededThings ?? 0, failed: d.numberOfFailedThings ?? 0, inProgress: d.numberOfInProgressThings ?? 0 };
}

async function jobsPage() {
  const table = el('div', { id: 'jobs' }, el('p', { class: 'muted' }, 'Loading…'));
  show(el('h1', {}, 'Jobs'), el('p', { class: 'muted' }, 'Rollout progress of every job, refreshed every 2 seconds.'), table);
  const tokens = [null];
  let index = 0;

  async function refresh() {
    const token = tokens[index] ? `&nextToken=${encodeURIComponent(tokens[index])}` : '';
    const list = await api('GET', `/api/jobs?maxResults=${PAGE_SIZE}${token}`);
    if (list.nextToken) tokens[index + 1] = list.nextToken;
    const described = await Promise.all((list.jobs ?? []).map((j) => api('GET', `/api/jobs/${encodeURIComponent(j.jobId)}`)));
    const rows = described.map(({ job }) => {
      const p = progressOf(job.jobProcessDetails);
      return el('tr', { 'data-job': job.jobId },
        el('td', {}, job.jobId),
        el('td', {}, job.status),
        el('td', {}, el('progress', { max: Math.max(p.total, 1), value: p.done }),
          el('span', { class: 'progress-text' }, ` ${p.done} of ${p.total} done (${p.succeeded} succeeded, ${p.failed} failed, ${p.inProgress} in progress)`)),
        el('td', {}, job.rolloutProgress ? `${job.rolloutProgress.pendingThings} pending rollout` : '—'));
    });
    const go = (to) => guarded(async () => { index = to; await refresh(); });
    table.replaceChildren(
      el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'Job'), el('th', {}, 'Status'), el('th', {}, 'Progress'), el('th', {}, 'Rollout'))),
        el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No jobs.')))),
      el('div', { class: 'pager' },
        el('button', { class: 'secondary', id: 'jobs-previous', disabled: index === 0, onclick: () => go(index - 1) }, 'Previous'),
        el('span', { class: 'muted' }, `page ${index + 1}`),
        el('button', { class: 'secondary', id: 'jobs-next', disabled: !list.nextToken, onclick: () => go(index + 1) }, 'Next')));
  }

  await refresh();
  const timer = setInterval(() => guarded(refresh), 2000);
  stopPage = () => clearInterval(timer);
}

async function rulesPage() {
  const list = el('div', { id: 'rules' });
  const name = el('input', { type: 'text', id: 'rule-name', placeholder: 'rule_name', 'aria-label': 'Rule name' });
  const sql = el('textarea', { id: 'rule-sql', 'aria-label': 'Rule SQL' }, "SELECT * FROM 'dt/+/telemetry'");
  const actions = el('textarea', { id: 'rule-actions', 'aria-label': 'Actions (JSON)' }, JSON.stringify([{ republish: { topic: 'out/${topic(2)}', qos: 1 } }], null, 2));
  const topic = el('input', { type: 'text', id: 'try-topic', value: 'dt/device-1/telemetry', 'aria-label': 'Sample topic' });
  const payload = el('textarea', { id: 'try-payload', 'aria-label': 'Sample payload (JSON)' }, '{"temp": 21}');
  const output = el('pre', { id: 'try-output' }, '—');
  const saved = el('span', { class: 'muted', id: 'rule-saved' });

  async function refresh() {
    const { rules } = await api('GET', '/api/rules');
    list.replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'Rule'), el('th', {}, 'Topic'), el('th', {}, 'State'), el('th', {}, 'Created'))),
      el('tbody', {}, rules.length
        ? rules.map((r) => el('tr', {},
          el('td', {}, el('a', { href: '#', class: 'rule-link', onclick: (e) => { e.preventDefault(); guarded(() => load(r.ruleName)); } }, r.ruleName)),
          el('td', {}, r.topicPattern ?? '—'), el('td', {}, r.ruleDisabled ? 'disabled' : 'enabled'), el('td', {}, time(r.createdAt))))
        : el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No rules.')))));
  }

  async function load(ruleName) {
    const { rule } = await api('GET', `/api/rules/${encodeURIComponent(ruleName)}`);
    name.value = rule.ruleName;
    sql.value = rule.sql;
    actions.value = JSON.stringify(rule.actions ?? [], null, 2);
  }

  function parsed(text, what) {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new Error(`${what} is not JSON: ${e.message}`);
    }
  }

  async function save(event) {
    event.preventDefault();
    clearError();
    await guarded(async () => {
      const body = { sql: sql.value, actions: parsed(actions.value, 'The actions') };
      const ruleName = name.value.trim();
      const exists = [...list.querySelectorAll('.rule-link')].some((a) => a.textContent === ruleName);
      await api(exists ? 'PATCH' : 'POST', `/api/rules/${encodeURIComponent(ruleName)}`, body);
      saved.textContent = exists ? `replaced ${ruleName}` : `created ${ruleName}`;
      await refresh();
    });
  }

  async function tryIt() {
    clearError();
    await guarded(async () => {
      const result = await api('POST', '/api/rules/test', { sql: sql.value, topic: topic.value, payload: parsed(payload.value, 'The sample payload') });
      output.textContent = !result.topicMatches ? 'The topic does not match the rule\'s FROM.'
        : !result.selected ? 'The WHERE clause did not select this message.'
          : result.output !== undefined ? pretty(result.output) : `(not JSON, base64) ${result.outputBase64}`;
    });
  }

  show(
    el('h1', {}, 'Rules'),
    list,
    el('h2', {}, 'Create or replace a rule'),
    el('form', { id: 'rule-form', onsubmit: save },
      el('div', { class: 'grid3' },
        el('div', {}, el('label', { for: 'rule-name' }, 'Name'), name),
        el('div', {}, el('label', { for: 'try-topic' }, 'Try it: sample topic'), topic),
        el('div', {})),
      el('div', { class: 'grid3' },
        el('div', {}, el('h2', {}, 'SQL'), sql),
        el('div', {}, el('h2', {}, 'Actions'), actions),
        el('div', {}, el('h2', {}, 'Try it: sample payload'), payload)),
      el('div', { class: 'pager' },
        el('button', { type: 'submit', id: 'save-rule' }, 'Save rule'),
        el('button', { type: 'button', class: 'secondary', id: 'try-rule', onclick: tryIt }, 'Try it'),
        saved)),
    el('h2', {}, 'What the rule makes of the sample'),
    output);
  await refresh();
}

// A list the API pages with a marker (AWS's ListCertificates, ListPolicies): Previous and Next over the markers seen.
function markerPages(container, idPrefix, fetchPage, render) {
  const markers = [null];
  async function load(index) {
    const page = await fetchPage(markers[index]);
    if (page.next) markers[index + 1] = page.next;
    container.replaceChildren(render(page.items),
      el('div', { class: 'pager' },
        el('button', { class: 'secondary', id: `${idPrefix}-previous`, disabled: index === 0, onclick: () => guarded(() => load(index - 1)) }, 'Previous'),
        el('span', { class: 'muted' }, `page ${index + 1}`),
        el('button', { class: 'secondary', id: `${idPrefix}-next`, disabled: !page.next, onclick: () => guarded(() => load(index + 1)) }, 'Next')));
  }
  return load(0);
}

async function securityPage() {
  const certificates = el('div', { id: 'certificates-pages' });
  const policies = el('div', { id: 'policies-pages' });
  const document = el('pre', { id: 'policy-document' }, 'Choose a policy to read its document.');
  show(
    el('h1', {}, 'Certificates and policies'),
    el('h2', {}, 'Device certificates'),
    certificates,
    el('h2', {}, 'Policies'),
    policies,
    el('h2', {}, 'Policy document'),
    document);
  const marker = (m) => (m ? `&marker=${encodeURIComponent(m)}` : '');
  await Promise.all([
    markerPages(certificates, 'certificates', async (m) => {
      const page = await api('GET', `/api/certificates?pageSize=${PAGE_SIZE}${marker(m)}`);
      return { items: page.certificates, next: page.nextMarker };
    }, (list) => el('table', { id: 'certificates' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Certificate'), el('th', {}, 'Status'), el('th', {}, 'Created'))),
      el('tbody', {}, list.length
        ? list.map((c) => el('tr', {}, el('td', {}, c.certificateId), el('td', { class: c.status === 'ACTIVE' ? 'ok' : 'bad' }, c.status), el('td', {}, time(c.creationDate))))
        : el('tr', {}, el('td', { colspan: 3, class: 'muted' }, 'No certificates.'))))),
    markerPages(policies, 'policies', async (m) => {
      const page = await api('GET', `/api/policies?pageSize=${PAGE_SIZE}${marker(m)}`);
      return { items: page.policies, next: page.nextMarker };
    }, (list) => el('table', { id: 'policies' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Policy'))),
      el('tbody', {}, list.length
        ? list.map((p) => el('tr', {}, el('td', {}, el('a', {
          href: '#', class: 'policy-link', onclick: (e) => {
            e.preventDefault();
            guarded(async () => {
              const policy = await api('GET', `/api/policies/${encodeURIComponent(p.policyName)}`);
              document.textContent = pretty(JSON.parse(policy.policyDocument));
            });
          },
        }, p.policyName))))
        : el('tr', {}, el('td', { class: 'muted' }, 'No policies.'))))),
  ]);
}

async function auditPage() {
  const table = el('div', { id: 'audit' });
  show(el('h1', {}, 'Audit log'), el('p', { class: 'muted' }, 'Every change made through the API, newest first (the last 24 hours).'), table);
  const tokens = [null];
  async function load(index) {
    const token = tokens[index] ? `&nextToken=${encodeURIComponent(tokens[index])}` : '';
    const page = await api('GET', `/api/audit?maxResults=${PAGE_SIZE}${token}`);
    if (page.nextToken) tokens[index + 1] = page.nextToken;
    table.replaceChildren(
      el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Principal'), el('th', {}, 'Operation'), el('th', {}, 'Target'), el('th', {}, 'Status'))),
        el('tbody', {}, page.events.length
          ? page.events.map((e) => el('tr', {}, el('td', {}, time(e.eventTime)), el('td', {}, e.principal), el('td', {}, e.operation),
            el('td', {}, e.target), el('td', { class: e.status < 400 ? 'ok' : 'bad' }, e.status)))
          : el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'Nothing recorded.')))),
      el('div', { class: 'pager' },
        el('button', { class: 'secondary', disabled: index === 0, onclick: () => guarded(() => load(index - 1)) }, 'Previous'),
        el('button', { class: 'secondary', disabled: !page.nextToken, onclick: () => guarded(() => load(index + 1)) }, 'Next')));
  }
  await load(0);
}

function barChart(days, series) {
  // One group of bars per day (SVG, no library): each series its own colour, scaled to the largest value.
  const width = 760, height = 180, pad = 28;
  const max = Math.max(1, ...days.flatMap((d) => series.map((x) => d[x.key])));
  const slot = (width - pad) / Math.max(days.length, 1);
  const bar = Math.max(2, (slot - 6) / series.length);
  const { svg, add } = svgCanvas('usage-chart', width, height + 20);
  add('text', { x: 0, y: 12, 'font-size': 11, fill: '#66707c' }, String(max));
  days.forEach((d, i) => {
    series.forEach((x, j) => {
      const h = (d[x.key] / max) * (height - pad);
      add('rect', { x: pad + i * slot + j * bar, y: height - h, width: bar - 1, height: h, fill: x.colour }).append(
        Object.assign(document.createElementNS('http://www.w3.org/2000/svg', 'title'), { textContent: `${d.date} ${x.label}: ${d[x.key]}` }));
    });
    add('text', { x: pad + i * slot, y: height + 14, 'font-size': 10, fill: '#66707c' }, d.date.slice(5));
  });
  return svg;
}

async function usagePage(params) {
  const thing = params.get('thing') || '';
  const group = params.get('group') || '';
  const name = el('input', { type: 'text', id: 'usage-name', value: thing || group, placeholder: 'thing or thing group name', 'aria-label': 'Name' });
  const kind = el('select', { id: 'usage-kind', 'aria-label': 'Kind' },
    el('option', { value: 'thing', selected: !group }, 'Thing'), el('option', { value: 'group', selected: !!group }, 'Thing group'));
  const out = el('div', { id: 'usage' });
  show(
    el('h1', {}, 'Usage'),
    el('form', {
      class: 'inline', id: 'usage-form', onsubmit: (event) => {
        event.preventDefault();
        location.hash = `#/usage?${kind.value}=${encodeURIComponent(name.value.trim())}`;
      },
    }, kind, name, el('button', { type: 'submit' }, 'Show')),
    el('p', { class: 'muted' }, 'Per UTC day, the last 7 days: messages and bytes in and out, connected minutes, shadow operations, rules triggered, job executions ended.'),
    out);
  if (!thing && !group) return;

  const usage = await api('GET', `/api/usage?${thing ? `thingName=${encodeURIComponent(thing)}` : `thingGroupName=${encodeURIComponent(group)}`}`);
  const t = usage.total;
  out.replaceChildren(
    el('p', {}, `${usage.thingName ?? usage.thingGroupName} (${usage.things} thing${usage.things === 1 ? '' : 's'}), ${usage.from} to ${usage.to}: `,
      el('strong', { id: 'usage-total' }, `${t.messagesIn} messages in, ${t.messagesOut} out, ${t.connectedMinutes} connected minutes, ${t.shadowOperations} shadow operations, ${t.ruleExecutions} rule executions, ${t.jobExecutions} job executions`)),
    barChart(usage.days, [
      { key: 'messagesIn', label: 'messages in', colour: '#3a6fd8' },
      { key: 'messagesOut', label: 'messages out', colour: '#36a36a' },
      { key: 'shadowOperations', label: 'shadow operations', colour: '#d89a3a' },
      { key: 'ruleExecutions', label: 'rule executions', colour: '#7048e8' },
    ]),
    el('table', {},
      el('thead', {}, el('tr', {}, ['Day', 'Msgs in', 'Bytes in', 'Msgs out', 'Bytes out', 'Dropped', 'Connected min', 'Shadow ops', 'Rule runs', 'Job runs'].map((h) => el('th', {}, h)))),
      el('tbody', {}, usage.days.map((d) => el('tr', {}, [d.date, d.messagesIn, d.bytesIn, d.messagesOut, d.bytesOut, d.messagesDropped, d.connectedMinutes, d.shadowOperations, d.ruleExecutions, d.jobExecutions].map((v) => el('td', {}, v)))))));
}

async function clusterPage() {
  const table = el('div', { id: 'nodes' }, el('p', { class: 'muted' }, 'Loading…'));
  show(el('h1', {}, 'Cluster'), el('p', { class: 'muted' }, 'Each node as it last reported (every few seconds), refreshed every 2 seconds.'), table);
  async function refresh() {
    const { nodes } = await api('GET', '/api/nodes');
    table.replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, ['Node', 'Connections', 'Messages in/s', 'Messages out/s', 'Connects', 'Messages in', 'Messages out', 'Dropped', 'Up since', 'Reported'].map((h) => el('th', {}, h)))),
      el('tbody', {}, nodes.map((n) => el('tr', { 'data-node': n.nodeId },
        el('td', {}, n.name), el('td', { class: 'connections' }, n.connections), el('td', {}, n.publishInPerSecond), el('td', {}, n.publishOutPerSecond),
        el('td', {}, n.connects), el('td', {}, n.publishIn), el('td', {}, n.publishOut), el('td', { class: n.deliveryDropped ? 'bad' : '' }, n.deliveryDropped),
        el('td', {}, time(n.startedAt)), el('td', {}, time(n.reportedAt)))))),
    el('p', { class: 'muted', id: 'node-count' }, `${nodes.length} node${nodes.length === 1 ? '' : 's'}, ${nodes.reduce((sum, n) => sum + n.connections, 0)} connections`));
  }
  await refresh();
  const timer = setInterval(() => guarded(refresh), 2000);
  stopPage = () => clearInterval(timer);
}

async function alarmsPage() {
  const table = el('div', { id: 'alarms' }, el('p', { class: 'muted' }, 'Loading…'));
  show(el('h1', {}, 'Alarms'), el('p', { class: 'muted' }, 'Each alarm\'s state, refreshed every 2 seconds. Changes are published on $aws/events/alarms/{name}/state.'), table);
  async function refresh() {
    const { metricAlarms } = await api('GET', '/api/alarms');
    const source = (d) => d.metricName ?? `${d.fleetStatistic} of ${d.fleetAggregationField ?? 'things'} where ${d.fleetQueryString}`;
    table.replaceChildren(el('table', {},
      el('thead', {}, el('tr', {}, ['Alarm', 'State', 'Watches', 'Condition', 'Reason', 'Since'].map((h) => el('th', {}, h)))),
      el('tbody', {}, metricAlarms.length
        ? metricAlarms.map((a) => el('tr', { 'data-alarm': a.alarmName },
          el('td', {}, a.alarmName),
          el('td', { class: `alarm-state ${a.state === 'ALARM' ? 'bad' : a.state === 'OK' ? 'ok' : 'muted'}` }, a.state),
          el('td', {}, source(a.definition)),
          el('td', {}, `${a.definition.comparisonOperator} ${a.definition.threshold} for ${a.definition.evaluationPeriods} × ${a.definition.periodSeconds} s`),
          el('td', {}, a.stateReason), el('td', {}, time(a.stateUpdatedAt))))
        : el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'No alarms.')))));
  }
  await refresh();
  const timer = setInterval(() => guarded(refresh), 2000);
  stopPage = () => clearInterval(timer);
}

// The Orleans Dashboard is a page of its own: the node gives an admin key a session cookie for /dashboard (a browser
// cannot send the key's header when it navigates), then the tab goes there; Back returns to the console.
async function dashboardPage() {
  await api('POST', '/api/console/dashboard-session');
  location.replace('/dashboard/');
}

// --- routing --------------------------------------------------------------------------------------------------------------

async function route() {
  stopPage();
  stopPage = () => {};
  clearError();
  if (notice) {
    showError(notice);
    notice = null;
  }
  const [path, search] = (location.hash.slice(1) || '/fleet').split('?');
  const params = new URLSearchParams(search ?? '');
  if (!sessionStorage.getItem(KEY) || path === '/signin') {
    signInPage();
    return;
  }

  document.getElementById('nav').hidden = false;
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', path.startsWith(link.getAttribute('href').slice(1)));
  }

  const pages = {
    '/fleet': () => fleetPage(params),
    '/jobs': jobsPage,
    '/rules': rulesPage,
    '/audit': auditPage,
    '/usage': () => usagePage(params),
    '/cluster': clusterPage,
    '/security': securityPage,
    '/alarms': alarmsPage,
    '/dashboard': dashboardPage,
  };
  const thing = path.match(/^\/thing\/(.+)$/);
  const page = thing ? () => thingPage(decodeURIComponent(thing[1])) : pages[path];
  if (!page) {
    show(el('h1', {}, 'Not found'), el('p', {}, `No page ${path}.`));
    return;
  }

  show(el('p', { class: 'muted' }, 'Loading…'));
  try {
    await page();
  } catch (e) {
    if (e.status === 401) {
      notice = `Signed out: ${e.message}`;
      location.hash = '#/signin';
      return;
    }
    showError(e);
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(KEY);
    location.hash = '#/signin';
  });
  route();
});
