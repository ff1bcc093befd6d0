// Log in: the server wants a bearer token. The token goes to the console (never into the page or
// a cookie), which checks it against the server and keeps it in this browser's session.

import { getJson, postJson, setCsrfToken, settle } from '../api.js';
import { el, errorBox, replace, section } from '../dom.js';

function nextPage(params) {
  const next = params.get('next') || '/';
  return next.startsWith('/') && !next.startsWith('//') && next !== '/login' ? next : '/';
}

export async function render(main, params) {
  const session = await settle(getJson('/api/session'));
  const input = el('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, size: 48 });
  const status = el('div', { id: 'login-status' });
  const form = el('form', { id: 'login-form' },
    el('label', { for: 'token' }, 'Bearer token'), input, el('button', { type: 'submit' }, 'Log in'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = await settle(postJson('/api/login', { token: input.value }));
    if (result.error) {
      replace(status, errorBox(result.error));
      return;
    }
    setCsrfToken(result.data.csrf);
    window.location.assign(nextPage(params));
  });
  const data = session.data || {};
  replace(main, el('h1', {}, 'Log in'),
    section(`The server at ${data.target || '?'} wants a token`,
      el('p', {}, 'The console calls the server with it on your behalf and keeps it in this browser session only. '
        + 'Read pages need the read scopes (profiles:read, insights:read, recommend); the LIKE / DISLIKE / SKIP buttons need events:write.'),
      data.logged_in ? el('p', { class: 'muted' }, 'You are logged in; a new token replaces the one held.') : null,
      form, status));
}
