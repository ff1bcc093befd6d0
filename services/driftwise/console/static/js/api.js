// The console's JSON endpoints. GETs read; POSTs carry the session's CSRF token (from the page's
// meta tag) in a header, which the console checks with the Origin before it writes anything.

export class ApiError extends Error {
  constructor(status, error) {
    const e = error || {};
    super(e.message || e.summary || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || `HTTP_${status}`;
    this.summary = e.summary || `HTTP ${status}`;
  }
}

export const csrfToken = () => {
  const meta = document.querySelector('meta[name="driftwise-csrf"]');
  return meta ? meta.getAttribute('content') : '';
};

export function setCsrfToken(token) {
  const meta = document.querySelector('meta[name="driftwise-csrf"]');
  if (meta) meta.setAttribute('content', token);
}

export function apiUrl(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, String(value));
  }
  return url.pathname + url.search;
}

async function answer(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok) return body;
  const error = new ApiError(response.status, body && body.error);
  if (error.code === 'UNAUTHENTICATED' && window.location.pathname !== '/login') {
    const next = window.location.pathname + window.location.search;
    window.location.assign(`/login?${new URLSearchParams({ next })}`);
  }
  throw error;
}

export async function getJson(path, params = {}) {
  const response = await fetch(apiUrl(path, params), {
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
  });
  return answer(response);
}

export async function postJson(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Driftwise-CSRF': csrfToken() },
    body: JSON.stringify(body),
  });
  return answer(response);
}

// Resolve to {data} or {error}: a page draws what it got and says what it could not get.
export async function settle(promise) {
  try {
    return { data: await promise };
  } catch (error) {
    if (error instanceof ApiError) return { error };
    return { error: new ApiError(0, { code: 'NETWORK', summary: 'the console did not answer', message: String(error) }) };
  }
}
