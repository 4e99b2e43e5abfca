// Istio's own iptables goldens, read from the shared reference at run time, against the rules we render from the
// same istio-iptables flags. Compared semantically: per table and family, the set of declared chains and each
// chain's rules in evaluation order (after applying `-I chain N`), ignoring comments, blank lines, save probes
// and where in the file a rule was written.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { iptablesCommand } from '../src/cli/iptables.js';
import {
  type HostFacts,
  nameservers,
  parseIptablesArgs,
  podUsesIPv6,
  renderRestoreInput,
  routeCommands,
} from '../src/core/iptables.js';
import { REFERENCE_DIR } from './helpers/reference.js';

const GOLDENS = join(REFERENCE_DIR, 'iptables-goldens');

interface Case {
  /** Path under iptables-goldens/. */
  golden: string;
  args: string[];
  env?: Record<string, string>;
  host?: Partial<HostFacts>;
}

// constructTestConfig() in capture/run_test.go: ports 15001/15006/15008, uid = gid = 1337, and no inbound ports
// and no outbound ranges (empty -b and -i), which are also istio-iptables' own flag defaults.
const base = ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337'];
const ipv6 = { ipv6: true };
const dnsV4 = { dnsServersV4: ['127.0.0.53'] };

// Each capture golden's config, from TestIptables in tools/istio-iptables/pkg/capture/run_test.go, as flags.
// Config fields without a flag are what istio-iptables reads from the host (IPv6, resolv.conf) or from env-only
// variables (owner groups, the loopback CIDR).
const CAPTURE_CASES: Case[] = [
  { golden: 'empty.golden', args: base },
  { golden: 'ipv6-empty-inbound-ports.golden', args: [...base, '-b', ''], host: ipv6 },
  {
    golden: 'ip-range.golden',
    args: [...base, '-x', '1.1.0.0/16', '-i', '9.9.0.0/16', '--dry-run', '--redirect-dns', '-g', '1,2', '-u', '3,4'],
    host: dnsV4,
  },
  {
    golden: 'tproxy.golden',
    args: [...base, '-m', 'TPROXY', '-b', '*', '-x', '1.1.0.0/16', '-i', '9.9.0.0/16', '--dry-run', '--redirect-dns',
      '-g', '1337', '-u', '1337', '-c', 'not-istio-nic'],
    host: { ...ipv6, ...dnsV4 },
  },
  { golden: 'ipv6-inbound-ports.golden', args: [...base, '-b', '4000,5000'], host: ipv6 },
  { golden: 'ipv6-virt-interfaces.golden', args: [...base, '-b', '4000,5000', '-k', 'eth0,eth1'], host: ipv6 },
  {
    golden: 'ipv6-ipnets.golden',
    args: [...base, '-b', '4000,5000', '-d', '6000,7000,', '-k', 'eth0,eth1', '-x', '2001:db8::/32', '-i', '2001:db8::/32'],
    host: ipv6,
  },
  {
    golden: 'ipv6-uid-gid.golden',
    args: [...base, '-b', '4000,5000', '-d', '6000,7000', '-k', 'eth0,eth1', '-g', '1,2', '-u', '3,4',
      '-x', '2001:db8::/32', '-i', '2001:db8::/32'],
    host: ipv6,
  },
  { golden: 'ipv6-outbound-ports.golden', args: [...base, '-b', '', '-q', '32000,31000'], host: ipv6 },
  { golden: 'kube-virt-interfaces.golden', args: [...base, '-k', 'eth1,eth2', '-i', '*'] },
  { golden: 'ipnets.golden', args: [...base, '-i', '10.0.0.0/8'] },
  { golden: 'ipnets-with-kube-virt-interfaces.golden', args: [...base, '-k', 'eth1,eth2', '-i', '10.0.0.0/8'] },
  { golden: 'inbound-ports-include.golden', args: [...base, '-b', '32000,31000'] },
  { golden: 'inbound-ports-wildcard.golden', args: [...base, '-b', '*'] },
  { golden: 'inbound-ports-tproxy.golden', args: [...base, '-b', '32000,31000', '-m', 'TPROXY'] },
  { golden: 'inbound-ports-wildcard-tproxy.golden', args: [...base, '-b', '*', '-m', 'TPROXY'] },
  {
    golden: 'dns-uid-gid.golden',
    args: [...base, '--redirect-dns', '-g', '1,2', '-u', '3,4'],
    host: { ...ipv6, ...dnsV4, dnsServersV6: ['::127.0.0.53'] },
  },
  // DNS capture with no resolv.conf servers and no --capture-all-dns: Istio switches it off.
  { golden: 'ipv6-dns-uid-gid.golden', args: [...base, '--redirect-dns', '-g', '1,2', '-u', '3,4'], host: ipv6 },
  { golden: 'outbound-owner-groups.golden', args: base, env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' } },
  { golden: 'outbound-owner-groups-exclude.golden', args: base, env: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp' } },
  {
    golden: 'ipv6-dns-outbound-owner-groups.golden',
    args: [...base, '--redirect-dns'],
    env: { ISTIO_OUTBOUND_OWNER_GROUPS: 'java,202' },
    host: ipv6,
  },
  {
    golden: 'ipv6-dns-outbound-owner-groups-exclude.golden',
    args: [...base, '--redirect-dns'],
    env: { ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE: '888,ftp' },
    host: ipv6,
  },
  { golden: 'outbound-ports-include.golden', args: [...base, '-q', '32000,31000'] },
  {
    golden: 'loopback-outbound-iprange.golden',
    args: [...base, '-i', '127.1.2.3/32', '--dry-run', '--redirect-dns', '-g', '1,2', '-u', '3,4'],
    host: dnsV4,
  },
  { golden: 'basic-exclude-nic.golden', args: [...base, '-c', 'not-istio-nic'] },
  { golden: 'drop-invalid.golden', args: [...base, '--drop-invalid'] },
  { golden: 'host-ipv4-loopback-cidr.golden', args: base, env: { ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: '127.0.0.1/8' } },
];

// The istio-cni plugin maps the same annotations to istio-iptables flags (reference §B.4), always excluding
// 15020,15021,15090 inbound and, by default, 15020 outbound. Cases from TestIPTablesRuleGeneration in
// cni/pkg/plugin/plugin_dryrun_test.go; the CNI cannot read the pod's resolv.conf, so DNS capture is capture-all.
const cni = ['-p', '15001', '-z', '15006', '-u', '1337', '-g', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '',
  '-b', '*', '-d', '15020,15021,15090', '-o', '15020'];
const CNI_CASES: Case[] = [
  { golden: 'cni-plugin/basic.txt.golden', args: cni },
  { golden: 'cni-plugin/include-exclude-ip.txt.golden', args: [...cni, '-i', '127.0.0.0/8', '-x', '10.0.0.0/8'] },
  {
    golden: 'cni-plugin/include-exclude-ports.txt.golden',
    args: [...cni, '-b', '1111,2222', '-d', '15020,15021,15090,3333,4444', '-o', '5555,6666'],
  },
  { golden: 'cni-plugin/tproxy.txt.golden', args: [...cni, '-m', 'TPROXY'] },
  { golden: 'cni-plugin/dns.txt.golden', args: [...cni, '--capture-all-dns'], env: { ISTIO_META_DNS_CAPTURE: 'true' } },
  { golden: 'cni-plugin/invalid-drop.txt.golden', args: cni, env: { INVALID_DROP: 'true' } },
  { golden: 'cni-plugin/custom-uid.txt.golden', args: [...cni, '-u', '1000670000', '-g', '1000670001'] },
  { golden: 'cni-plugin/custom-uid-tproxy.txt.golden', args: [...cni, '-m', 'TPROXY', '-u', '1000670000', '-g', '1000670001'] },
];

// The injector's own default istio-init args (reference §B.4); the reference derived the rules from run.go and
// proved them with real traffic (§B.7).
const DEFAULT_SIDECAR_ARGS = ['-p', '15001', '-z', '15006', '-u', '1337', '-m', 'REDIRECT', '-i', '*', '-x', '',
  '-b', '*', '-d', '15090,15021,15020', '--log_output_level=default:info'];
const DERIVED_CASES: Case[] = [{ golden: 'DERIVED-init-container-default.rules', args: DEFAULT_SIDECAR_ARGS }];

const SKIPPED: Record<string, string> = {
  'cni-plugin/status-ports.txt.golden':
    'stale: no case in plugin_dryrun_test.go produces it; it predates the tunnel-port exemption and the UDP port exclude',
  'builder/': "unit goldens of Istio's rule builder with placeholder rules (-f foo -b bar), not produced by any flags",
  'cni/': 'ambient mode in-pod redirection (ISTIO_PRERT, 0x539 marks): not the sidecar model istio-init implements',
};

const ALL_CASES = [...CAPTURE_CASES, ...CNI_CASES, ...DERIVED_CASES];

// ---------------------------------------------------------------------------------------------------------------

/** One table of one family: declared chains, and every chain's rules in the order iptables evaluates them. */
interface TableState {
  chains: Set<string>;
  rules: Map<string, string[]>;
}
type Restore = Map<string, TableState>;

/**
 * Splits restore text into restores (one per family) and simulates each. Istio prints the IPv4 restore, then the
 * IPv6 one, each with its tables sorted, so a table name not after the previous one starts the next restore.
 */
function restores(text: string): Restore[] {
  const out: Restore[] = [];
  let current: Restore | undefined;
  let table: TableState | undefined;
  let lastTable = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/\s+/g, ' ');
    if (line === '' || line.startsWith('#') || line === 'COMMIT' || /^ip6?tables-save$/.test(line)) continue;
    const header = /^\*\s*(\S+)$/.exec(line);
    if (header) {
      const name = header[1] as string;
      if (!current || name <= lastTable) out.push((current = new Map()));
      lastTable = name;
      table = { chains: new Set(), rules: new Map() };
      current.set(name, table);
      continue;
    }
    if (!table) throw new Error(`rule outside a table: ${line}`);
    const tokens = line.split(' ');
    const [op, chain] = tokens as [string, string];
    if (op === '-N') {
      table.chains.add(chain);
      continue;
    }
    const list = table.rules.get(chain) ?? [];
    table.rules.set(chain, list);
    if (op === '-A') list.push(tokens.slice(2).join(' '));
    else if (op === '-I') list.splice(Number(tokens[2]) - 1, 0, tokens.slice(3).join(' '));
    else throw new Error(`unexpected line: ${line}`);
  }
  return out;
}

/** A plain, diffable view: family -> table -> { chains (sorted), rules per chain (sorted by chain name) }. */
function normalise(list: Restore[]): unknown {
  return list.map((restore) =>
    Object.fromEntries(
      [...restore].map(([name, { chains, rules }]) => [
        name,
        { chains: [...chains].sort(), rules: Object.fromEntries([...rules].sort(([a], [b]) => a.localeCompare(b))) },
      ]),
    ),
  );
}

function render(c: Case): string {
  const config = parseIptablesArgs(c.args, c.env ?? {});
  const host: HostFacts = { ipv6: false, dnsServersV4: [], dnsServersV6: [], ...c.host };
  const { ipv4, ipv6 } = renderRestoreInput(config, host);
  return ipv4 + (ipv6 ?? '');
}

const readGolden = (golden: string): string => readFileSync(join(GOLDENS, golden), 'utf8');

describe("Istio's iptables goldens", () => {
  it('are in the shared reference, and every one is either compared or skipped with a reason', () => {
    expect(existsSync(GOLDENS), `${GOLDENS} is missing`).toBe(true);
    const all = readdirSync(GOLDENS, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(golden|rules)$/.test(f));
    const covered = new Set(ALL_CASES.map((c) => c.golden));
    const skippedReason = (file: string) => Object.entries(SKIPPED).find(([prefix]) => file.startsWith(prefix))?.[1];
    const unaccounted = all.filter((file) => !covered.has(file) && skippedReason(file) === undefined);
    expect(unaccounted).toEqual([]);

    const skipped = Object.entries(SKIPPED).map(([prefix, reason]) => {
      const count = all.filter((file) => !covered.has(file) && file.startsWith(prefix)).length;
      return `  skipped ${prefix} (${count}): ${reason}`;
    });
    console.info(
      `iptables goldens: ${covered.size} compared (${CAPTURE_CASES.length} capture, ${CNI_CASES.length} cni-plugin, ` +
        `${DERIVED_CASES.length} derived)\n${skipped.join('\n')}`,
    );
    expect(CAPTURE_CASES).toHaveLength(all.filter((f) => !f.includes('/') && f.endsWith('.golden')).length);
  });

  it.each(ALL_CASES.map((c) => [c.golden, c] as const))('%s equals what we render for the same flags', (_, c) => {
    const expected = restores(readGolden(c.golden));
    const actual = restores(render(c));
    expect(actual).toHaveLength(c.host?.ipv6 ? 2 : 1);
    expect(normalise(actual)).toEqual(normalise(expected));
  });

  it('render the same text as Istio, byte for byte, for the default sidecar and the TPROXY golden', () => {
    // Not required (the comparison above is semantic), but it shows nothing was reordered to make it pass.
    expect(render(DERIVED_CASES[0] as Case)).toBe(readGolden('DERIVED-init-container-default.rules'));
    const tproxy = CAPTURE_CASES.find((c) => c.golden === 'tproxy.golden') as Case;
    expect(render(tproxy)).toBe(readGolden('tproxy.golden').replace(/^ip6?tables-save\n/gm, ''));
  });
});

describe('sidecar-injector iptables --dry-run', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function dryRun(args: string[]): Promise<string> {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out += String(chunk);
      return true;
    });
    await iptablesCommand([...args, '--dry-run']);
    return out;
  }

  it("prints, for the injector's default istio-init args, the IPv4 rules of the derived default golden", async () => {
    const out = await dryRun(DEFAULT_SIDECAR_ARGS);
    expect(out.startsWith('# iptables-restore --noflush\n')).toBe(true);
    // This machine decides whether an IPv6 section follows; the IPv4 one is always first.
    const ipv4 = out.split(/^# ip6tables-restore.*$/m)[0] as string;
    expect(normalise(restores(ipv4))).toEqual(normalise(restores(readGolden('DERIVED-init-container-default.rules'))));
  });

  it('lists the policy-routing commands TPROXY needs after the rules, as comments', async () => {
    const out = await dryRun([...DEFAULT_SIDECAR_ARGS, '-m', 'TPROXY']);
    expect(out).toContain('# ip -4 rule add fwmark 1337 lookup 133\n');
    expect(out).toContain('# ip -4 route add local 0.0.0.0/0 dev lo table 133\n');
  });

  it.each([
    [['-p', 'x'], 'invalid -p "x": "x" is not a port number 1-65535'],
    [['--istio-inbound-ports=80,http'], 'invalid --istio-inbound-ports "80,http": "http" is not a port number 1-65535'],
    [['-m', 'redirect'], 'invalid -m "redirect": expected REDIRECT or TPROXY'],
    [['-x', '*'], 'invalid -x "*": "*" cannot be excluded: list the CIDRs to leave alone'],
    [['-i', '10.0.0.1'], 'invalid -i "10.0.0.1": "10.0.0.1" is not a CIDR such as 10.0.0.0/8 or fd00::/8'],
    [['-k', 'has space'], 'invalid -k "has space": "has space" is not an interface name'],
    [['--redirect-dns=maybe'], 'invalid --redirect-dns "maybe": expected true or false'],
    [['-z'], 'flag -z needs a value'],
    [['--no-such-flag'], 'unknown flag --no-such-flag'],
    [['istio-iptables'], 'unexpected argument "istio-iptables" (istio-iptables takes only flags)'],
  ])('refuses %j with a one-line usage error', async (args, message) => {
    await expect(iptablesCommand(args)).rejects.toMatchObject({ code: 'SI_ERR_USAGE', message });
  });
});

describe('istio-iptables flags', () => {
  it('take their value glued on, after "=", or as the next argument, and the last one wins', () => {
    const config = parseIptablesArgs(['-p15002', '-z=15007', '--inbound-tunnel-port', '15009', '-p', '15003']);
    expect([config.proxyPort, config.inboundCapturePort, config.inboundTunnelPort]).toEqual([15003, 15007, 15009]);
  });

  it('fall back to the environment variables Istio binds, and a flag beats its variable', () => {
    const env = { ISTIO_INBOUND_PORTS: '80', ISTIO_META_DNS_CAPTURE: 'true', PROXY_UID: '7' };
    const config = parseIptablesArgs(['-u', '8'], env);
    expect(config.inboundPorts).toEqual([80]);
    expect(config.redirectDns).toBe(true);
    expect(config.proxyUids).toEqual(['8']);
    expect(config.proxyGids).toEqual(['8']);
  });
});

describe('what istio-iptables learns from the pod', () => {
  const v4 = { address: '10.1.2.3', family: 'IPv4' } as const;
  const v6 = { address: 'fd00::3', family: 'IPv6' } as const;
  const ignored = [
    { address: '127.0.0.1', family: 'IPv4' },
    { address: '::1', family: 'IPv6' },
    { address: 'fe80::1', family: 'IPv6' },
  ] as const;

  it('counts a pod as IPv6 only when its usable addresses are all IPv6, or with dual stack when any is', () => {
    expect(podUsesIPv6([...ignored, v4], false)).toBe(false);
    expect(podUsesIPv6([...ignored, v6], false)).toBe(true);
    expect(podUsesIPv6([...ignored, v6, v4], false)).toBe(false);
    expect(podUsesIPv6([...ignored, v4, v6], true)).toBe(true);
    expect(podUsesIPv6([...ignored], true)).toBe(false);
  });

  it('takes the DNS servers to capture from the nameserver lines of resolv.conf, split by family', () => {
    const conf = 'search team.svc.cluster.local\nnameserver 10.96.0.10\n# nameserver 1.1.1.1\nnameserver fd00::a\noptions ndots:5\n';
    expect(nameservers(conf)).toEqual({ v4: ['10.96.0.10'], v6: ['fd00::a'] });
  });

  it('adds ::6 to lo for an IPv6 pod, and policy routing for TPROXY in each family', () => {
    expect(routeCommands(parseIptablesArgs(['-b', '*']), true)).toEqual([['-6', 'addr', 'add', '::6/128', 'dev', 'lo']]);
    expect(routeCommands(parseIptablesArgs(['-b', '*', '-m', 'TPROXY', '-t', '7', '-r', '70']), true)).toEqual([
      ['-6', 'addr', 'add', '::6/128', 'dev', 'lo'],
      ['-4', 'rule', 'add', 'fwmark', '7', 'lookup', '70'],
      ['-6', 'rule', 'add', 'fwmark', '7', 'lookup', '70'],
      ['-4', 'route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '70'],
      ['-6', 'route', 'add', 'local', '::/0', 'dev', 'lo', 'table', '70'],
    ]);
    // Without inbound ports there is nothing for TPROXY to divert.
    expect(routeCommands(parseIptablesArgs(['-m', 'TPROXY']), false)).toEqual([]);
  });
});
