// The console's one entry point: draws the page the path names into <main>, marks the navigation
// and the session, then flags the page ready (data-ready on <html> and a "driftwise-ready"
// performance mark, which the browser test reads as the page's load time).

import { getJson, postJson, settle } from './api.js';
import { el, errorBox, replace } from './dom.js';
import * as evaluation from './pages/evaluation.js';
import * as item from './pages/item.js';
import * as items from './pages/items.js';
import * as login from './pages/login.js';
import * as overview from './pages/overview.js';
import * as quality from './pages/quality.js';
import * as user from './pages/user.js';
import * as users from './pages/users.js';

const PAGES = {
  '/': overview,
  '/quality': quality,
  '/users': users,
  '/user': user,
  '/items': items,
  '/item': item,
  '/evaluation': evaluation,
  '/login': login,
};

function markNavigation(path) {
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.page.split(' ').includes(path)) link.setAttribute('aria-current', 'page');
  }
}

async function showSession() {
  const { data } = await settle(getJson('/api/session'));
  const box = document.getElementById('session');
  if (!data || !box) return;
  const target = el('span', { class: 'target', title: 'the Driftwise server this console reads' }, data.target);
  if (data.logged_in) {
    const out = el('button', { type: 'button', class: 'link' }, 'log out');
    out.addEventListener('click', async () => {
      await settle(postJson('/api/logout', {}));
      const next = window.location.pathname + window.location.search;
      window.location.assign(`/login?${new URLSearchParams({ next })}`);
    });
    replace(box, target, ' · logged in · ', out);
  } else if (data.auth_seen) {
    replace(box, target, ' · ', el('a', { href: '/login' }, 'log in'));
  } else {
    replace(box, target);
  }
}

async function start() {
  const path = window.location.pathname;
  const page = PAGES[path];
  const main = document.getElementById('page');
  markNavigation(path);
  showSession();
  try {
    if (!page) throw new Error(`no page at ${path}`);
    await page.render(main, new URLSearchParams(window.location.search));
  } catch (error) {
    replace(main, errorBox({ code: error.code || 'ERROR', summary: error.summary || 'this page failed', message: error.message }));
  }
  document.documentElement.dataset.ready = '1';
  performance.mark('driftwise-ready');
}

start();
