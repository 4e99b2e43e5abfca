// `sidecar-injector iptables <istio-iptables flags>`: the istio-init step, so this project's image can be the init
// image. --dry-run prints the iptables-restore input; otherwise it is piped into iptables-restore and
// ip6tables-restore, as istio-iptables does, and the `ip` route commands TPROXY and IPv6 need are run.

import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { delimiter, join } from 'node:path';
import {
  type IptablesConfig,
  nameservers,
  parseIptablesArgs,
  podUsesIPv6,
  renderRestoreInput,
  routeCommands,
} from '../core/iptables.js';
import { InjectorError, InputError, UsageError } from '../errors.js';

interface Step {
  tool: string;
  args: string[];
  input?: string;
  /** `ip` reports an address, rule or route that is already there as "File exists"; Istio ignores it too. */
  alreadyDoneIsFine?: true;
}

export async function iptablesCommand(argv: string[]): Promise<void> {
  const config = parseIptablesArgs(argv, process.env);
  const addresses = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  const ipv6 = podUsesIPv6(addresses, config.dualStack);
  const dns = config.redirectDns && !config.captureAllDns ? nameservers(readResolvConf()) : { v4: [], v6: [] };
  const input = renderRestoreInput(config, { ipv6, dnsServersV4: dns.v4, dnsServersV6: dns.v6 });

  const [restore4, restore6] = restoreTools(config);
  const steps: Step[] = [{ tool: restore4, args: ['--noflush'], input: input.ipv4 }];
  if (input.ipv6 !== undefined) steps.push({ tool: restore6, args: ['--noflush'], input: input.ipv6 });
  for (const args of routeCommands(config, ipv6)) steps.push({ tool: 'ip', args, alreadyDoneIsFine: true });

  if (config.dryRun) {
    // Comments keep the output valid iptables-restore input while saying which tool each part is for.
    let out = '';
    for (const step of steps) out += `# ${step.tool} ${step.args.join(' ')}\n${step.input ?? ''}`;
    process.stdout.write(out);
    return;
  }

  // Resolve every tool before running any, so a missing one never leaves the pod half-redirected.
  const resolved = steps.map((step) => ({ ...step, path: findExecutable(step.tool) }));
  const missing = resolved.find((step) => step.path === undefined);
  if (missing) {
    throw new UsageError(
      `${missing.tool} not found on PATH, /usr/sbin or /sbin: install ${missing.tool === 'ip' ? 'iproute2' : 'iptables'} or use --dry-run`,
    );
  }
  for (const step of resolved) {
    await run(step.path as string, step);
    const rules = step.input?.split('\n').filter((line) => /^-[AI] /.test(line)).length;
    process.stdout.write(`${step.tool} ${step.args.join(' ')}${rules === undefined ? '' : `: ${rules} rules`}\n`);
  }
}

function restoreTools(config: IptablesConfig): [string, string] {
  // Without a choice, the distribution's alternatives decide between nft and legacy.
  const variant = config.iptablesBinary ? `-${config.iptablesBinary}` : '';
  return [`iptables${variant}-restore`, `ip6tables${variant}-restore`];
}

function readResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch (error) {
    throw new InputError(`cannot read /etc/resolv.conf for DNS capture: ${(error as Error).message}`);
  }
}

// iptables and ip live in sbin, which is often not on a non-root PATH.
function findExecutable(tool: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    const candidate = join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function run(path: string, step: Step): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, step.args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', (error) => reject(new InjectorError('SI_ERR_INPUT', `${step.tool}: ${error.message}`)));
    child.on('close', (code) => {
      if (code === 0 || (step.alreadyDoneIsFine && /File exists/.test(stderr))) return resolve();
      const reason = stderr.split('\n').find((line) => line.trim() !== '') ?? `exit code ${code}`;
      reject(new InjectorError('SI_ERR_INPUT', `${step.tool} ${step.args.join(' ')} failed: ${reason.trim()}`));
    });
    // A tool that dies early closes its stdin; the exit code above is the error worth reporting, not EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(step.input ?? '');
  });
}
