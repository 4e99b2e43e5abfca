// A strict check of a JSON value against a protobuf message type, as Envoy applies it to its bootstrap: first the
// proto3 JSON mapping (unknown fields, enum names, Duration syntax and `@type`s must all resolve; Envoy rejects
// unknown static fields by default), then the protoc-gen-validate rules written into Envoy's .proto files (ports
// within range, non-empty names, required fields), which Envoy runs right after parsing.
//
// Pure: it reads a protobufjs Root that load.ts built once, and never throws for bad input; every problem comes
// back with the JSON path that holds it. PGV rules not implemented here (timestamp rules relative to now, bytes
// patterns, no_sparse) are skipped, never guessed.

import { isIP } from 'node:net';
import type { Enum, Field, Namespace, OneOf, ReflectionObject, Root, Type } from 'protobufjs';

export interface SchemaProblem {
  /** The JSON path as written in the document, e.g. `static_resources.clusters[0].name`. */
  path: string;
  message: string;
}

// A value that failed to parse: its problem is already reported, and rules must not pile more on it.
const INVALID = Symbol('invalid');
type Parsed = unknown;

type Rules = Record<string, unknown>;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const fieldPath = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);
// Map keys and `@type` may hold dots or other characters that would read as structure.
const keyPath = (path: string, key: string) => `${path}[${JSON.stringify(key)}]`;
const describe = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v));

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};
const FLOAT_MAX = 3.4028234663852886e38;

/** Wrapper message -> the scalar type of its `value`: their JSON is the bare scalar. */
const WRAPPERS: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};
const DURATION = /^(-)?([0-9]+)(?:\.([0-9]{1,9}))?s$/;
const MAX_DURATION_SECONDS = 315_576_000_000;
const TIMESTAMP = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$/;
/** Messages whose JSON is not an object: inside an Any they sit under "value". */
const CUSTOM_JSON = new Set([
  ...Object.keys(WRAPPERS),
  'google.protobuf.Any',
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.FieldMask',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
]);
/** Envoy's untyped extension config: `value` must be valid JSON for the message named by `type_url`. */
const TYPED_STRUCTS = new Set(['udpa.type.v1.TypedStruct', 'xds.type.v3.TypedStruct']);

/** What checking a message needs of its type, worked out once per type. */
interface MessagePlan {
  name: string;
  /** The proto3 JSON mapping accepts both a field's name and its lowerCamelCase JSON name. */
  fieldsByKey: Map<string, Field>;
  /** Fields with PGV rules; none when the message turns validation off. */
  ruled: { field: Field; rules: Rules }[];
  /** Real oneofs; proto3 `optional` fields are synthetic oneofs of one member. */
  oneofs: OneOf[];
  disallowed: Set<Field>;
  typedStruct: boolean;
}

/** Everything derived from the Root once and reused by every check. */
export class ProtoJsonSchema {
  private readonly fullNames = new WeakMap<ReflectionObject, string>();
  private readonly plans = new WeakMap<Type, MessagePlan>();
  private readonly typesByName = new Map<string, Type | null>();
  private readonly patterns = new Map<string, RegExp | null>();

  constructor(readonly root: Root) {}

  /** The type's full name without the leading dot; protobufjs rebuilds it from the parents on every read. */
  nameOf(type: ReflectionObject): string {
    let name = this.fullNames.get(type);
    if (name === undefined) {
      name = type.fullName.slice(1);
      this.fullNames.set(type, name);
    }
    return name;
  }

  /** The message type named `name` (no leading dot), or null when the API has none. */
  messageType(name: string): Type | null {
    let found = this.typesByName.get(name);
    if (found === undefined) {
      // Walked part by part: protobufjs's lookup also searches nested packages, so "v3.Cluster" would resolve.
      let object: ReflectionObject | null = this.root;
      for (const part of name.split('.')) object = object !== null && 'nestedArray' in object ? (object as Namespace).get(part) : null;
      found = object !== null && 'fieldsArray' in object && 'oneofsArray' in object ? (object as Type) : null;
      this.typesByName.set(name, found);
    }
    return found;
  }

  planOf(type: Type): MessagePlan {
    const known = this.plans.get(type);
    if (known) return known;
    const name = this.nameOf(type);
    const validationOff = type.options?.['(validate.disabled)'] === true || type.options?.['(validate.ignored)'] === true;
    const plan: MessagePlan = {
      name,
      fieldsByKey: new Map(),
      ruled: [],
      oneofs: type.oneofsArray.filter((oneof) => !oneof.isProto3Optional),
      disallowed: new Set(),
      typedStruct: TYPED_STRUCTS.has(name),
    };
    for (const field of type.fieldsArray) {
      plan.fieldsByKey.set(field.name, field);
      if (field.jsonName) plan.fieldsByKey.set(field.jsonName, field);
      if (field.options?.['(envoy.annotations.disallowed_by_default)'] === true) plan.disallowed.add(field);
      let rules: Rules | undefined;
      for (const option of field.parsedOptions ?? []) {
        const value = option['(validate.rules)'];
        if (isPlainObject(value)) rules = { ...rules, ...value };
      }
      if (rules && !validationOff) plan.ruled.push({ field, rules });
    }
    this.plans.set(type, plan);
    return plan;
  }

  /** PGV patterns are RE2; the ones in Envoy's API are also valid JavaScript. null when one is not. */
  pattern(source: string): RegExp | null {
    let compiled = this.patterns.get(source);
    if (compiled === undefined) {
      try {
        compiled = new RegExp(source, 'u');
      } catch {
        compiled = null;
      }
      this.patterns.set(source, compiled);
    }
    return compiled;
  }
}

/** Every problem of `value` as JSON for the message `typeName`; empty when it parses and passes its rules. */
export function checkProtoJson(schema: ProtoJsonSchema, typeName: string, value: unknown): SchemaProblem[] {
  const type = schema.messageType(typeName);
  if (!type) throw new Error(`${typeName} is not a message type of the loaded schema`);
  const checker = new Checker(schema);
  checker.message(type, value, '');
  return checker.problems;
}

class Checker {
  readonly problems: SchemaProblem[] = [];

  constructor(private readonly schema: ProtoJsonSchema) {}

  private report(path: string, message: string): typeof INVALID {
    this.problems.push({ path: path || '(root)', message });
    return INVALID;
  }

  /** Checks a message value and returns what rules need of it: the parsed scalar of special types, else true. */
  message(type: Type, value: unknown, path: string): Parsed {
    const name = this.schema.nameOf(type);
    const wrapped = WRAPPERS[name];
    if (wrapped !== undefined) return this.scalar(wrapped, value, path);
    switch (name) {
      case 'google.protobuf.Any':
        return this.any(value, path);
      case 'google.protobuf.Duration':
        return this.duration(value, path);
      case 'google.protobuf.Timestamp':
        return typeof value === 'string' && TIMESTAMP.test(value)
          ? Date.parse(value)
          : this.report(path, `expected an RFC 3339 timestamp string, got ${describe(value)}`);
      case 'google.protobuf.FieldMask':
        return typeof value === 'string' ? value : this.report(path, `expected a field mask string, got ${describe(value)}`);
      case 'google.protobuf.Struct':
        return isPlainObject(value) ? true : this.report(path, `expected a JSON object (Struct), got ${describe(value)}`);
      case 'google.protobuf.ListValue':
        return Array.isArray(value) ? true : this.report(path, `expected a JSON array (ListValue), got ${describe(value)}`);
      case 'google.protobuf.Value':
        return true;
    }
    if (!isPlainObject(value)) return this.report(path, `expected an object (${name}), got ${describe(value)}`);
    this.fields(type, value, path, undefined);
    return true;
  }

  private fields(type: Type, value: Record<string, unknown>, path: string, skipKey: string | undefined): void {
    const plan = this.schema.planOf(type);
    const present = new Map<Field, Parsed>();
    const keyOf = new Map<Field, string>();
    for (const key of Object.keys(value)) {
      if (key === skipKey) continue;
      const raw = value[key];
      const field = plan.fieldsByKey.get(key);
      const at = fieldPath(path, key);
      if (!field) {
        this.report(at, `unknown field "${key}" (${plan.name} has no such field)`);
        continue;
      }
      const earlier = keyOf.get(field);
      if (earlier !== undefined) {
        this.report(at, `sets field ${field.name} a second time (already set as "${earlier}")`);
        continue;
      }
      keyOf.set(field, key);
      // null means "default" in proto3 JSON, except for google.protobuf.Value where it is the null value.
      if (raw === null && !(field.resolvedType && this.schema.nameOf(field.resolvedType) === 'google.protobuf.Value')) continue;
      if (plan.disallowed.has(field)) this.report(at, `field ${field.name} is deprecated and disallowed by default in Envoy`);
      present.set(field, this.fieldValue(field, raw, at));
    }
    for (const oneof of plan.oneofs) this.oneof(oneof, present, keyOf, path);
    for (const { field, rules } of plan.ruled) this.fieldRules(field, rules, present, keyOf, path);
    if (plan.typedStruct) this.typedStruct(value, path);
  }

  private oneof(oneof: OneOf, present: Map<Field, Parsed>, keyOf: Map<Field, string>, path: string): void {
    let set = 0;
    for (const field of oneof.fieldsArray) if (present.has(field)) set++;
    if (set > 1) {
      const names = oneof.fieldsArray.filter((f) => present.has(f)).map((f) => keyOf.get(f));
      this.report(path, `only one of ${oneof.fieldsArray.map((f) => f.name).join(', ')} may be set, got ${names.join(' and ')}`);
    } else if (set === 0 && oneof.options?.['(validate.required)'] === true) {
      this.report(path, `one of ${oneof.fieldsArray.map((f) => f.name).join(', ')} is required`);
    }
  }

  private fieldValue(field: Field, raw: unknown, path: string): Parsed {
    if (field.map) {
      if (!isPlainObject(raw)) return this.report(path, `expected an object (map), got ${describe(raw)}`);
      const keyType = (field as Field & { keyType: string }).keyType;
      const entries: [Parsed, Parsed][] = [];
      for (const [key, item] of Object.entries(raw)) {
        const at = keyPath(path, key);
        entries.push([this.mapKey(keyType, key, at), this.single(field, item, at)]);
      }
      return entries;
    }
    if (field.repeated) {
      if (!Array.isArray(raw)) return this.report(path, `expected a list, got ${describe(raw)}`);
      return raw.map((item, i) => this.single(field, item, `${path}[${i}]`));
    }
    return this.single(field, raw, path);
  }

  private mapKey(keyType: string, key: string, path: string): Parsed {
    if (keyType === 'string') return key;
    if (keyType === 'bool') return key === 'true' || key === 'false' ? key === 'true' : this.report(path, 'expected a bool map key');
    return this.scalar(keyType, key, path);
  }

  private single(field: Field, value: unknown, path: string): Parsed {
    const resolved = field.resolvedType;
    if (resolved === null) return this.scalar(field.type, value, path);
    if ('values' in resolved && !('fieldsArray' in resolved)) return this.enumValue(resolved as Enum, value, path);
    if (value === null && this.schema.nameOf(resolved) !== 'google.protobuf.Value') {
      return this.report(path, 'null is not allowed inside a list or map');
    }
    return this.message(resolved as Type, value, path);
  }

  private enumValue(type: Enum, value: unknown, path: string): Parsed {
    if (this.schema.nameOf(type) === 'google.protobuf.NullValue') {
      return value === null || value === 'NULL_VALUE' ? 0 : this.report(path, `expected null, got ${describe(value)}`);
    }
    if (typeof value === 'string') {
      if (!Object.hasOwn(type.values, value)) {
        const known = Object.keys(type.values).join(', ');
        return this.report(path, `unknown value ${JSON.stringify(value)} of enum ${this.schema.nameOf(type)} (known: ${known})`);
      }
      if (type.valuesOptions?.[value]?.['(envoy.annotations.disallowed_by_default_enum)'] === true) {
        this.report(path, `enum value ${value} is deprecated and disallowed by default in Envoy`);
      }
      return type.values[value];
    }
    if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) < 2 ** 31) return value;
    return this.report(path, `expected a name of enum ${this.schema.nameOf(type)}, got ${describe(value)}`);
  }

  private scalar(type: string, value: unknown, path: string): Parsed {
    switch (type) {
      case 'string':
        return typeof value === 'string' ? value : this.report(path, `expected a string, got ${describe(value)}`);
      case 'bool':
        return typeof value === 'boolean' ? value : this.report(path, `expected true or false, got ${describe(value)}`);
      case 'bytes':
        return typeof value === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(value)
          ? value
          : this.report(path, `expected base64 bytes, got ${describe(value)}`);
      case 'double':
      case 'float': {
        const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
        if (Number.isNaN(n) && value !== 'NaN') return this.report(path, `expected a number, got ${describe(value)}`);
        if (type === 'float' && Number.isFinite(n) && Math.abs(n) > FLOAT_MAX) return this.report(path, `${n} does not fit a float`);
        return n;
      }
    }
    const range = INT_RANGES[type];
    if (!range) return this.report(path, `unsupported scalar type ${type}`);
    const integral =
      (typeof value === 'number' && Number.isInteger(value)) || (typeof value === 'string' && /^-?[0-9]+$/.test(value));
    if (!integral) return this.report(path, `expected an integer (${type}), got ${describe(value)}`);
    const big = BigInt(value as number | string);
    if (big < range[0] || big > range[1]) return this.report(path, `${String(value)} is out of range for ${type}`);
    return Number(big);
  }

  private duration(value: unknown, path: string): Parsed {
    const match = typeof value === 'string' ? DURATION.exec(value) : null;
    if (!match) return this.report(path, `expected a duration such as "1s" or "0.250s", got ${describe(value)}`);
    const seconds = Number(match[2]);
    if (seconds > MAX_DURATION_SECONDS) return this.report(path, `${value as string} exceeds the largest Duration`);
    const total = seconds + Number(`0.${match[3] ?? '0'}`);
    return match[1] ? -total : total;
  }

  private any(value: unknown, path: string): Parsed {
    if (!isPlainObject(value)) return this.report(path, `expected an object with "@type", got ${describe(value)}`);
    const url = value['@type'];
    const at = keyPath(path, '@type');
    if (typeof url !== 'string' || !url.includes('/')) {
      return this.report(at, `expected a type URL such as "type.googleapis.com/<message>", got ${describe(url)}`);
    }
    const name = url.slice(url.lastIndexOf('/') + 1);
    const type = this.schema.messageType(name);
    if (!type) return this.report(at, `unresolvable type ${url}: Envoy's API has no message ${name}`);
    if (CUSTOM_JSON.has(name)) {
      for (const key of Object.keys(value)) {
        if (key === '@type' || key === 'value') continue;
        this.report(fieldPath(path, key), `unknown field "${key}" (an Any of ${name} holds only "value")`);
      }
      this.message(type, value.value, fieldPath(path, 'value'));
    } else {
      this.fields(type, value, path, '@type');
    }
    return url;
  }

  private typedStruct(value: Record<string, unknown>, path: string): void {
    const url = value.type_url ?? value.typeUrl;
    if (typeof url !== 'string' || url === '') return;
    const name = url.slice(url.lastIndexOf('/') + 1);
    const type = this.schema.messageType(name);
    if (!type) {
      this.report(fieldPath(path, 'type_url'), `unresolvable type ${url}: Envoy's API has no message ${name}`);
      return;
    }
    this.message(type, value.value ?? {}, fieldPath(path, 'value'));
  }

  // ---- protoc-gen-validate ----------------------------------------------------------------------------------

  private fieldRules(field: Field, rules: Rules, present: Map<Field, Parsed>, keyOf: Map<Field, string>, path: string): void {
    const isSet = present.has(field);
    const at = fieldPath(path, keyOf.get(field) ?? field.name);
    // Rules on a oneof member or a proto3 optional field apply only when it is set.
    if (!isSet && field.partOf !== null) return;
    const value = present.get(field);
    if (value === INVALID) return;
    if (field.map) {
      this.mapRules(field, rules.map, (value as [Parsed, Parsed][] | undefined) ?? [], at);
    } else if (field.repeated) {
      this.repeatedRules(field, rules.repeated, (value as Parsed[] | undefined) ?? [], at);
    } else {
      this.singleRules(field, rules, isSet, value, at);
    }
  }

  private repeatedRules(field: Field, rules: unknown, items: Parsed[], path: string): void {
    if (!isPlainObject(rules)) return;
    if (rules.ignore_empty === true && items.length === 0) return;
    const count = items.length;
    if (typeof rules.min_items === 'number' && count < rules.min_items) {
      this.report(path, `needs at least ${rules.min_items} item(s), has ${count}`);
    }
    if (typeof rules.max_items === 'number' && count > rules.max_items) {
      this.report(path, `allows at most ${rules.max_items} item(s), has ${count}`);
    }
    if (rules.unique === true) {
      const seen = new Set(items.map((item) => JSON.stringify(item)));
      if (seen.size !== count) this.report(path, 'items must be unique');
    }
    if (isPlainObject(rules.items)) {
      items.forEach((item, i) => {
        if (item !== INVALID) this.singleRules(field, rules.items as Rules, true, item, `${path}[${i}]`);
      });
    }
  }

  private mapRules(field: Field, rules: unknown, entries: [Parsed, Parsed][], path: string): void {
    if (!isPlainObject(rules)) return;
    if (rules.ignore_empty === true && entries.length === 0) return;
    if (typeof rules.min_pairs === 'number' && entries.length < rules.min_pairs) {
      this.report(path, `needs at least ${rules.min_pairs} entr${rules.min_pairs === 1 ? 'y' : 'ies'}, has ${entries.length}`);
    }
    if (typeof rules.max_pairs === 'number' && entries.length > rules.max_pairs) {
      this.report(path, `allows at most ${rules.max_pairs} entries, has ${entries.length}`);
    }
    const keyType = (field as Field & { keyType: string }).keyType;
    for (const [key, value] of entries) {
      const at = keyPath(path, String(key));
      if (isPlainObject(rules.keys) && key !== INVALID) this.scalarRules(keyType, rules.keys, key, at);
      if (isPlainObject(rules.values) && value !== INVALID) this.singleRules(field, rules.values, true, value, at);
    }
  }

  /** Rules of one value of the field's element type; an unset scalar is checked as its default, as PGV does. */
  private singleRules(field: Field, rules: Rules, isSet: boolean, value: Parsed, path: string): void {
    const resolved = field.resolvedType;
    if (resolved === null) {
      this.scalarRules(field.type, rules[field.type], isSet ? value : defaultOf(field.type), path);
      return;
    }
    if ('values' in resolved && !('fieldsArray' in resolved)) {
      this.enumRules(resolved as Enum, rules.enum, isSet ? (value as number) : 0, path);
      return;
    }
    const name = this.schema.nameOf(resolved);
    const required =
      (isPlainObject(rules.message) && rules.message.required === true) ||
      (isPlainObject(rules.duration) && rules.duration.required === true) ||
      (isPlainObject(rules.timestamp) && rules.timestamp.required === true) ||
      (isPlainObject(rules.any) && rules.any.required === true);
    if (!isSet) {
      if (required) this.report(path, 'is required');
      return;
    }
    const wrapped = WRAPPERS[name];
    if (wrapped !== undefined) this.scalarRules(wrapped, rules[wrapped], value, path);
    else if (name === 'google.protobuf.Duration') this.numberRules(rules.duration, value as number, path, boundSeconds, 's');
    else if (name === 'google.protobuf.Any') this.anyRules(rules.any, value as string, path);
  }

  private anyRules(rules: unknown, url: string, path: string): void {
    if (!isPlainObject(rules)) return;
    if (Array.isArray(rules.in) && !rules.in.includes(url)) this.report(path, `type ${url} is not one of ${rules.in.join(', ')}`);
    if (Array.isArray(rules.not_in) && rules.not_in.includes(url)) this.report(path, `type ${url} is not allowed here`);
  }

  private enumRules(type: Enum, rules: unknown, value: number, path: string): void {
    if (!isPlainObject(rules)) return;
    if (rules.defined_only === true && !Object.values(type.values).includes(value)) {
      this.report(path, `${value} is not a defined value of enum ${this.schema.nameOf(type)}`);
    }
    this.membershipRules(rules, value, path);
  }

  private scalarRules(type: string, rules: unknown, value: Parsed, path: string): void {
    if (!isPlainObject(rules)) return;
    if (type === 'string') this.stringRules(rules, value as string, path);
    else if (type === 'bytes') this.bytesRules(rules, value as string, path);
    else if (type === 'bool') {
      if (typeof rules.const === 'boolean' && value !== rules.const) this.report(path, `must be ${rules.const}`);
    } else this.numberRules(rules, value as number, path, Number, '');
  }

  private numberRules(rules: unknown, value: number, path: string, bound: (raw: unknown) => number, unit: string): void {
    if (!isPlainObject(rules)) return;
    if (rules.ignore_empty === true && value === 0) return;
    const show = (raw: unknown) => `${bound(raw)}${unit}`;
    if (rules.const !== undefined && value !== bound(rules.const)) this.report(path, `must be ${show(rules.const)}, got ${value}${unit}`);
    const limit = (exclusive: unknown, inclusive: unknown) =>
      exclusive !== undefined
        ? { at: bound(exclusive), strict: true }
        : inclusive !== undefined
          ? { at: bound(inclusive), strict: false }
          : undefined;
    const lower = limit(rules.gt, rules.gte);
    const upper = limit(rules.lt, rules.lte);
    const aboveLower = !lower || (lower.strict ? value > lower.at : value >= lower.at);
    const belowUpper = !upper || (upper.strict ? value < upper.at : value <= upper.at);
    const describeLower = lower && `${lower.strict ? '>' : '>='} ${lower.at}${unit}`;
    const describeUpper = upper && `${upper.strict ? '<' : '<='} ${upper.at}${unit}`;
    // PGV: when the upper bound lies below the lower one, the rule means "outside the range".
    if (lower && upper && upper.at < lower.at) {
      if (!aboveLower && !belowUpper) this.report(path, `${value}${unit} must be ${describeLower} or ${describeUpper}`);
    } else if (!aboveLower || !belowUpper) {
      const wanted = [describeLower, describeUpper].filter(Boolean).join(' and ');
      this.report(path, `${value}${unit} is out of range: must be ${wanted}`);
    }
    if (Array.isArray(rules.in) && !rules.in.map(bound).includes(value)) {
      this.report(path, `${value}${unit} is not one of ${rules.in.map(show).join(', ')}`);
    }
    if (Array.isArray(rules.not_in) && rules.not_in.map(bound).includes(value)) this.report(path, `${value}${unit} is not allowed`);
  }

  private membershipRules(rules: Rules, value: unknown, path: string): void {
    if (rules.const !== undefined && value !== rules.const) this.report(path, `must be ${describe(rules.const)}, got ${describe(value)}`);
    if (Array.isArray(rules.in) && !rules.in.includes(value)) {
      this.report(path, `${describe(value)} is not one of ${rules.in.map(describe).join(', ')}`);
    }
    if (Array.isArray(rules.not_in) && rules.not_in.includes(value)) this.report(path, `${describe(value)} is not allowed`);
  }

  private stringRules(rules: Rules, value: string, path: string): void {
    if (rules.ignore_empty === true && value === '') return;
    // Counting code points and UTF-8 bytes costs more than the rest of the check: only when a rule needs them.
    const chars = rules.len !== undefined || rules.min_len !== undefined || rules.max_len !== undefined ? [...value].length : 0;
    const bytes =
      rules.min_bytes !== undefined || rules.max_bytes !== undefined || rules.len_bytes !== undefined ? Buffer.byteLength(value) : 0;
    const shown = JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
    const limits: [unknown, (n: number) => boolean, string][] = [
      [rules.len, (n) => chars === n, 'exactly'],
      [rules.min_len, (n) => chars >= n, 'at least'],
      [rules.max_len, (n) => chars <= n, 'at most'],
    ];
    for (const [limit, ok, wording] of limits) {
      if (typeof limit === 'number' && !ok(limit)) {
        const characters = `${limit} character${limit === 1 ? '' : 's'}`;
        this.report(path, value === '' ? `must not be empty (${wording} ${characters})` : `${shown} must be ${wording} ${characters} long`);
      }
    }
    const byteLimits: [unknown, (n: number) => boolean, string][] = [
      [rules.len_bytes, (n) => bytes === n, 'exactly'],
      [rules.min_bytes, (n) => bytes >= n, 'at least'],
      [rules.max_bytes, (n) => bytes <= n, 'at most'],
    ];
    for (const [limit, ok, wording] of byteLimits) {
      if (typeof limit === 'number' && !ok(limit)) this.report(path, `${shown} must be ${wording} ${limit} bytes`);
    }
    if (typeof rules.pattern === 'string') {
      const pattern = this.schema.pattern(rules.pattern);
      if (pattern && !pattern.test(value)) this.report(path, `${shown} does not match ${rules.pattern}`);
    }
    const parts: [unknown, (part: string) => boolean, string][] = [
      [rules.prefix, (part) => value.startsWith(part), 'must start with'],
      [rules.suffix, (part) => value.endsWith(part), 'must end with'],
      [rules.contains, (part) => value.includes(part), 'must contain'],
      [rules.not_contains, (part) => !value.includes(part), 'must not contain'],
    ];
    for (const [part, ok, wording] of parts) {
      if (typeof part === 'string' && !ok(part)) this.report(path, `${shown} ${wording} ${JSON.stringify(part)}`);
    }
    this.membershipRules(rules, value, path);
    const problem = wellKnownStringProblem(rules, value);
    if (problem) this.report(path, `${shown} ${problem}`);
  }

  private bytesRules(rules: Rules, base64: string, path: string): void {
    const length = Buffer.from(base64, 'base64').length;
    if (rules.ignore_empty === true && length === 0) return;
    if (typeof rules.len === 'number' && length !== rules.len) this.report(path, `must be exactly ${rules.len} bytes`);
    if (typeof rules.min_len === 'number' && length < rules.min_len) this.report(path, `must be at least ${rules.min_len} bytes`);
    if (typeof rules.max_len === 'number' && length > rules.max_len) this.report(path, `must be at most ${rules.max_len} bytes`);
  }
}

function defaultOf(scalarType: string): Parsed {
  if (scalarType === 'string' || scalarType === 'bytes') return '';
  if (scalarType === 'bool') return false;
  return 0;
}

/** A PGV Duration bound ({seconds, nanos}) in seconds. */
function boundSeconds(raw: unknown): number {
  if (!isPlainObject(raw)) return Number.NaN;
  return Number(raw.seconds ?? 0) + Number(raw.nanos ?? 0) / 1e9;
}

// PGV's well-known regexes for HTTP headers (validate.proto, KnownRegex).
const HEADER_NAME_STRICT = /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/;
const HEADER_VALUE_STRICT = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;

function isHostname(value: string): boolean {
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(label));
}

function wellKnownStringProblem(rules: Rules, value: string): string | undefined {
  if (rules.hostname === true && !isHostname(value)) return 'is not a valid hostname';
  if (rules.ip === true && isIP(value) === 0) return 'is not an IP address';
  if (rules.ipv4 === true && isIP(value) !== 4) return 'is not an IPv4 address';
  if (rules.ipv6 === true && isIP(value) !== 6) return 'is not an IPv6 address';
  if (rules.address === true && isIP(value) === 0 && !isHostname(value)) return 'is not a hostname or IP address';
  if (rules.email === true && !/^[^@\s]+@[^@\s]+$/.test(value)) return 'is not an email address';
  if (rules.uuid === true && !/^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$/.test(value)) return 'is not a UUID';
  if (rules.uri === true && !URL.canParse(value)) return 'is not an absolute URI';
  const strict = rules.strict !== false;
  if (rules.well_known_regex === 'HTTP_HEADER_NAME' && !(strict ? HEADER_NAME_STRICT : HEADER_LOOSE).test(value)) {
    return 'is not a valid HTTP header name';
  }
  if (rules.well_known_regex === 'HTTP_HEADER_VALUE' && !(strict ? HEADER_VALUE_STRICT : HEADER_LOOSE).test(value)) {
    return 'is not a valid HTTP header value';
  }
  return undefined;
}
