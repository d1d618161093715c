// The console's page: sign in with the API key once (the console keeps a session cookie, never the
// key in the page), then status, settings, history with diffs and rollback, kept current over the
// live channel. No framework, no build step, nothing from a CDN: it works offline in the container.
const $ = (selector) => document.querySelector(selector);

const STATE_WORDS = { in_sync: 'in sync', pending_reload: 'pending reload', pending_write: 'pending write', failed: 'failed', rolled_back: 'rolled back' };
const OUTCOME_WORDS = {
  applied: 'applied',
  unchanged: 'applied (no service file changed)',
  rolled_back: 'rolled back',
  failed: 'failed',
  source_invalid: 'not applied (config.ini was invalid)',
};
const outcomeWords = (outcome) => OUTCOME_WORDS[outcome] ?? (outcome ? outcome.replaceAll('_', ' ') : 'not applied yet');
const LIST_KINDS = new Set(['url_list', 'name_list']);
const KIND_WORDS = {
  text: 'text',
  secret: 'password',
  port: 'port, 1 to 65535',
  http_url: 'http or https URL',
  email: 'email address',
  boolean: 'on or off',
  abs_path: 'absolute path',
  ipv4: 'IPv4 address',
  hostname: 'host name',
  url_list: 'URLs, one per line here',
  name_list: 'names, one per line here',
  api_key: 'API key',
};
const INPUT_TYPES = { http_url: 'url', email: 'email' };
const MASK = '••••••';
/** Errors of a `?wait=true` write that come after config.ini was written: saved, not (yet) applied. */
const WRITTEN_CODES = new Set(['SYNC_FAILED', 'TIMEOUT']);
const short = (id) => (id ? id.slice(0, 7) : '—');
const unquote = (etag) => (etag ?? '').replace(/^W\//, '').replaceAll('"', '');

/** An element with attributes (`text`, `class` and `on<event>` are special), then its children. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = value;
    else if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.filter((child) => child !== undefined && child !== null && child !== false));
  return node;
}

const when = (iso) => (iso ? el('time', { datetime: iso, text: new Date(iso).toLocaleString() }) : '—');

const page = {
  /** GET /settings?explain=true: `{section: {key: {value, raw?, kind, secret, description?, source}}}`. */
  settings: null,
  etag: null,
  /** `section.key` → the field's controls and the text it was loaded with. */
  fields: new Map(),
  saving: false,
  commits: [],
  next: null,
  diff: null,
  checksPending: false,
  /** The view shown: status, settings or history. */
  view: null,
  /** Answers of older settings reads are dropped: only the newest request's counts. */
  settingsRead: 0,
  /** A rollback being confirmed: the commit the dialog shows, and the revision it was prepared on. */
  rollback: null,
  /** Edits kept across a sign-in when the session ended under them: name → {text, base} (base: the text it was edited from). */
  keptEdits: new Map(),
  /** Counts sign-ins and sign-outs: an answer to a request of an earlier one is dropped. */
  epoch: 0,
  historyRead: 0,
  fieldIds: 0,
  statusNotes: '',
};

async function answerOf(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

/** One call of confhub's API through the console; a 401 means the session ended. */
async function api(path, { method = 'GET', body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  // Signed out: nothing is asked of confhub (it would count as a failed sign-in).
  if ($('#app').hidden) return new Promise(() => undefined);
  const epoch = page.epoch;
  let response;
  let answer;
  try {
    response = await fetch(path, init);
    answer = await answerOf(response);
  } catch {
    response = { status: 0, ok: false, headers: new Headers() };
    answer = { details: 'the console is not answering' };
  }
  // Signed out (or in again) since it was asked: nobody waits for it any more. Never settling
  // drops the caller's continuation with it, so nothing is drawn into a page that moved on.
  if (epoch !== page.epoch) return new Promise(() => undefined);
  if (response.status === 401) sessionEnded();
  return { status: response.status, ok: response.ok, answer, etag: response.headers.get('etag') };
}

const problem = (result) => result.answer.details || result.answer.message || `the request failed (${result.status})`;

// --- views ---------------------------------------------------------------------------------------

/** Everything read from confhub leaves the page: values, passwords, diffs. */
function forget() {
  page.epoch += 1;
  // A save or rollback in flight never answers now (see api): its buttons are given back here.
  setSaving(false);
  page.rollback = null;
  live.rev = null;
  delete $('#live').dataset.rev;
  delete $('#settings-form').dataset.revision;
  page.settings = null;
  page.etag = null;
  page.fields.clear();
  page.commits = [];
  page.next = null;
  page.diff = null;
  page.statusNotes = '';
  for (const selector of [
    '#sections',
    '#targets tbody',
    '#commits tbody',
    '#diff',
    '#rollback-diff',
    '#activity',
    '#conflict',
    '#compare-from',
    '#compare-to',
  ]) {
    $(selector).replaceChildren();
  }
  for (const selector of ['#status-notes', '#settings-notice', '#settings-error', '#diff-title', '#rollback-title', '#rollback-summary']) {
    $(selector).textContent = '';
  }
  $('#diff-view').hidden = true;
  $('#conflict').hidden = true;
}

/** The session ended under the page (idle, or the key was rotated): sign in again; unsaved edits wait for it. */
function sessionEnded() {
  if ($('#app').hidden) return;
  for (const [name, edit] of editsOf()) page.keptEdits.set(name, edit);
  const kept = page.keptEdits.size;
  void show(false);
  $('#signin-error').textContent = `Your session ended: sign in again.${kept > 0 ? ` Your unsaved changes (${kept}) are kept in this page.` : ''}`;
}

/** Signed in: the app and the live channel; signed out: the form. Resolves when the view has loaded. */
async function show(signedIn) {
  $('#signin').hidden = signedIn;
  $('#app').hidden = !signedIn;
  $('#signout').hidden = !signedIn;
  $('#live').hidden = !signedIn;
  if ($('#rollback-dialog').open) $('#rollback-dialog').close();
  if (signedIn) {
    live.start();
    await route();
  } else {
    live.stop();
    forget();
    $('#key').focus();
  }
}

const VIEWS = ['status', 'settings', 'history'];

async function route(event) {
  if ($('#app').hidden) return;
  const hash = location.hash.slice(1);
  // Another fragment (the skip link's #main) is not a view: the page stays on the one it shows.
  const view = VIEWS.includes(hash) ? hash : (page.view ?? 'status');
  const switched = event !== undefined && view !== page.view;
  page.view = view;
  for (const name of VIEWS) $(`#view-${name}`).hidden = name !== view;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('href') === `#${view}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // A view chosen by the user: focus goes to its heading, so a screen reader says where it is.
  if (switched) $(`#${view}-title`).focus();
  if (view === 'status') await loadStatus();
  if (view === 'settings') await loadSettings();
  if (view === 'history') await loadHistory();
}

// --- status --------------------------------------------------------------------------------------

function connectionWords(service) {
  if (!service) return '—';
  if (service.checks.length === 0) return service.checkedAt ? 'nothing to check (no reload or health check declared)' : 'not checked yet';
  if (service.ok === null) return 'not checked yet';
  if (service.ok) return 'reachable';
  const failed = service.checks.find((check) => !check.ok);
  return `unreachable${failed?.error ? `: ${failed.error}` : ''}`;
}

const errorWords = (error) => (error ? `${error.details || error.message} (${error.code})` : '');

/**
 * A sync event carries each target's outcome: the rows show it at once, before the status is read
 * again (which the burst's refresh does, for what the event does not say).
 */
function patchTargets(data) {
  for (const target of data.targets ?? []) {
    const row = document.querySelector(`#targets tr[data-target="${CSS.escape(target.target)}"]`);
    if (!row) continue;
    const [state, revision, , error] = row.querySelectorAll('td');
    state.className = `state state-${target.state}`;
    state.textContent = STATE_WORDS[target.state] ?? target.state;
    if (target.state === 'in_sync') revision.textContent = short(data.revision);
    error.textContent = errorWords(target.error);
  }
}

async function loadStatus() {
  const [status, services] = await Promise.all([api('/api/v1/sync/status'), api('/api/v1/services')]);
  if (!status.ok) return;
  const byName = new Map((services.answer.services ?? []).map((service) => [service.name, service]));
  $('#targets tbody').replaceChildren(
    ...status.answer.targets.map((target) =>
      el(
        'tr',
        { 'data-target': target.target },
        el('th', { scope: 'row', text: target.target }),
        el('td', { class: `state state-${target.state}`, text: STATE_WORDS[target.state] ?? target.state }),
        el('td', { class: 'mono', text: short(target.appliedRevision) }),
        el('td', { text: connectionWords(byName.get(target.target)) }),
        el('td', { text: errorWords(target.lastError) }),
      ),
    ),
  );
  // The checks run in the background when older than 10 s: their results, once they are in.
  if (services.answer.refreshing && !page.checksPending) {
    page.checksPending = true;
    setTimeout(() => {
      page.checksPending = false;
      if (!$('#view-status').hidden) void loadStatus();
    }, 4000);
  }
  const notes = [];
  if (!status.answer.worker.alive) notes.push('The sync worker is not running: changes are saved but not applied.');
  if (!status.answer.source.valid)
    notes.push(`config.ini cannot be used: ${status.answer.source.error?.details ?? 'invalid'}. The services keep the last good revision.`);
  if (status.answer.configRollback) notes.push(`An automatic rollback could not restore config.ini: ${status.answer.configRollback.error?.details ?? ''}`);
  // An alert: said again only when it says something new.
  if (notes.join(' ') !== page.statusNotes) {
    page.statusNotes = notes.join(' ');
    $('#status-notes').textContent = page.statusNotes;
  }
}

// --- activity: what this page wrote, and what the services made of it ----------------------------

function targetWords(target) {
  const parts = [STATE_WORDS[target.state] ?? target.state];
  if (target.changed) parts.push('file written');
  if (target.reloaded) parts.push(target.healthy === false ? 'reloaded, unhealthy' : 'reloaded');
  const words = parts.join(', ');
  return target.error ? `${words}: ${target.error.details || target.error.message}` : words;
}

/** The panel under the views' links: what this page wrote and what came of it; empty text clears it. */
function activity(text, { targets = [], outcome } = {}) {
  const parts = text ? [el('p', { class: outcome ? `outcome outcome-${outcome}` : undefined, text })] : [];
  if (targets.length > 0) {
    parts.push(el('ul', {}, ...targets.map((target) => el('li', { 'data-target': target.target, text: `${target.target}: ${targetWords(target)}` }))));
  }
  $('#activity').replaceChildren(...parts);
}

/**
 * What a write from this page came to: its `?wait=true` answer has the worker's verdict on the
 * revision (also when no target renders the keys, which makes no event) or says why there is none.
 */
function reportWrite(label, result) {
  const sync = result.answer.sync;
  if (sync) {
    const outcome = outcomeWords(sync.outcome);
    const reason = !result.ok && sync.error ? `: ${sync.error.details || sync.error.message}` : '';
    activity(`${label}: revision ${short(sync.revision)} ${outcome}${reason}`, { targets: sync.targets ?? [], outcome: sync.outcome });
  } else if (result.status === 504 || result.status === 503) {
    activity(`${label}: saved, not applied yet: ${problem(result)} The Status view follows it.`, { outcome: 'pending' });
  } else {
    activity(`${label}: ${problem(result)}`, { outcome: 'failed' });
  }
}

// --- settings ------------------------------------------------------------------------------------

/** A field's name as the API's errors say it: the key lowercased (config.ini keys are case-insensitive). */
const fieldName = (section, key) => `${section}.${key.toLowerCase()}`;

/** The text the form edits: the value as written (a reference, not what it resolves to). */
function writtenText(entry) {
  if (entry.raw !== undefined) return entry.raw;
  return typeof entry.value === 'string' ? entry.value : String(entry.value);
}

const listItems = (text) =>
  text
    .split(/[,\n]/)
    .map((item) => item.trim())
    .filter((item) => item !== '');

/**
 * A key the page shows but does not edit: the API key (the page signed in with it; its value is
 * never put in the page) and a value an environment's overlay sets (a write would go to the base
 * section, which the services do not get).
 */
function staticText(entry) {
  if (entry.kind === 'api_key') return 'set, not shown';
  if (entry.secret) return entry.overlay ? MASK : 'a secret of several lines: edit it in config.ini';
  return writtenText(entry);
}

function staticControl(entry, id) {
  const output = el('output', { id, class: 'static', text: staticText(entry) });
  return { input: output, readOnly: true, read: () => '', json: () => undefined, set: () => undefined, loaded: '' };
}

/** The form control of one key, by its kind: what it shows, what it reads back, what it sends. */
function control(entry, id) {
  const written = writtenText(entry);
  // A value of several lines (continuation lines in config.ini) as a secret: no masked field holds lines.
  if (entry.kind === 'api_key' || entry.overlay || (entry.secret && written.includes('\n'))) return staticControl(entry, id);
  if (entry.kind === 'boolean' && typeof entry.value === 'boolean' && entry.raw === undefined) {
    const input = el('input', { id, type: 'checkbox' });
    input.checked = entry.value;
    return {
      input,
      read: () => String(input.checked),
      json: () => input.checked,
      set: (text) => (input.checked = text === 'true'),
      loaded: String(entry.value),
    };
  }
  if (LIST_KINDS.has(entry.kind) && entry.raw === undefined) {
    const input = el('textarea', { id, rows: Math.max(2, listItems(written).length + 1), spellcheck: 'false' });
    input.value = listItems(written).join('\n');
    const read = () => listItems(input.value).join(',');
    return { input, read, json: () => listItems(input.value), set: (text) => (input.value = listItems(text).join('\n')), loaded: listItems(written).join(',') };
  }
  if (written.includes('\n')) {
    // An input would drop the line breaks: the value would read as edited, and a save would join its lines.
    const input = el('textarea', { id, rows: Math.min(12, written.split('\n').length + 1), spellcheck: 'false' });
    input.value = written;
    return { input, read: () => input.value, json: () => input.value, set: (text) => (input.value = text), loaded: written };
  }
  const type = entry.secret ? 'password' : (INPUT_TYPES[entry.kind] ?? 'text');
  const input = el('input', { id, type, autocomplete: entry.secret ? 'new-password' : 'off', spellcheck: 'false' });
  if (entry.kind === 'port') input.setAttribute('inputmode', 'numeric');
  input.value = written;
  // A port goes as a JSON number; anything else as typed, for the API to judge (and name the field).
  const json = () => (entry.kind === 'port' && /^[1-9]\d*$/.test(input.value.trim()) ? Number(input.value.trim()) : input.value);
  return { input, read: () => input.value, json, set: (text) => (input.value = text), loaded: written };
}

function revealButton(input, name) {
  const button = el('button', {
    type: 'button',
    class: 'secondary reveal',
    'aria-pressed': 'false',
    'aria-controls': input.id,
    'aria-label': `Show ${name}`,
    text: 'Show',
  });
  button.addEventListener('click', () => {
    const shown = input.type === 'password';
    input.type = shown ? 'text' : 'password';
    button.setAttribute('aria-pressed', String(shown));
    button.setAttribute('aria-label', `${shown ? 'Hide' : 'Show'} ${name}`);
    button.textContent = shown ? 'Hide' : 'Show';
  });
  return button;
}

function helpText(entry) {
  const help = [KIND_WORDS[entry.kind] ?? entry.kind];
  if (entry.description) help.push(entry.description);
  if (entry.raw !== undefined && !entry.secret) help.push(`resolves to ${entry.value}`);
  if (entry.overlay) {
    const overlay = entry.source.replace('config.ini ', '');
    help.push(`set in ${overlay}, the overlay of the environment confhub runs in: change it there (API: ?environment=${overlay.slice(1, -1).split('@')[1]})`);
  }
  if (entry.kind === 'api_key') help.push('this page signed in with it; rotate it with confhub apikey rotate');
  return help.join(' · ');
}

function fieldRow(section, key, entry) {
  const name = fieldName(section, key);
  // Ids by position: section and key names may hold characters an id reference cannot.
  page.fieldIds += 1;
  const id = `field-${page.fieldIds}`;
  const overlay = !entry.source.endsWith(`[${section}]`);
  const field = control({ ...entry, overlay }, id);
  const error = el('p', { id: `${id}-error`, class: 'field-error' });
  field.input.setAttribute('aria-describedby', `${id}-help ${id}-error`);
  if (!field.readOnly) {
    field.input.addEventListener('input', () => markDirty(name));
    field.input.addEventListener('change', () => markDirty(name));
  }
  const revealable = entry.secret && !field.readOnly;
  const row = el(
    'div',
    { class: 'field', 'data-field': name },
    el('label', { for: id, text: key }),
    el('div', { class: 'control' }, field.input, revealable ? revealButton(field.input, name) : undefined),
    el('p', { id: `${id}-help`, class: 'hint', text: helpText({ ...entry, overlay }) }),
    error,
  );
  page.fields.set(name, { ...field, section, key, error, row, secret: entry.secret });
  return row;
}

function sectionFieldset(section, entries) {
  const rows = Object.entries(entries).map(([key, entry]) => fieldRow(section, key, entry));
  const editable = Object.keys(entries).some((key) => !page.fields.get(fieldName(section, key)).readOnly);
  const button = el('button', { type: 'button', class: 'secondary', 'data-save': section, text: `Save ${section}`, onclick: () => save(section) });
  return el('fieldset', { 'data-section': section }, el('legend', { text: section }), ...rows, editable ? el('p', { class: 'actions' }, button) : undefined);
}

const changed = (field) => !field.readOnly && field.read() !== field.loaded;

function isDirty() {
  for (const field of page.fields.values()) if (changed(field)) return true;
  return false;
}

function markDirty(name) {
  const field = page.fields.get(name);
  field.row.classList.toggle('dirty', changed(field));
}

/** The edits of the form: `{section: {key: JSON value}}`, of one section or all. */
function edits(only) {
  const out = {};
  for (const field of page.fields.values()) {
    if ((only && field.section !== only) || !changed(field)) continue;
    out[field.section] ??= {};
    out[field.section][field.key] = field.json();
  }
  return out;
}

/**
 * The form's edits, to put back after the form is built again: name → {text, base}, `base` the
 * text the user edited from. Put back on a file where that key reads otherwise, an edit is
 * contested: someone changed what the user was changing, and the user is shown it.
 */
function editsOf(keep = () => true) {
  const out = new Map();
  for (const [name, field] of page.fields) if (changed(field) && keep(field)) out.set(name, { text: field.read(), base: field.loaded });
  return out;
}

/** The field that has focus (and where its caret is), to give it back after the form is built again. */
function focusedField() {
  const active = document.activeElement;
  const name = active?.closest?.('[data-field]')?.dataset.field;
  if (!name) return undefined;
  return { name, start: active.selectionStart ?? null, end: active.selectionEnd ?? null };
}

function restoreFocus(focused) {
  const input = focused && page.fields.get(focused.name)?.input;
  if (!input) return;
  input.focus();
  if (focused.start !== null && typeof input.setSelectionRange === 'function') input.setSelectionRange(focused.start, focused.end);
}

/**
 * Reads config.ini again and builds the form on it. `keep`: edits to put back (see editsOf). Without
 * it, a form with edits is left as it is, ETag included: rebasing them silently on a newer file
 * would let a save overwrite what someone else changed, unseen. Edits put back whose key changed
 * meanwhile, or no longer exists, are shown (review: false leaves that to the caller).
 * Answers false when the form was left as it was, else {contested, dropped}.
 */
async function loadSettings({ keep, review = true } = {}) {
  if (keep === undefined && isDirty()) return false;
  page.settingsRead += 1;
  const read = page.settingsRead;
  const result = await api('/api/v1/settings?explain=true');
  // A newer read is on its way, or the user started typing while this one was: keep the form.
  if (read !== page.settingsRead || (keep === undefined && isDirty())) return false;
  if (!result.ok) {
    if (result.status !== 401) $('#settings-error').textContent = `config.ini could not be read: ${problem(result)}`;
    return false;
  }
  const focused = focusedField();
  const pending = new Map([...page.keptEdits, ...(keep ?? [])]);
  page.keptEdits.clear();
  // The API key is shown as set: its value is not kept in the page, not even in memory.
  for (const entry of Object.values(result.answer.api_key ?? {})) {
    entry.value = null;
    delete entry.raw;
  }
  page.settings = result.answer;
  page.etag = result.etag;
  page.fields.clear();
  $('#sections').replaceChildren(...Object.entries(result.answer).map(([section, entries]) => sectionFieldset(section, entries)));
  const contested = [];
  const dropped = [];
  for (const [name, { text, base }] of pending) {
    const field = page.fields.get(name);
    if (!field || field.readOnly) {
      dropped.push(name);
      continue;
    }
    // The file holds the user's own text (a save whose answer was lost): nothing to put back.
    if (text === field.loaded) continue;
    if (base !== undefined && base !== field.loaded) contested.push({ name, was: base, now: field.loaded, mine: text, secret: field.secret });
    field.set(text);
    markDirty(name);
  }
  $('#settings-form').dataset.revision = unquote(page.etag);
  restoreFocus(focused);
  if (review && (contested.length > 0 || dropped.length > 0)) {
    conflictBox({
      intro: 'Your changes are in the form, on config.ini as it is now. Keys you changed were changed meanwhile too (by someone else, or a rollback):',
      rows: contested,
      dropped,
    });
  }
  return { contested, dropped };
}

function clearErrors() {
  $('#settings-error').textContent = '';
  $('#settings-notice').textContent = '';
  for (const field of page.fields.values()) {
    field.error.textContent = '';
    field.input.removeAttribute('aria-invalid');
  }
}

/** Every refused field next to itself; what names no field of the form, above the buttons. */
function showFieldErrors(answer) {
  const elsewhere = [];
  for (const error of answer.errors ?? []) {
    const field = page.fields.get(error.field);
    if (!field) {
      elsewhere.push(error.message);
      continue;
    }
    field.error.textContent = field.error.textContent ? `${field.error.textContent} ${error.message}` : error.message;
    field.input.setAttribute('aria-invalid', 'true');
  }
  const first = [...page.fields.values()].find((field) => field.input.hasAttribute('aria-invalid'))?.input;
  const count = (answer.errors ?? []).length;
  $('#settings-error').textContent =
    `Nothing was saved: ${count === 1 ? 'one value was' : `${count} values were`} refused.${elsewhere.length > 0 ? ` ${elsewhere.join(' ')}` : ''}`;
  (first ?? $('#save-all')).focus();
}

/** While a save waits for the services, no second one starts from the same form. */
function setSaving(saving) {
  page.saving = saving;
  for (const button of document.querySelectorAll('#save-all, #discard, #reapply, [data-save]')) button.disabled = saving;
}

/** An answer that does not say whether the write happened: the console lost confhub, or the browser the console. */
const unknownOutcome = (result) => result.status === 0 || ((result.status === 502 || result.status === 504) && !result.answer.code);

async function save(only, { retried = false, again = false } = {}) {
  // `again`: the save that a conflict with no setting changed sends once more, still inside the first.
  if (page.saving && !again) return;
  const changes = edits(only);
  if (Object.keys(changes).length === 0) {
    $('#settings-notice').textContent = 'Nothing to save: no value was changed.';
    return;
  }
  clearErrors();
  $('#conflict').hidden = true;
  const sent = editsOf((field) => !only || field.section === only);
  const names = [...sent.keys()];
  activity(`Saving ${names.join(', ')} and applying to the services…`);
  setSaving(true);
  try {
    const before = page.etag;
    const result = await api('/api/v1/settings?wait=true', { method: 'PATCH', body: changes, headers: before ? { 'if-match': before } : {} });
    if (unknownOutcome(result)) {
      activity(`No answer came: whether ${names.join(', ')} was saved is not known. Your edits stay in the form; History shows what config.ini holds.`, {
        outcome: 'failed',
      });
      return;
    }
    if (result.status === 412) {
      activity('');
      return await conflict(only, { retried });
    }
    if (result.status === 400 && result.answer.errors) {
      activity('');
      return showFieldErrors(result.answer);
    }
    // Written but not applied (rolled back, or the worker did not answer in time): the file has it.
    const written = result.ok || WRITTEN_CODES.has(result.answer.code) || (result.etag !== null && unquote(result.etag) !== unquote(before));
    if (!written) {
      activity('');
      if (result.status !== 401) $('#settings-error').textContent = `Nothing was saved: ${problem(result)}`;
      return;
    }
    if (result.answer.code === 'SYNC_FAILED') {
      // config.ini goes back to what the services run: the values stay in the form, to be corrected.
      reportWrite(`Saved ${names.join(', ')}`, result);
      $('#settings-notice').textContent = 'Your values are still in the form: correct them and save again, or discard them.';
      return;
    }
    // Edits made while the services were applying it stay, checked against what this save wrote.
    const later = new Map();
    for (const [name, edit] of editsOf()) {
      if (sent.get(name)?.text !== edit.text) later.set(name, { text: edit.text, base: sent.has(name) ? sent.get(name).text : edit.base });
    }
    await loadSettings({ keep: later });
    (only ? document.querySelector(`[data-save="${CSS.escape(only)}"]`) : $('#save-all'))?.focus();
    reportWrite(`Saved ${names.join(', ')}`, result);
  } finally {
    setSaving(false);
  }
}

/** A key's text in the conflict table: secrets masked, a missing key said so. */
function conflictText(text, secret) {
  if (text === undefined) return '(not set)';
  return secret ? MASK : text;
}

/** The keys whose written text differs between two reads of config.ini, with what each read had. */
function changedMeanwhile(before, now, mine) {
  const out = [];
  const entryOf = (settings, section, key) => (Object.hasOwn(settings, section) && Object.hasOwn(settings[section], key) ? settings[section][key] : undefined);
  for (const section of new Set([...Object.keys(before), ...Object.keys(now)])) {
    const keys = new Set([...Object.keys(before[section] ?? {}), ...Object.keys(now[section] ?? {})]);
    for (const key of keys) {
      const was = entryOf(before, section, key);
      const is = entryOf(now, section, key);
      if ((was ?? is).kind === 'api_key') continue;
      const wasText = was ? writtenText(was) : undefined;
      const isText = is ? writtenText(is) : undefined;
      if (wasText === isText && Boolean(was) === Boolean(is)) continue;
      const name = fieldName(section, key);
      out.push({ name, was: wasText, now: isText, mine: mine.get(name)?.text, secret: (was ?? is).secret });
    }
  }
  return out;
}

/**
 * The conflict panel: what changed meanwhile beside the user's edits (secrets masked), what could
 * not be kept, and the choice: save the edits on the file as it is now, or drop them.
 */
function conflictBox({ intro, rows, dropped = [], only }) {
  const headings = ['Key', 'When you opened the page', 'Now', 'Your change'].map((heading) => el('th', { scope: 'col', text: heading }));
  const body = rows.map((row) =>
    el(
      'tr',
      { class: row.mine !== undefined ? 'clash' : undefined },
      el('th', { scope: 'row', text: row.name }),
      el('td', { text: conflictText(row.was, row.secret) }),
      el('td', { text: conflictText(row.now, row.secret) }),
      el('td', { text: row.mine !== undefined ? conflictText(row.mine, row.secret) : '' }),
    ),
  );
  const box = $('#conflict');
  box.replaceChildren(
    el('h3', { id: 'conflict-title', text: 'config.ini changed while you were editing' }),
    el('p', { text: intro }),
    rows.length > 0 ? el('table', {}, el('thead', {}, el('tr', {}, ...headings)), el('tbody', {}, ...body)) : undefined,
    dropped.length > 0
      ? el('p', { class: 'error', text: `No longer in config.ini, or not editable here: ${dropped.join(', ')}. Your changes to them were not kept.` })
      : undefined,
    el(
      'p',
      { class: 'actions' },
      el('button', { type: 'button', id: 'reapply', text: 'Re-apply my changes', onclick: () => resolveConflict({ reapply: true, only }) }),
      ' ',
      el('button', { type: 'button', class: 'secondary', text: 'Discard my changes', onclick: () => resolveConflict({ reapply: false, only }) }),
    ),
  );
  box.hidden = false;
  $('#reapply').focus();
}

/**
 * 412: config.ini changed since the form was loaded. The form is built again on the new file with
 * the user's edits put back, beside a table of what changed meanwhile. When no setting did (an
 * environment variable or a comment changed), the save simply goes again, once.
 */
async function conflict(only, { retried }) {
  const before = page.settings;
  const mine = editsOf();
  const rebuilt = await loadSettings({ keep: new Map([...mine].map(([name, { text }]) => [name, { text }])), review: false });
  if (!rebuilt) return;
  const rows = changedMeanwhile(before, page.settings, mine);
  if (rows.length === 0 && rebuilt.dropped.length === 0 && !retried) return save(only, { retried: true, again: true });
  conflictBox({
    intro:
      rows.length > 0
        ? 'Nothing was saved. Your changes are still in the form; the other values now show the file as it is. These keys changed meanwhile:'
        : 'Nothing was saved: config.ini changed meanwhile. Your changes are still in the form.',
    rows,
    dropped: rebuilt.dropped,
    only,
  });
}

async function resolveConflict({ reapply, only }) {
  $('#conflict').hidden = true;
  if (reapply) await save(only);
  // Discarding after "Save <section>" drops that section's edits: the others were not part of it.
  else await loadSettings({ keep: only ? editsOf((field) => field.section !== only) : new Map() });
}

function settingsChangedElsewhere(type, data) {
  if (page.saving || data.revision === unquote(page.etag) || page.settings === null) return;
  if (type === 'env.changed') {
    // Variables live in config.ini too: a form without edits takes the new ETag quietly.
    void loadSettings();
    return;
  }
  const by = `${data.actor?.type ?? 'someone'}${data.actor?.id ? ` (${data.actor.id})` : ''}`;
  const what = data.keys.join(', ') || 'config.ini';
  if (!isDirty() && $('#conflict').hidden) {
    void loadSettings();
    $('#settings-notice').textContent = `Updated: ${by} changed ${what}.`;
  } else {
    $('#settings-notice').textContent = `${by} changed ${what} while you were editing; saving will show you what changed.`;
  }
}

// --- history, diffs, rollback --------------------------------------------------------------------

const actorWords = (actor) => (actor ? `${actor.type}${actor.id ? ` ${actor.id}` : ''}` : '—');

function keysWords(changes) {
  const keys = changes.map((change) => change.key);
  return keys.length > 4 ? `${keys.slice(0, 4).join(', ')} and ${keys.length - 4} more` : keys.join(', ');
}

function commitRow(commit, index) {
  const label = `${short(commit.id)} (${commit.summary})`;
  return el(
    'tr',
    { 'data-commit': commit.id },
    el('td', {}, when(commit.time)),
    el('td', { text: actorWords(commit.actor) }),
    el('td', { text: commit.rollbackOf ? `${commit.source}, rollback to ${short(commit.rollbackOf)}` : commit.source }),
    el('td', { text: keysWords(commit.changes) }),
    el('td', { class: `outcome-${commit.sync?.outcome ?? 'none'}`, text: outcomeWords(commit.sync?.outcome) }),
    el(
      'td',
      { class: 'actions' },
      el('button', {
        type: 'button',
        class: 'secondary',
        'aria-label': `View changes of ${label}`,
        text: 'View changes',
        onclick: () => openCommit(commit.id),
      }),
      index === 0
        ? undefined
        : el('button', { type: 'button', 'aria-label': `Roll back to ${label}`, text: 'Roll back to this', onclick: () => askRollback(commit) }),
    ),
  );
}

function commitOption(commit) {
  return el('option', { value: commit.id, text: `${short(commit.id)} · ${new Date(commit.time).toLocaleString()} · ${commit.summary}` });
}

async function loadHistory({ older = false } = {}) {
  // A refresh reads as many as the list shows (older pages loaded included), up to the API's 200.
  const limit = older ? 50 : Math.min(200, Math.max(50, page.commits.length));
  const query = older && page.next ? `?limit=50&before=${encodeURIComponent(page.next)}` : `?limit=${limit}`;
  page.historyRead += 1;
  const read = page.historyRead;
  const result = await api(`/api/v1/settings/history${query}`);
  // Only the newest read draws the list: a refresh crossing "Load older" would leave a gap or a duplicate.
  if (!result.ok || read !== page.historyRead) return;
  page.commits = older ? [...page.commits, ...result.answer.commits] : result.answer.commits;
  page.next = result.answer.next;
  $('#commits tbody').replaceChildren(...page.commits.map(commitRow));
  $('#older').hidden = !page.next;
  const [from, to] = [$('#compare-from'), $('#compare-to')];
  const chosen = [from.value, to.value];
  from.replaceChildren(...page.commits.map(commitOption));
  to.replaceChildren(...page.commits.map(commitOption));
  const listed = (id) => page.commits.some((commit) => commit.id === id);
  from.value = listed(chosen[0]) ? chosen[0] : (page.commits[1]?.id ?? page.commits[0]?.id ?? '');
  to.value = listed(chosen[1]) ? chosen[1] : (page.commits[0]?.id ?? '');
}

/** The changed keys as a table: key, before, after; changed keys marked. */
function splitDiff(diff) {
  const rows = [];
  for (const [key, value] of Object.entries(diff.removed)) rows.push({ key, old: value, new: undefined, change: 'removed' });
  for (const [key, value] of Object.entries(diff.added)) rows.push({ key, old: undefined, new: value, change: 'added' });
  for (const [key, value] of Object.entries(diff.changed)) rows.push({ key, old: value.old, new: value.new, change: 'changed' });
  rows.sort((a, b) => a.key.localeCompare(b.key));
  if (rows.length === 0) return el('p', { text: 'No differences.' });
  return el(
    'table',
    { class: 'diff split' },
    el(
      'thead',
      {},
      el('tr', {}, el('th', { scope: 'col', text: 'Key' }), el('th', { scope: 'col', text: 'Before' }), el('th', { scope: 'col', text: 'After' })),
    ),
    el(
      'tbody',
      {},
      ...rows.map((row) =>
        el(
          'tr',
          { class: `change-${row.change}`, 'data-key': row.key },
          el('th', { scope: 'row' }, el('mark', { text: row.key }), el('span', { class: 'visually-hidden', text: ` ${row.change}` })),
          el('td', {}, row.old === undefined ? '—' : el('del', { text: row.old })),
          el('td', {}, row.new === undefined ? '—' : el('ins', { text: row.new })),
        ),
      ),
    ),
  );
}

/** The unified text diff of config.ini, lines marked added, removed or hunk. */
function inlineDiff(unified) {
  if (!unified) return el('p', { text: 'No differences.' });
  const lines = unified.replace(/\n$/, '').split('\n');
  const kind = (line) => {
    if (/^(diff |index |--- |\+\+\+ )/.test(line)) return 'meta';
    if (line.startsWith('@@')) return 'hunk';
    if (line.startsWith('+')) return 'add';
    return line.startsWith('-') ? 'del' : 'same';
  };
  return el('pre', { class: 'diff inline' }, ...lines.map((line) => el('span', { class: `line line-${kind(line)}`, text: `${line}\n` })));
}

function renderDiff() {
  const layout = document.querySelector('input[name="layout"]:checked').value;
  $('#diff').replaceChildren(layout === 'split' ? splitDiff(page.diff.diff) : inlineDiff(page.diff.unified));
}

function showDiff(title, answer) {
  page.diff = answer;
  $('#diff-title').textContent = title;
  $('#diff-view').hidden = false;
  renderDiff();
  $('#diff-title').focus();
}

async function openCommit(id) {
  const result = await api(`/api/v1/settings/history/${id}`);
  if (result.status === 401) return;
  if (!result.ok) return activity(`Could not open revision ${short(id)}: ${problem(result)}`);
  const from = result.answer.parent ? `from ${short(result.answer.parent)}` : 'the first revision';
  showDiff(`Revision ${short(id)}: ${result.answer.summary} (${from})`, result.answer);
}

async function compare(event) {
  event.preventDefault();
  const [from, to] = [$('#compare-from').value, $('#compare-to').value];
  const result = await api(`/api/v1/settings/diff?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
  if (result.status === 401) return;
  if (!result.ok) return activity(`Could not compare: ${problem(result)}`);
  showDiff(`Compare ${short(from)} → ${short(to)}`, result.answer);
}

/** The confirmation shows what the rollback will change: the diff from the newest revision to that one. */
/**
 * The confirmation shows what the rollback will change: the diff from the newest revision to that
 * one. The rollback is sent with that newest revision as If-Match, so a write landing while the
 * dialog is open is not undone unseen.
 */
async function askRollback(commit) {
  // One dialog at a time: a second click while this one is being prepared does nothing.
  if (page.rollback !== null || page.saving) return;
  page.rollback = { commit, etag: null };
  try {
    // The file's revision first, then the newest commit: the diff shown is from that commit, and
    // the rollback goes with the file's revision as If-Match, so it undoes nothing the diff left out.
    const file = await api('/api/v1/settings');
    const history = await api('/api/v1/settings/history?limit=1');
    if (file.status === 401 || history.status === 401) return;
    const newest = history.answer.commits?.[0];
    // A commit of an older version has no revision: the file's ETag stands for it unchecked.
    if (!file.etag || !newest || (newest.revision && `"${newest.revision}"` !== file.etag)) {
      activity('config.ini is changing (its newest revision is not in the history yet): open "Roll back to this" again in a moment.', { outcome: 'failed' });
      return;
    }
    page.rollback.etag = file.etag;
    $('#rollback-title').textContent = `Roll back to ${short(commit.id)}?`;
    const confirm = $('#rollback-confirm');
    if (newest.id === commit.id) {
      $('#rollback-summary').textContent = 'This is the current revision: rolling back to it changes nothing.';
      $('#rollback-diff').replaceChildren();
      confirm.disabled = true;
    } else {
      const result = await api(`/api/v1/settings/diff?from=${newest.id}&to=${commit.id}`);
      if (result.status === 401) return;
      if (!result.ok) return activity(`Could not prepare the rollback: ${problem(result)}`, { outcome: 'failed' });
      $('#rollback-summary').textContent =
        `config.ini goes back to revision ${short(commit.id)} (${commit.summary}, ${new Date(commit.time).toLocaleString()}). These changes will be written and applied to the services:`;
      $('#rollback-diff').replaceChildren(splitDiff(result.answer.diff));
      confirm.disabled = false;
    }
    $('#rollback-dialog').showModal();
    return;
  } finally {
    if (!$('#rollback-dialog').open) page.rollback = null;
  }
}

/**
 * The dialog's answer, taken when its button is pressed (the close event comes later, as a task of
 * its own: a click on another row before it must find the dialog free). Escape cancels too.
 */
function rollbackConfirmed() {
  const chosen = page.rollback;
  page.rollback = null;
  if (chosen) void rollback(chosen);
}

function rollbackCancelled() {
  page.rollback = null;
}

async function rollback({ commit, etag }) {
  const id = commit.id;
  activity(`Rolling back to ${short(id)} and applying it to the services…`);
  setSaving(true);
  let result;
  try {
    result = await api('/api/v1/settings/rollback?wait=true', { method: 'POST', body: { commit: id }, headers: etag ? { 'if-match': etag } : {} });
  } finally {
    setSaving(false);
  }
  if (result.status === 412) {
    activity(`config.ini changed while the confirmation was open: nothing was rolled back. Open "Roll back to this" again to see what it would change now.`, {
      outcome: 'failed',
    });
    return;
  }
  if (unknownOutcome(result))
    return activity(`No answer came: whether config.ini was rolled back to ${short(id)} is not known. History shows it.`, { outcome: 'failed' });
  if (result.ok && result.answer.changed.length === 0) return activity(`config.ini already holds revision ${short(id)}'s content: nothing changed.`);
  if (!result.ok && !WRITTEN_CODES.has(result.answer.code)) {
    if (result.status !== 401) activity(`The rollback to ${short(id)} was refused: ${problem(result)}`, { outcome: 'failed' });
    return;
  }
  reportWrite(`Rolled back to ${short(id)}`, result);
  if (!(await loadSettings()) && isDirty()) {
    $('#settings-notice').textContent = `config.ini was rolled back to ${short(id)} while you were editing; saving will show you what changed.`;
  }
}

// --- live channel --------------------------------------------------------------------------------

/**
 * The event log over the console's WebSocket (the session cookie stands for the key): reconnects
 * with full-jitter backoff from 1 s to 30 s, resumes with `since`, takes 10 s without a message
 * as a dead connection, waits for the browser to be online, and stops on 4401 (signed out).
 */
const live = {
  socket: null,
  rev: null,
  attempt: 0,
  retry: null,
  silence: null,
  stable: null,
  /** Twice the heartbeat confhub announces in hello: that long without a message is a dead connection. */
  silenceMs: 10_000,
  running: false,
  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  },
  stop() {
    this.running = false;
    this.attempt = 0;
    clearTimeout(this.retry);
    clearTimeout(this.silence);
    clearTimeout(this.stable);
    this.socket?.close(1000);
    this.socket = null;
  },
  /** The indicator: its state is announced when it changes; the detail (the countdown) is not. */
  state(state, detail = '') {
    const box = $('#live');
    if (box.dataset.state !== state) {
      box.dataset.state = state;
      $('#live-state').textContent = `Live updates: ${state}`;
    }
    $('#live-detail').textContent = detail ? ` (${detail})` : '';
  },
  connect() {
    if (!this.running) return;
    clearTimeout(this.retry);
    const url = new URL('/api/v1/ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this.rev !== null) url.searchParams.set('since', this.rev);
    // navigator.onLine is only a hint (a machine with loopback alone says offline): always try.
    const socket = new WebSocket(url, ['confhub.v1']);
    this.socket = socket;
    this.alive();
    socket.addEventListener('message', (message) => socket === this.socket && this.receive(message.data));
    socket.addEventListener('close', (closed) => socket === this.socket && this.closed(closed.code));
  },
  alive() {
    clearTimeout(this.silence);
    this.silence = setTimeout(() => this.drop(), this.silenceMs);
  },
  /**
   * Gives up the connection now: on a dead one the browser's close event may take a minute (it
   * waits for the other side's close frame), and the indicator must not say connected meanwhile.
   */
  drop() {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    socket.close(4000);
    this.closed(1006);
  },
  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === 'hello' && message.heartbeatMs > 0) this.silenceMs = 2 * message.heartbeatMs;
    this.alive();
    if (typeof message.rev === 'number') {
      this.rev = message.rev;
      $('#live').dataset.rev = message.rev;
    }
    if (message.type === 'hello') {
      // The backoff starts again once a connection has held a while, not at every hello: a server
      // that accepts and drops at once is not retried every second.
      clearTimeout(this.stable);
      this.stable = setTimeout(() => {
        this.attempt = 0;
      }, 10_000);
      this.state('connected');
      // What happened between the page's reads and this hello (a first connection has no since).
      scheduleRefresh();
    } else if (message.type === 'reset') refreshAll();
    else if (message.type && message.type !== 'heartbeat') onEvent(message);
  },
  closed(code) {
    clearTimeout(this.silence);
    clearTimeout(this.stable);
    this.socket = null;
    if (!this.running) return;
    if (code === 4401) return sessionEnded();
    if (code === 4400) return this.state('offline', 'confhub refused a request of the page; reload it');
    const delay = Math.random() * Math.min(30_000, 1000 * 2 ** this.attempt);
    this.attempt += 1;
    const next = `next attempt in ${Math.ceil(delay / 1000)} s`;
    if (!navigator.onLine) this.state('offline', `the browser is offline; ${next}`);
    else if (this.attempt > 3) this.state('offline', `confhub is not answering; ${next}`);
    else this.state('reconnecting', next);
    this.retry = setTimeout(() => this.connect(), delay);
  },
};

let refreshing = null;
/** Events come in bursts (one per target): one refresh after the burst. */
function scheduleRefresh() {
  clearTimeout(refreshing);
  refreshing = setTimeout(() => {
    if ($('#app').hidden) return;
    if (!$('#view-status').hidden) void loadStatus();
    if (!$('#view-history').hidden) void loadHistory();
  }, 150);
}

function refreshAll() {
  scheduleRefresh();
  if (!page.saving && !isDirty()) void loadSettings();
}

function onEvent({ type, data }) {
  if (type === 'settings.changed' || type === 'env.changed') settingsChangedElsewhere(type, data);
  if (type.startsWith('sync.') && type !== 'sync.rollback_failed') patchTargets(data);
  scheduleRefresh();
}

// --- sign-in -------------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const key = $('#key');
  const error = $('#signin-error');
  error.textContent = '';
  let response;
  try {
    response = await fetch('/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: key.value }) });
  } catch {
    error.textContent = 'The console is not answering; try again.';
    return;
  }
  key.value = '';
  if (!response.ok) {
    const answer = await answerOf(response);
    error.textContent = answer.details || answer.message || `Signing in failed (${response.status})`;
    key.focus();
    return;
  }
  await show(true);
}

/** Signing out leaves nothing read from confhub in the page, and no edits to come back to. */
async function signOut() {
  if ((isDirty() || page.keptEdits.size > 0) && !confirm('Sign out and drop your unsaved changes?')) return;
  page.keptEdits.clear();
  await show(false);
  try {
    await fetch('/session', { method: 'DELETE' });
  } catch {
    // The console is gone: its sessions (in its memory) are gone with it.
  }
}

$('#signin').addEventListener('submit', signIn);
$('#signout').addEventListener('click', signOut);
$('#settings-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void save();
});
$('#discard').addEventListener('click', () => {
  $('#conflict').hidden = true;
  clearErrors();
  void loadSettings({ keep: new Map() });
});
$('#compare').addEventListener('submit', compare);
$('#rollback-confirm').addEventListener('click', rollbackConfirmed);
$('#rollback-cancel').addEventListener('click', rollbackCancelled);
$('#rollback-dialog').addEventListener('cancel', rollbackCancelled);
// Closed another way (signing out closes it): nothing was chosen. Confirm has taken its choice by then.
$('#rollback-dialog').addEventListener('close', rollbackCancelled);
$('#older').addEventListener('click', () => loadHistory({ older: true }));
for (const radio of document.querySelectorAll('input[name="layout"]')) radio.addEventListener('change', renderDiff);
window.addEventListener('hashchange', route);
window.addEventListener('offline', () => {
  live.drop();
  live.state('offline', 'the browser is offline');
});
window.addEventListener('online', () => {
  live.attempt = 0;
  if (live.running && !live.socket) live.connect();
});
window.addEventListener('beforeunload', (event) => {
  if (isDirty() || page.keptEdits.size > 0) event.preventDefault();
});

const session = await fetch('/session').then(answerOf, () => ({ signedIn: false }));
await show(Boolean(session.signedIn));
document.body.dataset.ready = 'true';
// Interactive: the view the page opened on has its data (the benchmark reads this mark).
performance.mark('console-ready');
