// The official Elasticsearch JavaScript client against esgate, with the
// client's own auth options: tests/integration/test_es_js_client.py runs
//   node auth_client.mjs URL CASES_JSON
// where CASES_JSON is a list of {name, auth, index, title}; `auth` goes to
// the client's constructor as it is ({apiKey: {id, api_key}}, {apiKey:
// "base64(id:key)"} or {bearer: token}).  Each case is a new client and one
// search; one JSON line per case on stdout: the answer's status and titles,
// or the error's class and status.
import { Client } from '@elastic/elasticsearch';

const [url, casesJson] = process.argv.slice(2);
const cases = JSON.parse(casesJson);
for (const c of cases) {
  const client = new Client({ node: url, auth: c.auth, maxRetries: 0, requestTimeout: 10000 });
  const out = { name: c.name };
  try {
    const res = await client.search({ index: c.index, query: { match: { title: c.title } } }, { meta: true });
    out.status = res.statusCode;
    out.titles = res.body.hits.hits.map((h) => h._source.title);
    out.product = res.headers['x-elastic-product'] || null;
  } catch (e) {
    out.error = e.name;
    out.status = e.meta ? e.meta.statusCode : null;
    out.type = e.body && e.body.error ? e.body.error.type : null;
    // several WWW-Authenticate fields come as an array: one string, " | " between
    const www = e.meta && e.meta.headers ? e.meta.headers['www-authenticate'] : null;
    out.www_authenticate = Array.isArray(www) ? www.join(' | ') : www || null;
  }
  await client.close();
  process.stdout.write(JSON.stringify(out) + '\n');
}
