/**
 * tools-http: `http_fetch` makes one HTTP request through the host's `http_request`, held to the
 * manifest's `net` allow list, the SSRF rule and the security pipeline. Reference:
 * docs/capsules/tools-http.md.
 */
import { HostError, http, Result } from "@astrid/sdk";

/** Characters of the body answered at most (the rest is cut, with a note). */
const MAX_BODY: i32 = 100000;
/** Bytes of response body accepted from the server at most. */
const MAX_RESPONSE_BYTES: u32 = 8 * 1024 * 1024;

/** Arguments of http_fetch. */
@json
class FetchArgs {
  /** The absolute http:// or https:// URL. */
  url!: string;
  /** The method: GET, POST, PUT, PATCH, DELETE, HEAD (default GET). */
  method: string = "GET";
  /** Request headers by name. */
  headers: Map<string, string> = new Map<string, string>();
  /** The request body as text ("" for none). */
  body: string = "";
}

/** What http_fetch answers. */
@json
class FetchResult {
  /** The HTTP status code. */
  status: i32 = 0;
  /** The reason phrase. */
  reason: string = "";
  /** The response headers (names lowercased; repeated headers joined with ", "). */
  headers: Map<string, string> = new Map<string, string>();
  /** The response body as UTF-8 text. */
  body: string = "";
  /** True when the body was cut. */
  truncated: bool = false;
}

/** Fetches a URL the operator allowed. */
@tool("http_fetch")
function httpFetch(args: FetchArgs): Result<FetchResult> {
  const url = args.url.trim();
  if (!url.startsWith("http://") && !url.startsWith("https://")) {
    return Result.fail<FetchResult>(
      'Argument url "' + url + '" is not http(s): give an absolute http:// or https:// URL',
    );
  }
  const method = args.method.trim().toUpperCase();
  const req = new http.HttpRequest(method.length == 0 ? "GET" : method, url);
  const names = args.headers.keys();
  for (let i = 0; i < names.length; i++) req.header(names[i], args.headers.get(names[i]));
  if (args.body.length > 0) req.body = args.body;
  req.maxResponseBytes = MAX_RESPONSE_BYTES;
  const sent = http.request(req);
  if (sent.isErr) {
    const e = sent.error!;
    const message = 'Cannot fetch "' + url + '": ' + e.message;
    return Result.err<FetchResult>(new HostError(e.status, message));
  }
  const res = sent.unwrap();
  const out = new FetchResult();
  out.status = res.status;
  out.reason = res.reason;
  for (let i = 0; i + 1 < res.headers.length; i += 2) {
    const name = res.headers[i].toLowerCase();
    const value = res.headers[i + 1];
    out.headers.set(name, out.headers.has(name) ? out.headers.get(name) + ", " + value : value);
  }
  const text = res.text();
  if (text.length > MAX_BODY) {
    out.body = text.substring(0, MAX_BODY);
    out.truncated = true;
  } else {
    out.body = text;
  }
  return Result.ok<FetchResult>(out);
}
