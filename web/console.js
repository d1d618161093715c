// The console's page: sign in with the API key once (the console keeps a session cookie, never the
// key in the page), then the targets' state. No framework, no build step, nothing from a CDN.
const $ = (selector) => document.querySelector(selector);

function show(signedIn) {
  $('#signin').hidden = signedIn;
  $('#app').hidden = !signedIn;
  $('#signout').hidden = !signedIn;
  if (!signedIn) $('#key').focus();
}

async function answerOf(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

async function loadTargets() {
  const response = await fetch('/api/v1/sync/status');
  if (response.status === 401) return show(false);
  const status = await answerOf(response);
  const body = $('#targets tbody');
  body.replaceChildren(
    ...(status.targets ?? []).map((target) => {
      const row = document.createElement('tr');
      row.append(
        cell(target.target),
        cell(target.state.replaceAll('_', ' '), `state-${target.state}`),
        cell(target.lastError ? `${target.lastError.code}: ${target.lastError.details}` : ''),
      );
      return row;
    }),
  );
}

async function signIn(event) {
  event.preventDefault();
  const key = $('#key');
  const error = $('#signin-error');
  error.textContent = '';
  const response = await fetch('/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: key.value }) });
  key.value = '';
  if (!response.ok) {
    const answer = await answerOf(response);
    error.textContent = answer.details || answer.message || `Signing in failed (${response.status})`;
    key.focus();
    return;
  }
  show(true);
  await loadTargets();
}

async function signOut() {
  await fetch('/session', { method: 'DELETE' });
  show(false);
}

$('#signin').addEventListener('submit', signIn);
$('#signout').addEventListener('click', signOut);
const session = await answerOf(await fetch('/session'));
show(Boolean(session.signedIn));
if (session.signedIn) await loadTargets();
