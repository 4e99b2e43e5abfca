// istio-iptables, reimplemented: the flags (and the environment variables Istio binds to them) become a typed
// config, and the config becomes iptables-restore input for IPv4 and IPv6.
//
// The rule order follows tools/istio-iptables/pkg/capture/run.go (bootstrap-iptables.md §B.4-B.6) call for call,
// because order inside a chain is what iptables evaluates; test/iptables-goldens.test.ts holds us to Istio's
// goldens. Pure: the caller supplies the environment and the host facts (is the pod IPv6, which DNS servers).

import { BlockList, isIP } from 'node:net';
import { UsageError } from '../errors.js';

export type InterceptionMode = 'REDIRECT' | 'TPROXY';
export type IptablesBinary = 'legacy' | 'nft';

export interface Cidr {
  /** As written, lower-cased: Istio prints prefixes with netip.Prefix.String(), which keeps host bits. */
  text: string;
  family: 4 | 6;
  loopback: boolean;
}

/** `'*'` captures everything; an empty list captures nothing. */
export type PortSelection = '*' | readonly number[];
export type CidrSelection = '*' | readonly Cidr[];

/** Istio's InterceptFilter over the app's group: capture all groups but some, or only some. */
export type OwnerGroupFilter =
  | { capture: 'all-except'; groups: readonly string[] }
  | { capture: 'only'; groups: readonly string[] };

export interface IptablesConfig {
  proxyPort: number;
  inboundCapturePort: number;
  inboundTunnelPort: number;
  proxyUids: readonly string[];
  proxyGids: readonly string[];
  interceptionMode: InterceptionMode;
  inboundPorts: PortSelection;
  /** Only used with inboundPorts `'*'`, as in Istio. */
  inboundPortsExclude: readonly number[];
  outboundPortsInclude: readonly number[];
  outboundPortsExclude: readonly number[];
  outboundIPRangesInclude: CidrSelection;
  outboundIPRangesExclude: readonly Cidr[];
  rerouteVirtualInterfaces: readonly string[];
  excludeInterfaces: readonly string[];
  tproxyMark: number;
  tproxyRouteTable: number;
  redirectDns: boolean;
  captureAllDns: boolean;
  dropInvalid: boolean;
  dualStack: boolean;
  ownerGroups: OwnerGroupFilter;
  hostIPv4LoopbackCidr: string;
  dryRun: boolean;
  iptablesBinary: IptablesBinary | undefined;
}

/** What istio-iptables learns from the pod's network namespace rather than from flags. */
export interface HostFacts {
  /** Istio's EnableIPv6: the pod's first usable address is IPv6 (or, with --dual-stack, any is). */
  ipv6: boolean;
  /** The resolv.conf nameservers, used only with --redirect-dns and without --capture-all-dns. */
  dnsServersV4: readonly string[];
  dnsServersV6: readonly string[];
}

export interface RestoreInput {
  ipv4: string;
  /** undefined when the pod has no IPv6: Istio then leaves ip6tables alone. */
  ipv6: string | undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Flags

type FlagName =
  | 'envoy-port' | 'inbound-capture-port' | 'inbound-tunnel-port' | 'proxy-uid' | 'proxy-gid'
  | 'istio-inbound-interception-mode' | 'istio-inbound-ports' | 'istio-local-exclude-ports'
  | 'istio-exclude-interfaces' | 'istio-service-cidr' | 'istio-service-exclude-cidr' | 'istio-outbound-ports'
  | 'istio-local-outbound-ports-exclude' | 'kube-virt-interfaces' | 'istio-inbound-tproxy-mark'
  | 'istio-inbound-tproxy-route-table' | 'dry-run' | 'redirect-dns' | 'capture-all-dns' | 'drop-invalid'
  | 'dual-stack' | 'force-iptables-binary' | 'log_output_level';

interface FlagSpec {
  short?: string;
  /** Environment variables Istio reads for this flag, strongest first; a flag on the command line beats them all. */
  env: readonly string[];
  switch?: true;
}

// Names, short letters and variables as in istio-iptables' root.go and pkg/constants (reference §B.4).
const FLAGS: Record<FlagName, FlagSpec> = {
  'envoy-port': { short: 'p', env: [] },
  'inbound-capture-port': { short: 'z', env: ['INBOUND_CAPTURE_PORT'] },
  'inbound-tunnel-port': { short: 'e', env: ['INBOUND_TUNNEL_PORT'] },
  'proxy-uid': { short: 'u', env: ['PROXY_UID'] },
  'proxy-gid': { short: 'g', env: ['PROXY_GID'] },
  'istio-inbound-interception-mode': { short: 'm', env: ['ISTIO_INBOUND_INTERCEPTION_MODE'] },
  'istio-inbound-ports': { short: 'b', env: ['ISTIO_INBOUND_PORTS'] },
  'istio-local-exclude-ports': { short: 'd', env: ['ISTIO_LOCAL_EXCLUDE_PORTS'] },
  'istio-exclude-interfaces': { short: 'c', env: ['ISTIO_EXCLUDE_INTERFACES'] },
  'istio-service-cidr': { short: 'i', env: ['ISTIO_SERVICE_CIDR'] },
  'istio-service-exclude-cidr': { short: 'x', env: ['ISTIO_SERVICE_EXCLUDE_CIDR'] },
  'istio-outbound-ports': { short: 'q', env: ['ISTIO_OUTBOUND_PORTS'] },
  'istio-local-outbound-ports-exclude': { short: 'o', env: ['ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE'] },
  'kube-virt-interfaces': { short: 'k', env: ['KUBE_VIRT_INTERFACES'] },
  'istio-inbound-tproxy-mark': { short: 't', env: ['ISTIO_INBOUND_TPROXY_MARK'] },
  'istio-inbound-tproxy-route-table': { short: 'r', env: ['ISTIO_INBOUND_TPROXY_ROUTE_TABLE'] },
  'dry-run': { short: 'n', env: ['DRY_RUN'], switch: true },
  // The injector enables DNS capture and invalid-drop through proxyMetadata, i.e. istio-init's environment.
  'redirect-dns': { env: ['REDIRECT_DNS', 'ISTIO_META_DNS_CAPTURE'], switch: true },
  'capture-all-dns': { env: ['CAPTURE_ALL_DNS'], switch: true },
  'drop-invalid': { env: ['DROP_INVALID', 'INVALID_DROP'], switch: true },
  'dual-stack': { env: ['DUAL_STACK', 'ISTIO_DUAL_STACK'], switch: true },
  'force-iptables-binary': { env: ['FORCE_IPTABLES_BINARY'] },
  // pilot-agent's logging flag, which the injector always appends: checked, then ignored (we log nothing).
  'log_output_level': { env: [] },
};

const ENV_OWNER_GROUPS = 'ISTIO_OUTBOUND_OWNER_GROUPS';
const ENV_OWNER_GROUPS_EXCLUDE = 'ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE';
const ENV_LOOPBACK_CIDR = 'ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR';

const SHORT_TO_LONG = new Map(
  Object.entries(FLAGS).flatMap(([long, spec]) => (spec.short ? [[spec.short, long as FlagName]] : [])),
);

export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Parses istio-iptables' command line the way its flag library (pflag) does: `-p 15001`, `-p15001`, `-p=15001`,
 * `--envoy-port 15001`, `--envoy-port=15001`; switches take no separate value (`--dry-run`, `--dry-run=false`).
 * The last occurrence of a flag wins. Throws UsageError naming the flag (or variable) and the value.
 */
export function parseIptablesArgs(argv: readonly string[], env: Environment = {}): IptablesConfig {
  const given = new Map<FlagName, { value: string; source: string }>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const match = /^--([^=]+)(?:=(.*))?$/s.exec(arg) ?? /^-([^-=])=?(.*)$/s.exec(arg);
    if (!match) throw new UsageError(`unexpected argument "${arg}" (istio-iptables takes only flags)`);
    const isLong = arg.startsWith('--');
    const name = isLong ? (match[1] as FlagName) : SHORT_TO_LONG.get(match[1] as string);
    const source = isLong ? `--${match[1]}` : `-${match[1]}`;
    if (name === undefined || !Object.hasOwn(FLAGS, name)) throw new UsageError(`unknown flag ${source}`);
    // A short flag's value may be glued on (-p15001); a long flag's only after "=".
    const inline = isLong ? match[2] : match[2] === '' && !arg.includes('=') ? undefined : match[2];
    if (FLAGS[name].switch) {
      given.set(name, { value: inline ?? 'true', source });
      continue;
    }
    let value = inline;
    if (value === undefined) {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) throw new UsageError(`flag ${source} needs a value`);
    given.set(name, { value, source });
  }

  const lookup = (name: FlagName): { value: string; source: string } | undefined => {
    const fromFlag = given.get(name);
    if (fromFlag) return fromFlag;
    // As viper does: an empty variable counts as unset.
    for (const variable of FLAGS[name].env) {
      const value = env[variable];
      if (value !== undefined && value !== '') return { value, source: variable };
    }
    return undefined;
  };
  const text = (name: FlagName, fallback: string): { value: string; source: string } =>
    lookup(name) ?? { value: fallback, source: `--${name}` };

  const port = (name: FlagName, fallback: number): number => {
    const found = lookup(name);
    return found ? parsePort(found.value, found.source, found.value) : fallback;
  };
  const ports = (name: FlagName): number[] => {
    const { value, source } = text(name, '');
    return split(value).map((item) => parsePort(item, source, value));
  };
  const names = (name: FlagName, valid: RegExp, what: string): string[] => {
    const { value, source } = text(name, '');
    return split(value).map((item) => {
      if (!valid.test(item)) throw invalid(source, value, `"${item}" is not ${what}`);
      return item;
    });
  };
  const bool = (name: FlagName): boolean => {
    const found = lookup(name);
    return found ? parseBool(found.value, found.source) : false;
  };
  const integer = (name: FlagName, fallback: number, max: number): number => {
    const found = lookup(name);
    if (!found) return fallback;
    if (!/^[0-9]+$/.test(found.value) || Number(found.value) > max) {
      throw invalid(found.source, found.value, `expected an integer 0-${max}`);
    }
    return Number(found.value);
  };

  const mode = text('istio-inbound-interception-mode', 'REDIRECT');
  // Istio treats anything but TPROXY as REDIRECT, "" included; the injector only writes these two, so anything
  // else is a typo worth stopping for.
  if (mode.value !== '' && mode.value !== 'REDIRECT' && mode.value !== 'TPROXY') {
    throw invalid(mode.source, mode.value, 'expected REDIRECT or TPROXY');
  }

  const inbound = text('istio-inbound-ports', '');
  const include = text('istio-service-cidr', '');
  const exclude = text('istio-service-exclude-cidr', '');
  if (exclude.value.trim() === '*') {
    throw invalid(exclude.source, exclude.value, '"*" cannot be excluded: list the CIDRs to leave alone');
  }

  // Istio falls back to the uid of $ENVOY_USER (istio-proxy) and then 1337; images running this have no such
  // user, and the injector always passes -u, so the fallback is 1337. The gids default to the uids.
  const uids = names('proxy-uid', OWNER, 'a user id or name');
  const proxyUids = uids.length > 0 ? uids : ['1337'];
  const gids = names('proxy-gid', OWNER, 'a group id or name');
  const binary = lookup('force-iptables-binary');
  if (binary && binary.value !== 'legacy' && binary.value !== 'nft') {
    throw invalid(binary.source, binary.value, 'expected legacy or nft');
  }
  const logLevel = lookup('log_output_level');
  if (logLevel && !LOG_LEVELS.test(logLevel.value)) {
    throw invalid(logLevel.source, logLevel.value, 'expected scope:level pairs, e.g. default:info');
  }

  return {
    proxyPort: port('envoy-port', 15001),
    inboundCapturePort: port('inbound-capture-port', 15006),
    inboundTunnelPort: port('inbound-tunnel-port', 15008),
    proxyUids,
    proxyGids: gids.length > 0 ? gids : proxyUids,
    interceptionMode: mode.value === 'TPROXY' ? 'TPROXY' : 'REDIRECT',
    inboundPorts: inbound.value.trim() === '*' ? '*' : split(inbound.value).map((p) => parsePort(p, inbound.source, inbound.value)),
    inboundPortsExclude: ports('istio-local-exclude-ports'),
    outboundPortsInclude: ports('istio-outbound-ports'),
    outboundPortsExclude: ports('istio-local-outbound-ports-exclude'),
    outboundIPRangesInclude: include.value.trim() === '*' ? '*' : parseCidrs(include.value, include.source),
    outboundIPRangesExclude: parseCidrs(exclude.value, exclude.source),
    rerouteVirtualInterfaces: names('kube-virt-interfaces', INTERFACE, 'an interface name'),
    excludeInterfaces: names('istio-exclude-interfaces', INTERFACE, 'an interface name'),
    tproxyMark: integer('istio-inbound-tproxy-mark', 1337, 0xffffffff),
    tproxyRouteTable: integer('istio-inbound-tproxy-route-table', 133, 0xffffffff),
    redirectDns: bool('redirect-dns'),
    captureAllDns: bool('capture-all-dns'),
    dropInvalid: bool('drop-invalid'),
    dualStack: bool('dual-stack'),
    ownerGroups: parseOwnerGroups(env),
    hostIPv4LoopbackCidr: parseLoopbackCidr(env),
    dryRun: bool('dry-run'),
    iptablesBinary: binary?.value as IptablesBinary | undefined,
  };
}

// --uid-owner/--gid-owner take numeric ids or names (the owner-groups golden uses "java" and "ftp").
const OWNER = /^(?:[0-9]+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$/;
// Linux interface names: at most 15 bytes, no "/", ":" or whitespace; iptables adds a trailing "+" wildcard.
const INTERFACE = /^[A-Za-z0-9_.-]{1,15}\+?$/;
const LOG_LEVELS = /^(?:[A-Za-z0-9_.-]+:)?(?:debug|info|warn|error|fatal|none)(?:,(?:[A-Za-z0-9_.-]+:)?(?:debug|info|warn|error|fatal|none))*$/;

function invalid(source: string, value: string, why: string): UsageError {
  return new UsageError(`invalid ${source} "${value}": ${why}`);
}

/** Istio's config.Split: comma separated, empty items dropped. */
function split(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function parsePort(item: string, source: string, value: string): number {
  if (!/^[0-9]+$/.test(item) || Number(item) < 1 || Number(item) > 65535) {
    throw invalid(source, value, `"${item}" is not a port number 1-65535`);
  }
  return Number(item);
}

function parseBool(value: string, source: string): boolean {
  // Go's strconv.ParseBool, which both pflag and viper use.
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw invalid(source, value, 'expected true or false');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function parseCidr(item: string, source: string, value: string): Cidr {
  const slash = item.indexOf('/');
  const address = slash < 0 ? item : item.slice(0, slash);
  const prefix = slash < 0 ? '' : item.slice(slash + 1);
  const family = isIP(address) === 4 ? 4 : isIP(address) === 6 ? 6 : undefined;
  if (family === undefined || !/^[0-9]{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) {
    throw invalid(source, value, `"${item}" is not a CIDR such as 10.0.0.0/8 or fd00::/8`);
  }
  const loopback = LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
  return { text: item.toLowerCase(), family, loopback };
}

function parseCidrs(value: string, source: string): Cidr[] {
  return split(value).map((item) => {
    if (item === '*') throw invalid(source, value, '"*" must stand alone');
    return parseCidr(item, source, value);
  });
}

function parseOwnerGroups(env: Environment): OwnerGroupFilter {
  const include = env[ENV_OWNER_GROUPS] || '*';
  if (include.trim() === '*') {
    const groups = split(env[ENV_OWNER_GROUPS_EXCLUDE] ?? '');
    for (const group of groups) {
      if (!OWNER.test(group)) throw invalid(ENV_OWNER_GROUPS_EXCLUDE, env[ENV_OWNER_GROUPS_EXCLUDE] ?? '', `"${group}" is not a group`);
    }
    return { capture: 'all-except', groups };
  }
  const groups = split(include);
  for (const group of groups) {
    if (!OWNER.test(group)) throw invalid(ENV_OWNER_GROUPS, include, `"${group}" is not a group`);
  }
  // Istio's limit (config/validation.go): every included group becomes one match in a single rule.
  if (groups.length > 64) throw invalid(ENV_OWNER_GROUPS, include, `at most 64 groups, got ${groups.length}`);
  return { capture: 'only', groups };
}

function parseLoopbackCidr(env: Environment): string {
  const value = env[ENV_LOOPBACK_CIDR] || '127.0.0.1/32';
  const cidr = parseCidr(value, ENV_LOOPBACK_CIDR, value);
  const bits = Number(value.slice(value.indexOf('/') + 1));
  if (cidr.family !== 4 || !cidr.loopback || bits < 8) {
    throw invalid(ENV_LOOPBACK_CIDR, value, 'expected an IPv4 range inside 127.0.0.0/8');
  }
  return cidr.text;
}

// ---------------------------------------------------------------------------------------------------------------
// Host facts

export interface InterfaceAddress {
  address: string;
  family: 'IPv4' | 'IPv6';
}

const NOT_A_POD_ADDRESS = new BlockList();
NOT_A_POD_ADDRESS.addSubnet('127.0.0.0', 8, 'ipv4');
NOT_A_POD_ADDRESS.addSubnet('169.254.0.0', 16, 'ipv4');
NOT_A_POD_ADDRESS.addSubnet('224.0.0.0', 24, 'ipv4');
NOT_A_POD_ADDRESS.addAddress('::1', 'ipv6');
NOT_A_POD_ADDRESS.addSubnet('fe80::', 10, 'ipv6');
NOT_A_POD_ADDRESS.addSubnet('ff02::', 16, 'ipv6');

/**
 * Istio's getLocalIP over the pod's addresses, loopback and link-local ones skipped. Netlink lists every IPv4
 * address before any IPv6 one, so a pod with both counts as IPv4 unless dual stack is on. No address at all
 * counts as IPv4 (Istio fails; a dry run need not).
 */
export function podUsesIPv6(addresses: readonly InterfaceAddress[], dualStack: boolean): boolean {
  const usable = addresses.filter(({ address, family }) => !NOT_A_POD_ADDRESS.check(address, family === 'IPv4' ? 'ipv4' : 'ipv6'));
  const hasV6 = usable.some((a) => a.family === 'IPv6');
  return dualStack ? hasV6 : hasV6 && !usable.some((a) => a.family === 'IPv4');
}

/** The nameserver lines of resolv.conf, split by family, as Istio's dns.ClientConfigFromFile + IPsSplitV4V6. */
export function nameservers(resolvConf: string): { v4: string[]; v6: string[] } {
  const v4: string[] = [];
  const v6: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const [keyword, server] = line.trim().split(/\s+/);
    if (keyword !== 'nameserver' || server === undefined) continue;
    const family = isIP(server);
    if (family === 4) v4.push(server);
    else if (family === 6) v6.push(server);
  }
  return { v4, v6 };
}

// ---------------------------------------------------------------------------------------------------------------
// Rules

type Table = 'mangle' | 'nat' | 'raw';

interface Rule {
  table: Table;
  chain: string;
  /** 1-based position for `-I`; absent for `-A`. */
  insertAt?: number;
  params: readonly string[];
}

const INBOUND = 'ISTIO_INBOUND';
const REDIRECT = 'ISTIO_REDIRECT';
const IN_REDIRECT = 'ISTIO_IN_REDIRECT';
const OUTPUT = 'ISTIO_OUTPUT';
const OUTPUT_DNS = 'ISTIO_OUTPUT_DNS';
const DIVERT = 'ISTIO_DIVERT';
const TPROXY = 'ISTIO_TPROXY';
const DROP = 'ISTIO_DROP';
/** Envoy marks its own connections to the app through the pod IP with this, so they are not captured again. */
const OUTBOUND_MARK = '1338';
const AGENT_DNS_PORT = '15053';

/** Istio's IptablesRuleBuilder: every rule goes to the v4 list and, when the pod has IPv6, to the v6 list. */
class RuleBuilder {
  readonly v4: Rule[] = [];
  readonly v6: Rule[] = [];

  constructor(private readonly ipv6: boolean) {}

  appendV4(table: Table, chain: string, ...params: string[]): void {
    this.v4.push({ table, chain, params });
  }

  appendV6(table: Table, chain: string, ...params: string[]): void {
    if (this.ipv6) this.v6.push({ table, chain, params });
  }

  append(table: Table, chain: string, ...params: string[]): void {
    this.appendV4(table, chain, ...params);
    this.appendV6(table, chain, ...params);
  }

  /** One rule that differs between families only in one address: `VERSIONED` in params is replaced. */
  appendVersioned(v4: string, v6: string, table: Table, chain: string, ...params: string[]): void {
    this.appendV4(table, chain, ...params.map((p) => (p === VERSIONED ? v4 : p)));
    this.appendV6(table, chain, ...params.map((p) => (p === VERSIONED ? v6 : p)));
  }

  insertV4(table: Table, chain: string, position: number, ...params: string[]): void {
    this.v4.push({ table, chain, insertAt: position, params });
  }

  insertV6(table: Table, chain: string, position: number, ...params: string[]): void {
    if (this.ipv6) this.v6.push({ table, chain, insertAt: position, params });
  }

  insert(table: Table, chain: string, position: number, ...params: string[]): void {
    this.insertV4(table, chain, position, ...params);
    this.insertV6(table, chain, position, ...params);
  }
}

const VERSIONED = '\0versioned';

/** The iptables-restore input istio-iptables would feed to iptables-restore and ip6tables-restore. */
export function renderRestoreInput(config: IptablesConfig, host: HostFacts): RestoreInput {
  const rules = buildRules(config, host);
  return { ipv4: restoreText(rules.v4), ipv6: host.ipv6 ? restoreText(rules.v6) : undefined };
}

function buildRules(config: IptablesConfig, host: HostFacts): RuleBuilder {
  const b = new RuleBuilder(host.ipv6);
  const tproxy = config.interceptionMode === 'TPROXY';
  const loopback = config.hostIPv4LoopbackCidr;
  const tunnelPort = String(config.inboundTunnelPort);
  const include = config.outboundIPRangesInclude;
  const includesLoopback = include !== '*' && include.some((cidr) => cidr.loopback);
  // Without servers to match (and without capture-all) Istio turns DNS capture off rather than capture nothing.
  const redirectDns =
    config.redirectDns && (config.captureAllDns || host.dnsServersV4.length > 0 || host.dnsServersV6.length > 0);

  for (const nic of config.excludeInterfaces) {
    b.append('nat', 'PREROUTING', '-i', nic, '-j', 'RETURN');
    b.append('nat', 'OUTPUT', '-o', nic, '-j', 'RETURN');
  }
  if (tproxy) {
    for (const nic of config.excludeInterfaces) {
      b.append('mangle', 'PREROUTING', '-i', nic, '-j', 'RETURN');
      b.append('mangle', 'OUTPUT', '-o', nic, '-j', 'RETURN');
    }
  }
  for (const nic of config.rerouteVirtualInterfaces) b.insert('nat', 'PREROUTING', 1, '-i', nic, '-j', 'RETURN');

  if (config.dropInvalid) {
    // Out-of-window packets are dropped instead of answered with a reset that would kill the connection.
    b.append('mangle', 'PREROUTING', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', DROP);
    b.append('mangle', DROP, '-j', 'DROP');
  }

  // The HBONE tunnel port is never captured.
  b.append('nat', INBOUND, '-p', 'tcp', '--dport', tunnelPort, '-j', 'RETURN');
  b.append('nat', REDIRECT, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(config.proxyPort));
  b.append('nat', IN_REDIRECT, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(config.inboundCapturePort));

  inboundRules(b, config);

  // All locally generated traffic, TCP and UDP: ISTIO_OUTPUT decides.
  b.append('nat', 'OUTPUT', '-j', OUTPUT);
  for (const port of config.outboundPortsExclude) {
    b.append('nat', OUTPUT, '-p', 'tcp', '--dport', String(port), '-j', 'RETURN');
    b.append('nat', OUTPUT, '-p', 'udp', '--dport', String(port), '-j', 'RETURN');
  }
  // Envoy's inbound passthrough binds 127.0.0.6 (::6) to reach the app on the pod IP; that must not loop back in.
  b.appendVersioned('127.0.0.6/32', '::6/128', 'nat', OUTPUT, '-o', 'lo', '-s', VERSIONED, '-j', 'RETURN');

  const owners: [flag: '--uid-owner' | '--gid-owner', id: string][] = [
    ...config.proxyUids.map((id) => ['--uid-owner', id] as ['--uid-owner', string]),
    ...config.proxyGids.map((id) => ['--gid-owner', id] as ['--gid-owner', string]),
  ];
  for (const [flag, id] of owners) {
    // Envoy calling its own pod through a service VIP (app -> Envoy out -> Envoy in -> app) goes to the inbound
    // listener. With DNS capture Istio skips port 53 here, but only in the uid rule.
    const notTunnel =
      redirectDns && flag === '--uid-owner'
        ? ['-m', 'multiport', '!', '--dports', `53,${tunnelPort}`]
        : ['!', '--dport', tunnelPort];
    b.appendVersioned(loopback, '::1/128', 'nat', OUTPUT,
      '-o', 'lo', '!', '-d', VERSIONED, '-p', 'tcp', ...notTunnel, '-m', 'owner', flag, id, '-j', IN_REDIRECT);
    // The app talking to itself over lo is left alone, unless a loopback range is explicitly captured; TCP to a
    // local DNS server on 53 still goes on to the DNS rules.
    if (!includesLoopback) {
      const notDns = redirectDns ? ['-p', 'tcp', '!', '--dport', '53'] : [];
      b.append('nat', OUTPUT, '-o', 'lo', ...notDns, '-m', 'owner', '!', flag, id, '-j', 'RETURN');
    }
    // Anything else Envoy sends is never captured again: loop prevention, for every protocol and destination.
    b.append('nat', OUTPUT, '-m', 'owner', flag, id, '-j', 'RETURN');
  }

  if (config.ownerGroups.capture === 'all-except') {
    for (const group of config.ownerGroups.groups) b.append('nat', OUTPUT, '-m', 'owner', '--gid-owner', group, '-j', 'RETURN');
  } else {
    const noneOf = config.ownerGroups.groups.flatMap((group) => ['-m', 'owner', '!', '--gid-owner', group]);
    b.append('nat', OUTPUT, ...noneOf, '-j', 'RETURN');
  }

  if (redirectDns) dnsRules(b, config, host);

  // Envoy-aware apps and container-to-container traffic use localhost explicitly.
  b.appendVersioned(loopback, '::1/128', 'nat', OUTPUT, '-d', VERSIONED, '-j', 'RETURN');
  for (const cidr of config.outboundIPRangesExclude) {
    if (cidr.family === 4) b.appendV4('nat', OUTPUT, '-d', cidr.text, '-j', 'RETURN');
    else b.appendV6('nat', OUTPUT, '-d', cidr.text, '-j', 'RETURN');
  }
  for (const port of config.outboundPortsInclude) {
    b.append('nat', OUTPUT, '-p', 'tcp', '--dport', String(port), '-j', REDIRECT);
  }
  outboundIncludeRules(b, config, 4);
  outboundIncludeRules(b, config, 6);

  if (tproxy) tproxyMarkRules(b, config);
  return b;
}

function inboundRules(b: RuleBuilder, config: IptablesConfig): void {
  const ports = config.inboundPorts;
  if (ports !== '*' && ports.length === 0) return;
  const tproxy = config.interceptionMode === 'TPROXY';
  const mark = String(config.tproxyMark);
  const table: Table = tproxy ? 'mangle' : 'nat';
  if (tproxy) {
    // Packets of established inbound connections are marked and accepted so policy routing hands them to lo;
    // new ones are TPROXYed to the inbound listener with the same mark.
    b.append('mangle', DIVERT, '-j', 'MARK', '--set-mark', mark);
    b.append('mangle', DIVERT, '-j', 'ACCEPT');
    b.appendVersioned(config.hostIPv4LoopbackCidr, '::1/128', 'mangle', TPROXY, '!', '-d', VERSIONED, '-p', 'tcp',
      '-j', 'TPROXY', '--tproxy-mark', `${mark}/0xffffffff`, '--on-port', String(config.inboundCapturePort));
  }
  b.append(table, 'PREROUTING', '-p', 'tcp', '-j', INBOUND);

  const capture = (match: string[]): void => {
    if (tproxy) {
      b.append('mangle', INBOUND, '-p', 'tcp', ...match, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', DIVERT);
      b.append('mangle', INBOUND, '-p', 'tcp', ...match, '-j', TPROXY);
    } else {
      b.append('nat', INBOUND, '-p', 'tcp', ...match, '-j', IN_REDIRECT);
    }
  };
  if (ports === '*') {
    for (const port of config.inboundPortsExclude) b.append(table, INBOUND, '-p', 'tcp', '--dport', String(port), '-j', 'RETURN');
    capture([]);
  } else {
    for (const port of ports) capture(['--dport', String(port)]);
  }
}

function outboundIncludeRules(b: RuleBuilder, config: IptablesConfig, family: 4 | 6): void {
  const append = family === 4 ? b.appendV4.bind(b) : b.appendV6.bind(b);
  const insert = family === 4 ? b.insertV4.bind(b) : b.insertV6.bind(b);
  const include = config.outboundIPRangesInclude;
  // Traffic arriving on a virtual interface (e.g. from a KubeVirt VM) is the VM's outbound traffic.
  if (include === '*') {
    append('nat', OUTPUT, '-j', REDIRECT);
    for (const nic of config.rerouteVirtualInterfaces) insert('nat', 'PREROUTING', 1, '-i', nic, '-j', REDIRECT);
    return;
  }
  for (const cidr of include.filter((c) => c.family === family)) {
    for (const nic of config.rerouteVirtualInterfaces) {
      insert('nat', 'PREROUTING', 1, '-i', nic, '-d', cidr.text, '-j', REDIRECT);
    }
    append('nat', OUTPUT, '-d', cidr.text, '-j', REDIRECT);
  }
}

function dnsRules(b: RuleBuilder, config: IptablesConfig, host: HostFacts): void {
  const all = config.captureAllDns;
  const { dnsServersV4: v4, dnsServersV6: v6 } = host;
  b.append('raw', 'OUTPUT', '-j', OUTPUT_DNS);
  // Jump only for the families that have something to capture.
  if (all || v4.length > 0) b.appendV4('nat', OUTPUT, '-j', OUTPUT_DNS);
  if (all || v6.length > 0) b.appendV6('nat', OUTPUT, '-j', OUTPUT_DNS);

  // Only the resolv.conf servers, not every port-53 destination: a local dnsmasq forwarding to the same upstream
  // would otherwise loop through the agent. (--to-ports / --to-port spelled as Istio does; iptables takes both.)
  for (const protocol of ['tcp', 'udp'] as const) {
    const target = protocol === 'tcp' ? '--to-ports' : '--to-port';
    if (all) {
      b.append('nat', OUTPUT_DNS, '-p', protocol, '--dport', '53', '-j', 'REDIRECT', target, AGENT_DNS_PORT);
      continue;
    }
    for (const server of v4) b.appendV4('nat', OUTPUT_DNS, '-p', protocol, '--dport', '53', '-d', `${server}/32`, '-j', 'REDIRECT', target, AGENT_DNS_PORT);
    for (const server of v6) b.appendV6('nat', OUTPUT_DNS, '-p', protocol, '--dport', '53', '-d', `${server}/128`, '-j', 'REDIRECT', target, AGENT_DNS_PORT);
  }

  // Separate conntrack zones for agent<->upstream (1) and app<->agent (2): UDP conntrack races otherwise mix them up.
  for (const [flag, id] of [
    ...config.proxyUids.map((id) => ['--uid-owner', id] as const),
    ...config.proxyGids.map((id) => ['--gid-owner', id] as const),
  ]) {
    b.append('raw', OUTPUT_DNS, '-p', 'udp', '--dport', '53', '-m', 'owner', flag, id, '-j', 'CT', '--zone', '1');
    b.append('raw', OUTPUT_DNS, '-p', 'udp', '--sport', AGENT_DNS_PORT, '-m', 'owner', flag, id, '-j', 'CT', '--zone', '2');
  }
  if (all) {
    b.append('raw', 'PREROUTING', '-j', INBOUND);
    b.append('raw', OUTPUT_DNS, '-p', 'udp', '--dport', '53', '-j', 'CT', '--zone', '2');
    b.append('raw', INBOUND, '-p', 'udp', '--sport', '53', '-j', 'CT', '--zone', '1');
    return;
  }
  if (v4.length > 0) b.appendV4('raw', 'PREROUTING', '-j', INBOUND);
  for (const server of v4) {
    b.appendV4('raw', OUTPUT_DNS, '-p', 'udp', '--dport', '53', '-d', `${server}/32`, '-j', 'CT', '--zone', '2');
    b.appendV4('raw', INBOUND, '-p', 'udp', '--sport', '53', '-s', `${server}/32`, '-j', 'CT', '--zone', '1');
  }
  if (v6.length > 0) b.appendV6('raw', 'PREROUTING', '-j', INBOUND);
  for (const server of v6) {
    b.appendV6('raw', OUTPUT_DNS, '-p', 'udp', '--dport', '53', '-d', `${server}/128`, '-j', 'CT', '--zone', '2');
    b.appendV6('raw', INBOUND, '-p', 'udp', '--sport', '53', '-s', `${server}/128`, '-j', 'CT', '--zone', '1');
  }
}

function tproxyMarkRules(b: RuleBuilder, config: IptablesConfig): void {
  const mark = String(config.tproxyMark);
  const loopback = config.hostIPv4LoopbackCidr;
  // Keep the mark Envoy's original_src listener filter sets, so replies route back through lo to Envoy.
  b.append('mangle', 'PREROUTING', '-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'CONNMARK', '--save-mark');
  b.append('mangle', 'OUTPUT', '-p', 'tcp', '-o', 'lo', '-m', 'mark', '--mark', mark, '-j', 'RETURN');
  for (const [flag, id] of [
    ...config.proxyUids.map((id) => ['--uid-owner', id] as const),
    ...config.proxyGids.map((id) => ['--gid-owner', id] as const),
  ]) {
    b.appendVersioned(loopback, '::1/128', 'mangle', 'OUTPUT', '!', '-d', VERSIONED, '-p', 'tcp', '-o', 'lo',
      '-m', 'owner', flag, id, '-j', 'MARK', '--set-mark', OUTBOUND_MARK);
  }
  b.append('mangle', 'OUTPUT', '-p', 'tcp', '-m', 'connmark', '--mark', mark, '-j', 'CONNMARK', '--restore-mark');
  // Never divert again what is already marked, what Envoy sends from 127.0.0.6, or the app talking to itself.
  b.insert('mangle', INBOUND, 1, '-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'RETURN');
  b.insertV4('mangle', INBOUND, 2, '-p', 'tcp', '-s', '127.0.0.6/32', '-i', 'lo', '-j', 'RETURN');
  b.insertV6('mangle', INBOUND, 2, '-p', 'tcp', '-s', '::6/128', '-i', 'lo', '-j', 'RETURN');
  b.insert('mangle', INBOUND, 3, '-p', 'tcp', '-i', 'lo', '-m', 'mark', '!', '--mark', OUTBOUND_MARK, '-j', 'RETURN');
}

/** Istio's buildRestore: per table (sorted), `-N` for every Istio chain used or jumped to, then the rules in order. */
function restoreText(rules: readonly Rule[]): string {
  const tables = new Map<Table, { chains: string[]; lines: string[] }>();
  for (const rule of rules) {
    const entry = tables.get(rule.table) ?? { chains: [], lines: [] };
    tables.set(rule.table, entry);
    const position = rule.insertAt === undefined ? ['-A', rule.chain] : ['-I', rule.chain, String(rule.insertAt)];
    entry.lines.push([...position, ...rule.params].join(' '));
  }
  // Chains that hold rules are declared first, then chains only jumped to, each in first-use order.
  for (const pass of ['holds', 'jumped'] as const) {
    for (const rule of rules) {
      const chain = pass === 'holds' ? rule.chain : rule.params.at(-2) === '-j' ? (rule.params.at(-1) as string) : '';
      const chains = (tables.get(rule.table) as { chains: string[] }).chains;
      if (chain.startsWith('ISTIO_') && !chains.includes(chain)) chains.push(chain);
    }
  }
  let out = '';
  for (const table of [...tables.keys()].sort()) {
    const { chains, lines } = tables.get(table) as { chains: string[]; lines: string[] };
    out += `* ${table}\n${chains.map((chain) => `-N ${chain}\n`).join('')}${lines.join('\n')}\nCOMMIT\n`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Routing

/**
 * The `ip` commands istio-iptables runs besides the rules (tproxy.ConfigureRoutes): ::6 on lo for IPv6 pods, the
 * source Envoy's inbound passthrough binds; and for TPROXY the policy routing that delivers marked packets to lo.
 */
export function routeCommands(config: IptablesConfig, ipv6: boolean): string[][] {
  const commands: string[][] = [];
  if (ipv6) commands.push(['-6', 'addr', 'add', '::6/128', 'dev', 'lo']);
  const inbound = config.inboundPorts;
  if (config.interceptionMode === 'TPROXY' && (inbound === '*' || inbound.length > 0)) {
    const mark = String(config.tproxyMark);
    const table = String(config.tproxyRouteTable);
    const families = ipv6 ? (['-4', '-6'] as const) : (['-4'] as const);
    for (const family of families) commands.push([family, 'rule', 'add', 'fwmark', mark, 'lookup', table]);
    for (const family of families) {
      commands.push([family, 'route', 'add', 'local', family === '-4' ? '0.0.0.0/0' : '::/0', 'dev', 'lo', 'table', table]);
    }
  }
  return commands;
}
