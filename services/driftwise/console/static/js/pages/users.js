// Users: the users with events, most recently active first (InsightService.ListUsers), found by
// the start of their id; or straight to a user by id.

import { getJson, settle } from '../api.js';
import { el, errorBox, fmtAgo, fmtInt, pageUrl, replace, section, table, userLink } from '../dom.js';

function goTo() {
  const input = el('input', { type: 'text', name: 'id', placeholder: 'user id', required: true, maxlength: 128 });
  const form = el('form', { class: 'inline', action: '/user', method: 'get' }, input, el('button', { type: 'submit' }, 'Open user'));
  return section('Open a user', form);
}

export async function render(main, params) {
  const prefix = params.get('prefix') || '';
  const pageToken = params.get('page_token') || '';
  const list = el('div', { id: 'user-list' });
  const search = el('form', { class: 'inline', action: '/users', method: 'get' },
    el('input', { type: 'search', name: 'prefix', value: prefix, placeholder: 'id starts with…', maxlength: 128 }),
    el('button', { type: 'submit' }, 'Filter'));
  replace(main, el('h1', {}, 'Users'), goTo(), section('Most recently active', search, list));
  const result = await settle(getJson('/api/users', { prefix, page_token: pageToken }));
  if (result.error) {
    replace(list, errorBox(result.error));
    return;
  }
  const page = result.data;
  replace(list,
    el('p', { class: 'muted' }, `${fmtInt(page.total_users)} users with events.`),
    table(['user', 'events', 'last event', 'profile version'],
      page.users.map((u) => [userLink(u.user_id), fmtInt(u.event_count), fmtAgo(u.last_event_time), fmtInt(u.profile_version)]),
      { class: 'users' }),
    page.next_page_token ? el('a', { class: 'button', href: pageUrl('/users', { prefix, page_token: page.next_page_token }) }, 'Next page') : null);
}
