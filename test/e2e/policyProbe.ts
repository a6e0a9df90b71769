/**
 * The probe an agent runs inside the VM for the policy VM test (Node 18 in the guest, CommonJS,
 * no dependencies). It prints one JSON line of findings; the test's profile sends it with
 * `agentctl progress`. Arguments: upstream port, a port nothing is allowed on, GitHub API port.
 */
export const probeScript = String.raw`
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');

const [upstreamPort, deniedPort, githubPort] = process.argv.slice(2).map(Number);
const proxy = { host: '10.0.2.100', port: 3128 };

function viaProxy(method, url, headers) {
  return new Promise((resolve) => {
    const request = http.request({ ...proxy, method, path: url, headers: headers || {} }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode, reason: response.headers['x-agentvm-egress'] || null, body: body.slice(0, 200) }),
      );
    });
    request.setTimeout(20000, () => request.destroy(new Error('timed out')));
    request.on('error', (error) => resolve({ status: 0, error: error.message }));
    request.end();
  });
}

function direct(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => { socket.destroy(); resolve('timeout'); }, 5000);
    socket.on('connect', () => { clearTimeout(timer); socket.destroy(); resolve('connected'); });
    socket.on('error', (error) => { clearTimeout(timer); resolve(error.code || error.message); });
  });
}

// Every command line and every environment this user can read, written to the disk so the host
// can search the VM's disk for the secret value.
function dumpProcesses() {
  let dump = 'ENV ' + JSON.stringify(process.env) + '\n';
  for (const pid of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    for (const file of ['cmdline', 'environ']) {
      try { dump += pid + ' ' + file + ' ' + fs.readFileSync('/proc/' + pid + '/' + file, 'utf8').replace(/\0/g, ' ') + '\n'; } catch {}
    }
  }
  fs.writeFileSync('/workspace/.probe-processes.txt', dump);
  return dump.length;
}

(async () => {
  const upstream = 'http://127.0.0.1:' + upstreamPort;
  const github = 'http://127.0.0.1:' + githubPort;
  const results = {
    apiKey: process.env.API_KEY || null,
    ghToken: process.env.GH_TOKEN || null,
    allowed: await viaProxy('GET', upstream + '/allowed', { authorization: 'Bearer ' + process.env.API_KEY }),
    denied: await viaProxy('GET', 'http://127.0.0.1:' + deniedPort + '/denied'),
    gatewayDirect: await direct('10.0.2.2', upstreamPort),
    loopbackDirect: await direct('127.0.0.1', upstreamPort),
    dnsDirect: await direct('10.0.2.3', 53),
    issue: await viaProxy('GET', github + '/repos/octo/app/issues/1', { authorization: 'token ' + process.env.GH_TOKEN }),
    label: await viaProxy('POST', github + '/repos/octo/app/labels', { authorization: 'token ' + process.env.GH_TOKEN }),
    caTrusted: fs.readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8').includes(
      fs.readFileSync('/usr/local/share/ca-certificates/agentvm-egress.crt', 'utf8').split('\n')[1],
    ),
    dumped: dumpProcesses(),
  };
  process.stdout.write(JSON.stringify(results) + '\n');
})();
`;
