// The log's HTTP API, same origin only: the token (sessionStorage, this tab only), the policy
// (localStorage: public information), and requests with a time limit and Cairn's JSON errors.

const TOKEN_KEY = 'cairn.ui.token';
const ROLE_KEY = 'cairn.ui.role';
const POLICY_KEY = 'cairn.ui.policy';
/** Every request gives up after this long. */
const REQUEST_TIMEOUT_MS = 20000;

export function token() { return sessionStorage.getItem(TOKEN_KEY); }
export function role() { return sessionStorage.getItem(ROLE_KEY); }
export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ROLE_KEY);
}

export function policy() { return localStorage.getItem(POLICY_KEY) || ''; }
export function setPolicy(text) { localStorage.setItem(POLICY_KEY, text); }
export function forgetPolicy() { localStorage.removeItem(POLICY_KEY); }

/** An error answer of the log: its HTTP status, Cairn's error code and detail. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail ? `${code}: ${detail}` : code);
    this.status = status;
    this.code = code;
  }
}

/**
 * One request to this server. Returns `{status, text, headers}` for 2xx answers, throws
 * ApiError for the others (with the code and detail of Cairn's JSON error body).
 */
export async function request(method, path, { auth = true, body, tokenOverride } = {}) {
  const headers = {};
  const bearer = tokenOverride || token();
  if (auth) {
    if (!bearer) throw new ApiError(401, 'unauthorized', 'sign in first');
    headers.Authorization = 'Bearer ' + bearer;
  }
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, body, cache: 'no-store', credentials: 'omit', redirect: 'error',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new ApiError(0, 'unreachable', `${method} ${path}: ${error.message}`);
  }
  const text = await response.text();
  if (response.ok) return { status: response.status, text, headers: response.headers };
  let code = 'http_' + response.status;
  // Not Cairn's JSON error (a proxy's page, say): its first words, without markup.
  let detail = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 160);
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed.error === 'string') {
      code = parsed.error;
      detail = parsed.detail || '';
    }
  } catch { /* not JSON: keep the text */ }
  throw new ApiError(response.status, code, detail);
}

/**
 * Signs in: the token must read events (reader or admin). `GET /v1/whoami` names its
 * principal and role, without any effect.
 */
export async function signIn(candidate) {
  const { text } = await request('GET', '/v1/whoami', { tokenOverride: candidate });
  let found;
  try {
    found = JSON.parse(text).role;
  } catch {
    throw new ApiError(200, 'bad_answer', '/v1/whoami did not answer JSON');
  }
  if (found !== 'reader' && found !== 'admin') {
    throw new ApiError(403, 'forbidden', `this token is a ${found}'s: the UI needs a reader or an admin token`);
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  sessionStorage.setItem(ROLE_KEY, found);
  return found;
}

/** A query string of the non-empty fields. */
export function query(fields) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    if (value !== undefined && value !== null && value !== '') params.set(name, value);
  }
  const text = params.toString();
  return text ? '?' + text : '';
}
