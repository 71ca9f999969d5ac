// End-to-end checks of stoad's MCP server with the official TypeScript SDK
// (@modelcontextprotocol/sdk), run by scripts/mcp-e2e-node.sh, which
// starts stoad with examples/quickstart (tools/list page size 2) and
// passes the environment below. Also a tiny TCP-to-unix-socket forwarder
// for the conformance suite ("forward SOCKET PORT"), and the upstream of
// the conformance suite's fixture tools ("fixtures PORT").
//
//   MCP_URL      Streamable HTTP endpoint on --listen
//   ACME_KEY     API key of acme's web-shop
//   GLOBEX_KEY   API key of globex's forecast-bot
//   STOA_BIN     the stoa binary (for `stoa mcp`)
//   MCP_SOCKET   stoad's MCP unix socket
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run scripts/mcp-e2e-node.sh)`);
  return v;
};

async function connectHTTP(key) {
  const client = new Client({ name: 'stoa-e2e-node', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(env('MCP_URL')), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  return client;
}

async function connectStdio(args, extraEnv = {}) {
  const client = new Client({ name: 'stoa-e2e-node', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: env('STOA_BIN'),
    args: ['mcp', ...args],
    env: { ...process.env, ...extraEnv },
    stderr: 'inherit',
  });
  await client.connect(transport);
  return client;
}

async function listAll(client) {
  const names = [];
  let cursor;
  let pages = 0;
  do {
    const res = await client.listTools(cursor ? { cursor } : {});
    pages++;
    names.push(...res.tools.map((t) => t.name));
    cursor = res.nextCursor;
  } while (cursor);
  return { names, pages };
}

async function rpcError(p) {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof McpError, `not an McpError: ${e}`);
    return e;
  }
  assert.fail('no error');
}

const ACME = [
  'stoa_platform_info', 'stoa_tools',
  'acme__billing-api__create_invoice', 'acme__billing-api__get_invoice', 'acme__billing-api__list_invoices',
  'acme__inventory-api__get_stock',
];

// tenantChecks are what every transport must pass for acme's view.
async function tenantChecks(label, client, consumer) {
  await check(`${label}: tools/list pages through acme's tools only`, async () => {
    const { names, pages } = await listAll(client);
    assert.deepEqual(names, ACME);
    assert.equal(pages, 3);
  });
  await check(`${label}: tools/call success with structuredContent`, async () => {
    const res = await client.callTool({ name: 'acme__billing-api__get_invoice', arguments: { id: 'INV-1001' } });
    assert.ok(!res.isError);
    assert.equal(res.structuredContent.invoice.customer, 'Wile E. Coyote');
    assert.equal(res.structuredContent.gateway.tenant, 'acme');
    assert.equal(res.structuredContent.gateway.consumer, consumer);
    assert.equal(res.content[0].type, 'text');
  });
  await check(`${label}: upstream 404 is an isError result`, async () => {
    const res = await client.callTool({ name: 'acme__billing-api__get_invoice', arguments: { id: 'INV-404' } });
    assert.equal(res.isError, true);
    assert.match(res.content[0].text, /HTTP 404/);
  });
  await check(`${label}: invalid arguments are -32602`, async () => {
    const e = await rpcError(client.callTool({ name: 'acme__billing-api__get_invoice', arguments: { id: 5 } }));
    assert.equal(e.code, -32602);
  });
  await check(`${label}: unknown and foreign tools give the same error`, async () => {
    const unknown = await rpcError(client.callTool({ name: 'globex__weather-api__nowcast', arguments: {} }));
    const foreign = await rpcError(client.callTool({ name: 'globex__weather-api__current', arguments: { city: 'Oslo' } }));
    assert.equal(unknown.code, -32602);
    assert.equal(foreign.message.replace('current', 'X'), unknown.message.replace('nowcast', 'X'));
  });
  await check(`${label}: resources list and read`, async () => {
    const { resources } = await client.listResources();
    assert.deepEqual(resources.map((r) => r.uri), ['stoa://tools/acme/billing-api', 'stoa://tools/acme/inventory-api']);
    const read = await client.readResource({ uri: 'stoa://tools/acme/billing-api' });
    assert.match(read.contents[0].text, /acme__billing-api__get_invoice/);
    await rpcError(client.readResource({ uri: 'stoa://tools/globex/weather-api' }));
  });
}

async function main() {
  const url = env('MCP_URL');
  const acme = await connectHTTP(env('ACME_KEY'));
  await tenantChecks('http', acme, 'web-shop');
  await acme.close();

  await check('http: globex sees only globex', async () => {
    const globex = await connectHTTP(env('GLOBEX_KEY'));
    const { names } = await listAll(globex);
    assert.deepEqual(names, ['stoa_platform_info', 'stoa_tools', 'globex__weather-api__current', 'globex__weather-api__forecast']);
    await globex.close();
  });

  await check('http: 401 with WWW-Authenticate, no OAuth metadata without an authorization server', async () => {
    // The quickstart takes API keys only: MCP forbids metadata that lists
    // no authorization server, so none is advertised.
    const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer');
    const meta = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', url));
    assert.equal(meta.status, 404);
    const bad = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer nope' }, body: '{}' });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get('www-authenticate'), /error="invalid_token"/);
  });

  await check('http: malformed JSON-RPC answers JSON errors', async () => {
    const post = (body) => fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env('ACME_KEY')}` }, body });
    let r = await post('{"jsonrpc":');
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, -32700);
    r = await post('7');
    assert.equal((await r.json()).error.code, -32600);
  });

  await check('http: JSON-RPC batches in 2025-03-26 only', async () => {
    const post = (body, version) => fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env('ACME_KEY')}`, ...(version && { 'MCP-Protocol-Version': version }) },
      body,
    });
    const batch = '[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"prompts/list"}]';
    for (const v of [undefined, '2025-03-26']) {
      const r = await post(batch, v);
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), [{ jsonrpc: '2.0', id: 1, result: {} }, { jsonrpc: '2.0', id: 2, result: { prompts: [] } }]);
    }
    const r = await post(batch, '2025-11-25');
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.code, -32600);
  });

  await check('http: 2026-07-28 server/discover and tools/list', async () => {
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} };
    const post = (method) => fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env('ACME_KEY')}`, 'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': method },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params: { _meta: meta } }),
    });
    const d = await (await post('server/discover')).json();
    assert.equal(d.result.resultType, 'complete');
    assert.ok(d.result.supportedVersions.includes('2026-07-28'));
    const l = await (await post('tools/list')).json();
    assert.equal(l.result.cacheScope, 'private');
    assert.equal(l.result.tools.length, 2);
  });

  const stdio = await connectStdio(['--mcp-socket', env('MCP_SOCKET'), '--tenant', 'acme']);
  await tenantChecks('stdio (socket)', stdio, '');
  await stdio.close();

  const remote = await connectStdio(['--url', url], { STOA_TOKEN: env('ACME_KEY') });
  await tenantChecks('stdio (url)', remote, 'web-shop');
  await remote.close();

  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// The conformance suite's fixture tools are Tools of a "conformance"
// tenant (scripts/mcp-e2e-node.sh) whose operations call these endpoints:
// what stoa maps to text, image, audio, embedded-resource and error
// results.
const png1x1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
function wav() {
  const data = Buffer.alloc(800, 0x80); // 0.1 s of silence, 8 kHz, 8-bit mono
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8); h.write('fmt ', 12);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(8000, 28); h.writeUInt16LE(1, 32); h.writeUInt16LE(8, 34); h.write('data', 36); h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
const fixtures = {
  '/text': [200, 'text/plain; charset=utf-8', Buffer.from('This is a simple text response for testing.')],
  '/image': [200, 'image/png', png1x1],
  '/audio': [200, 'audio/wav', wav()],
  '/embedded': [200, 'application/octet-stream', Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x80, 0x7f])],
  '/error': [500, 'text/plain', Buffer.from('This tool intentionally returns an error for testing')],
};

if (process.argv[2] === 'fixtures') {
  http.createServer((req, res) => {
    const f = fixtures[new URL(req.url, 'http://x').pathname];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(f[0], { 'Content-Type': f[1] }).end(f[2]);
  }).listen(Number(process.argv[3]), '127.0.0.1', () => console.error(`fixtures on 127.0.0.1:${process.argv[3]}`));
} else if (process.argv[2] === 'forward') {
  const [sock, port] = process.argv.slice(3);
  net.createServer((c) => {
    const u = net.connect(sock);
    c.pipe(u);
    u.pipe(c);
    u.on('error', () => c.destroy());
    c.on('error', () => u.destroy());
  }).listen(Number(port), '127.0.0.1', () => console.error(`forwarding 127.0.0.1:${port} -> ${sock}`));
} else {
  await main();
}
