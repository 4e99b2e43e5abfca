// The redirect proven with real TCP connections (reference §B.7): a "pod" and a "peer" network namespace joined
// by a veth pair, the rules installed in the pod by `sidecar-injector iptables` from exactly the istio-init args
// our webhook writes, and small Node listeners standing in for Envoy (15001, 15006), the app and the agent ports.
//
// Where a connection landed is what the accepting listener reports; the client's own address ties the two ends
// to the same connection. The original destination Envoy would read with SO_ORIGINAL_DST (Node cannot) is the
// original tuple of the connection's conntrack entry, read from /proc/net/nf_conntrack inside the pod.
//
// Needs root, iproute2, iptables and setpriv; it runs once per iptables backend installed (nft, legacy).

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFor, container, podWith, review } from './helpers/pods.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const FIXTURES = join(import.meta.dirname, 'fixtures', 'netns');
const REPO_ROOT = join(import.meta.dirname, '..');

const POD_IP = '10.250.0.2';
const PEER_IP = '10.250.0.1';
// A second address on the peer, inside the range the sample pod excludes from capture.
const EXCLUDED_RANGE_IP = '10.251.0.1';
const APP_PORT = 8080;
const ANNOTATION_EXCLUDED_INBOUND_PORT = 8081;
const REMOTE_PORT = 9999;
const EXCLUDED_OUTBOUND_PORT = 9998;
const PROXY_UID = 1337;

function installed(tool: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin'];
  return dirs.some((dir) => {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function whyNot(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'creating network namespaces and installing iptables rules needs root';
  const missing = ['ip', 'setpriv', 'iptables-restore'].filter((tool) => !installed(tool));
  if (missing.length > 0) return `${missing.join(', ')} not installed (apt-get install iptables iproute2 util-linux)`;
  return undefined;
}

const skipReason = whyNot();
const backends = (['nft', 'legacy'] as const).filter((backend) => installed(`iptables-${backend}-restore`));

// The sample pod: the default template plus one more excluded inbound port, an excluded outbound range and an
// excluded outbound port, each by annotation.
function istioInitArgs(): string[] {
  const pod = podWith({}, {
    'traffic.sidecar.istio.io/excludeInboundPorts': String(ANNOTATION_EXCLUDED_INBOUND_PORT),
    'traffic.sidecar.istio.io/excludeOutboundIPRanges': '10.251.0.0/24',
    'traffic.sidecar.istio.io/excludeOutboundPorts': String(EXCLUDED_OUTBOUND_PORT),
  });
  const injected = review(pod, configFor(''), { 'istio-injection': 'enabled' });
  expect(injected.review.outcome).toBe('injected');
  return container(injected.pod, 'istio-init').args as string[];
}

interface Landing {
  landedOn: number;
  local: string;
  peer: string;
}
interface Probe {
  dialed: string;
  local: string;
  reply: Landing;
}

async function ipNetnsExec(ns: string, command: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, ...command], { cwd: ROOT, env, timeout: 15_000 });
  return stdout;
}

/** One real TCP connection from inside `ns`, optionally as the proxy's uid and gid, as Envoy runs. */
async function connect(ns: string, host: string, port: number, asProxy = false): Promise<Probe> {
  const identity = asProxy ? ['setpriv', `--reuid=${PROXY_UID}`, `--regid=${PROXY_UID}`, '--clear-groups'] : [];
  const out = await ipNetnsExec(ns, [...identity, process.execPath, join(FIXTURES, 'connect.mjs'), host, String(port)]);
  const probe = JSON.parse(out) as Probe & { error?: string };
  if (probe.error) throw new Error(`connection to ${host}:${port} from ${ns} failed: ${probe.error}`);
  // The listener saw this very connection: its peer is our end.
  expect(probe.reply.peer).toBe(probe.local);
  return probe;
}

/** The kernel's record of a connection: where it was addressed, and who answered (differs only after NAT). */
async function conntrack(ns: string, clientEnd: string): Promise<{ addressedTo: string; answeredBy: string }> {
  const table = await ipNetnsExec(ns, ['cat', '/proc/net/nf_conntrack']).catch((error: Error) => {
    throw new Error(`cannot read /proc/net/nf_conntrack in ${ns} (kernel without CONFIG_NF_CONNTRACK_PROCFS?): ${error.message}`);
  });
  const [address, port] = clientEnd.split(':');
  for (const line of table.split('\n')) {
    // Each field appears twice: the original direction first, then the reply direction.
    const fields = (key: string) => [...line.matchAll(new RegExp(`\\b${key}=(\\S+)`, 'g'))].map((m) => m[1] as string);
    const [src, dst, sport, dport] = ['src', 'dst', 'sport', 'dport'].map(fields) as [string[], string[], string[], string[]];
    if (/\btcp\b/.test(line) && src[0] === address && sport[0] === port) {
      return { addressedTo: `${dst[0]}:${dport[0]}`, answeredBy: `${src[1]}:${sport[1]}` };
    }
  }
  throw new Error(`no conntrack entry in ${ns} for a connection from ${clientEnd}`);
}

/** Starts listen.mjs inside `ns` and waits for all its ports to be up. */
function listen(ns: string, ports: number[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, join(FIXTURES, 'listen.mjs'), ...ports.map(String)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`listeners in ${ns} exited with ${code}: ${stderr.trim()}`)));
  });
}

describe.skipIf(skipReason !== undefined)(
  skipReason ? `the redirect with real traffic (skipped: ${skipReason})` : 'the redirect with real traffic',
  () => {
    it('uses the istio-init args the webhook writes, with the annotation excludes in them', () => {
      expect(istioInitArgs()).toEqual([
        'istio-iptables', '-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*',
        '-x', '10.251.0.0/24', '-b', '*', '-d', `15090,15021,${ANNOTATION_EXCLUDED_INBOUND_PORT},15020`,
        '-o', String(EXCLUDED_OUTBOUND_PORT), '--log_output_level=default:info',
      ]);
    });

    describe.each(backends)('with iptables-%s', (backend) => {
      // Unique per run and backend, so parallel runs and the two backends never share a namespace.
      const id = `${process.pid}${backend[0]}`;
      const pod = `si-pod-${id}`;
      const peer = `si-peer-${id}`;
      const listeners: ChildProcess[] = [];
      const namespaces: string[] = [];

      beforeAll(async () => {
        for (const ns of [pod, peer]) {
          execFileSync('ip', ['netns', 'add', ns]);
          namespaces.push(ns);
          // lo starts down in a new namespace, and REDIRECT delivers locally generated traffic over it.
          execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        }
        // Created inside the pod with its peer end inside the peer: the host never sees either interface.
        execFileSync('ip', ['-n', pod, 'link', 'add', `vp${id}`, 'type', 'veth', 'peer', 'name', `vc${id}`, 'netns', peer]);
        execFileSync('ip', ['-n', pod, 'addr', 'add', `${POD_IP}/24`, 'dev', `vp${id}`]);
        execFileSync('ip', ['-n', pod, 'link', 'set', `vp${id}`, 'up']);
        execFileSync('ip', ['-n', pod, 'route', 'add', '10.251.0.0/24', 'via', PEER_IP]);
        execFileSync('ip', ['-n', peer, 'addr', 'add', `${PEER_IP}/24`, 'dev', `vc${id}`]);
        execFileSync('ip', ['-n', peer, 'addr', 'add', `${EXCLUDED_RANGE_IP}/24`, 'dev', `vc${id}`]);
        execFileSync('ip', ['-n', peer, 'link', 'set', `vc${id}`, 'up']);

        // What istio-init does in the pod: our CLI with the webhook's args (minus the "istio-iptables" word,
        // which names the subcommand). The backend is chosen the way Istio allows, by environment variable.
        const flags = istioInitArgs().slice(1);
        const applied = await ipNetnsExec(
          pod,
          [process.execPath, join(REPO_ROOT, 'bin', 'sidecar-injector.js'), 'iptables', ...flags],
          { ...process.env, FORCE_IPTABLES_BINARY: backend },
        );
        expect(applied).toMatch(new RegExp(`^iptables-${backend}-restore --noflush: \\d+ rules$`, 'm'));

        listeners.push(await listen(pod, [15001, 15006, APP_PORT, ANNOTATION_EXCLUDED_INBOUND_PORT, 15020, 15021, 15090]));
        listeners.push(await listen(peer, [REMOTE_PORT, EXCLUDED_OUTBOUND_PORT]));
      }, 30_000);

      afterAll(() => {
        for (const child of listeners) child.kill();
        // Deleting a namespace also removes its veth end, which takes the other end with it.
        for (const ns of namespaces) execFileSync('ip', ['netns', 'del', ns]);
      });

      it('sends inbound traffic for the app port to 15006, and the original destination is kept', async () => {
        const probe = await connect(peer, POD_IP, APP_PORT);
        expect(probe.reply.landedOn).toBe(15006);
        expect(await conntrack(pod, probe.local)).toEqual({
          addressedTo: `${POD_IP}:${APP_PORT}`,
          answeredBy: `${POD_IP}:15006`,
        });
      });

      it.each([15090, 15021, 15020, ANNOTATION_EXCLUDED_INBOUND_PORT])(
        'lets inbound traffic for excluded port %i reach its own listener untouched',
        async (port) => {
          const probe = await connect(peer, POD_IP, port);
          expect(probe.reply).toMatchObject({ landedOn: port, local: `${POD_IP}:${port}` });
          expect(await conntrack(pod, probe.local)).toEqual({ addressedTo: probe.dialed, answeredBy: probe.dialed });
        },
      );

      it('sends the app outbound traffic to 15001, and the original destination is kept', async () => {
        const probe = await connect(pod, PEER_IP, REMOTE_PORT);
        expect(probe.reply.landedOn).toBe(15001);
        expect(await conntrack(pod, probe.local)).toEqual({
          addressedTo: `${PEER_IP}:${REMOTE_PORT}`,
          answeredBy: '127.0.0.1:15001',
        });
      });

      it('lets outbound traffic from uid 1337, the proxy, reach the remote listener untouched', async () => {
        const probe = await connect(pod, PEER_IP, REMOTE_PORT, true);
        expect(probe.reply).toMatchObject({ landedOn: REMOTE_PORT, local: `${PEER_IP}:${REMOTE_PORT}` });
        expect(await conntrack(pod, probe.local)).toEqual({ addressedTo: probe.dialed, answeredBy: probe.dialed });
      });

      it('lets outbound traffic to the excluded range reach the remote listener untouched', async () => {
        const probe = await connect(pod, EXCLUDED_RANGE_IP, REMOTE_PORT);
        expect(probe.reply).toMatchObject({ landedOn: REMOTE_PORT, local: `${EXCLUDED_RANGE_IP}:${REMOTE_PORT}` });
        expect(await conntrack(pod, probe.local)).toEqual({ addressedTo: probe.dialed, answeredBy: probe.dialed });
      });

      it('lets outbound traffic to the excluded port reach the remote listener untouched', async () => {
        const probe = await connect(pod, PEER_IP, EXCLUDED_OUTBOUND_PORT);
        expect(probe.reply).toMatchObject({ landedOn: EXCLUDED_OUTBOUND_PORT, local: `${PEER_IP}:${EXCLUDED_OUTBOUND_PORT}` });
        expect(await conntrack(pod, probe.local)).toEqual({ addressedTo: probe.dialed, answeredBy: probe.dialed });
      });

      it('lets the app reach itself over localhost untouched', async () => {
        const probe = await connect(pod, '127.0.0.1', APP_PORT);
        expect(probe.reply).toMatchObject({ landedOn: APP_PORT, local: `127.0.0.1:${APP_PORT}` });
      });
    });
  },
);
