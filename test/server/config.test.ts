import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError } from '../../src/core/errors.js';
import type { LoggerOptions } from '../../src/core/logger.js';
import { type Config, defaultConfig, loadConfig, splitCallingAet } from '../../src/server/config.js';
import { parsePeer } from '../../src/services/query-retrieve/config.js';

const dir = mkdtempSync(join(tmpdir(), 'pacs-config-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes `text` (or `value` as JSON) to a fresh file and returns its path. */
function configFile(content: unknown): string {
  const file = join(dir, `config-${++fileCount}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return file;
}

function loadOk(...args: Parameters<typeof loadConfig>): Config {
  const result = loadConfig(...args);
  if (!result.ok) assert.fail(result.error.message);
  return result.value;
}

function issuesOf(...args: Parameters<typeof loadConfig>): readonly string[] {
  const result = loadConfig(...args);
  assert.ok(!result.ok, 'expected the config to be rejected');
  assert.ok(result.error instanceof ConfigError);
  assert.equal(result.error.code, 'ERR_CONFIG');
  return result.error.issues;
}

describe('defaults', () => {
  test('defaultConfig() is the documented embedded set-up', () => {
    assert.deepEqual(defaultConfig(), {
      server: {
        aet: 'PACS',
        host: '0.0.0.0',
        port: 11112,
        maxAssociations: 100,
        maxPduLength: 262144,
        acseTimeoutSeconds: 30,
        dimseTimeoutSeconds: 60,
        idleTimeoutSeconds: 300,
        shutdownTimeoutSeconds: 30,
        promiscuous: false,
        allowedCallingAets: [],
        tls: { requireClientCert: false },
        services: ['verification', 'storage', 'query-retrieve', 'worklist', 'mpps'],
        workers: 1,
        http: { host: '127.0.0.1', cors: { origins: [], credentials: false, maxAgeSeconds: 600 } },
        dicom: { unknownAe: 'default', aes: [] },
      },
      storage: {
        duplicatePolicy: 'keep',
        durability: 'fsync',
        minFreeMegabytes: 64,
        extraSopClasses: [],
        compression: 'none',
        compressionByModality: {},
        compressionMinBytes: 0,
        encryption: { previousKeyFiles: [] },
      },
      data: { dir: './data' },
      db: {},
      peers: [],
      transcode: { lossy: false },
      security: {},
      identity: { sessionIdleMinutes: 30, sessionMaxHours: 12 },
      audit: { enabled: true, repositories: [] },
      log: { level: 'info', targets: [{ type: 'stdout', format: 'auto' }] },
    });
  });

  test('loadConfig() with no file and no overrides gives the defaults, as a fresh object', () => {
    const a = loadOk();
    assert.deepEqual(a, defaultConfig());
    a.peers.push({ aet: 'X', host: 'h', port: 1, tls: false });
    assert.deepEqual(defaultConfig().peers, []);
  });

  test('the log section is the logger options', () => {
    const options: LoggerOptions = defaultConfig().log;
    assert.equal(options.level, 'info');
  });
});

describe('precedence: defaults < file < overrides', () => {
  const file = configFile({
    server: { aet: 'FILE_AE', port: 104, tls: { cert: 'server.crt', key: 'server.key' } },
    data: { dir: '/var/lib/pacs' },
    peers: [{ aet: 'FROM_FILE', host: 'ws1', port: 104 }],
    log: { level: 'debug' },
  });

  test('the file overrides defaults key by key', () => {
    const config = loadOk({ file });
    assert.equal(config.server.aet, 'FILE_AE');
    assert.equal(config.server.port, 104);
    assert.equal(config.server.host, '0.0.0.0');
    assert.deepEqual(config.server.tls, { cert: 'server.crt', key: 'server.key', requireClientCert: false });
    assert.equal(config.data.dir, '/var/lib/pacs');
    assert.deepEqual(config.log, { level: 'debug', targets: [{ type: 'stdout', format: 'auto' }] });
  });

  test('overrides beat the file; undefined overrides are ignored; lists are replaced whole', () => {
    const config = loadOk({
      file,
      overrides: {
        server: { port: 4242, aet: undefined, tls: { port: 2762 } },
        peers: [{ aet: 'FROM_FLAG', host: '10.0.0.9', port: 11112, tls: true }],
      },
    });
    assert.equal(config.server.port, 4242);
    assert.equal(config.server.aet, 'FILE_AE');
    assert.deepEqual(config.server.tls, {
      port: 2762,
      cert: 'server.crt',
      key: 'server.key',
      requireClientCert: false,
    });
    assert.deepEqual(config.peers, [{ aet: 'FROM_FLAG', host: '10.0.0.9', port: 11112, tls: true }]);
    assert.equal(config.data.dir, '/var/lib/pacs');
  });

  test('a bad override is reported like a bad file value', () => {
    assert.deepEqual(issuesOf({ file, overrides: { server: { port: 0 } } }), [
      'server.port: expected an integer from 1 to 65535, got 0',
    ]);
  });
});

describe('valid values', () => {
  test('accepts the edges of each range and every documented form', () => {
    const config = loadOk({
      file: configFile({
        server: {
          aet: ' STORE_SCP_16CHR',
          host: '::',
          port: 65535,
          maxPduLength: 0,
          idleTimeoutSeconds: 0,
          acseTimeoutSeconds: 0.5,
          allowedCallingAets: ['MODALITY', 'CT01@10.1.2.3', 'WS@ws-7.example.org'],
        },
        db: { url: 'postgres://pacs:secret@db.example.org:5432/pacs' },
        peers: [{ aet: 'STORESCU', host: 'localhost', port: 104 }],
        log: {
          level: 'trace',
          targets: [
            { type: 'stderr', format: 'pretty' },
            { type: 'file', path: 'logs/pacs.log', rotate: { size: '10m', frequency: 'daily', limit: 7 } },
          ],
        },
      }),
    });
    assert.equal(config.server.aet, 'STORE_SCP_16CHR', 'AE padding spaces are not significant (PS3.5 6.2)');
    assert.equal(config.server.maxPduLength, 0);
    assert.deepEqual(config.peers, [{ aet: 'STORESCU', host: 'localhost', port: 104, tls: false }]);
    assert.deepEqual(config.log.targets[0], { type: 'stderr', format: 'pretty' });
    for (const url of [
      'sqlite:./data/index.db',
      'sqlite:/var/lib/pacs/index.sqlite',
      'postgresql://db/pacs',
    ]) {
      assert.equal(loadOk({ overrides: { db: { url } } }).db.url, url);
    }
  });

  test('splitCallingAet separates the host', () => {
    assert.deepEqual(splitCallingAet('CT01@10.1.2.3'), { aet: 'CT01', host: '10.1.2.3' });
    assert.deepEqual(splitCallingAet('CT01'), { aet: 'CT01', host: undefined });
  });
});

describe('each bad value gives exactly one line', () => {
  const cases: [settings: unknown, line: string][] = [
    [{ server: { port: 'abc' } }, 'server.port: expected an integer from 1 to 65535, got "abc"'],
    [
      { server: { services: ['storage', 'qr'] } },
      'server.services[1]: expected one of "verification", "storage", "query-retrieve", "worklist" or "mpps", got "qr"',
    ],
    [{ server: { services: [] } }, 'server.services: expected at least one service name, got an empty list'],
    [{ server: { workers: 0 } }, 'server.workers: expected an integer from 1 to 64, got 0'],
    [
      { storage: { compression: 'jpeg' } },
      'storage.compression: expected one of "none", "jpeg-ls-lossless", "j2k-lossless" or "htj2k-lossless", got "jpeg"',
    ],
    [
      { storage: { compressionByModality: { CT: 'rle' } } },
      'storage.compressionByModality.CT: expected one of "none", "jpeg-ls-lossless", "j2k-lossless" or "htj2k-lossless", got "rle"',
    ],
    [
      { storage: { compressionByModality: { 'c t!': 'none' } } },
      'storage.compressionByModality["c t!"]: "c t!" is not a Modality code (capitals, digits, underscore; up to 16)',
    ],
    [
      { storage: { compressionByModality: ['CT'] } },
      'storage.compressionByModality: expected an object of Modality: compression target, got a list',
    ],
    [
      { storage: { compressionMinBytes: 1.5 } },
      'storage.compressionMinBytes: expected an integer from 0 to 9007199254740991, got 1.5',
    ],
    [
      { identity: { sessionIdleMinutes: 0 } },
      'identity.sessionIdleMinutes: expected an integer from 1 to 1440, got 0',
    ],
    [
      { server: { port: 104, http: { port: 104 } } },
      'server.http.port: must differ from the DICOM and TLS ports',
    ],
    [
      { server: { http: { cors: { origins: ['*'], credentials: true } } } },
      'server.http.cors.origins: "*" cannot be used with credentials: name the origins',
    ],
    [
      { server: { http: { cors: { origins: ['viewer.example.org'] } } } },
      'server.http.cors.origins[0]: expected an origin such as "https://viewer.example.org" (scheme, host, optional port), or "*", got "viewer.example.org"',
    ],
    [{ server: { http: { cert: 'a.pem' } } }, 'server.http.key: required when server.http.cert is set'],
    [{ server: { port: 70000.5 } }, 'server.port: expected an integer from 1 to 65535, got 70000.5'],
    [{ server: { port: null } }, 'server.port: expected an integer from 1 to 65535, got null'],
    [
      { server: { aet: 'BAD\\AE' } },
      'server.aet: expected an AE title (1 to 16 characters, no backslash or control characters, not all spaces), got "BAD\\\\AE"',
    ],
    [
      { server: { aet: 'SEVENTEEN_CHARS_X' } },
      'server.aet: expected an AE title (1 to 16 characters, no backslash or control characters, not all spaces), got "SEVENTEEN_CHARS_X"',
    ],
    [
      { server: { aet: '    ' } },
      'server.aet: expected an AE title (1 to 16 characters, no backslash or control characters, not all spaces), got "    "',
    ],
    [
      { server: { aet: 'TAB\tAE' } },
      'server.aet: expected an AE title (1 to 16 characters, no backslash or control characters, not all spaces), got "TAB\\tAE"',
    ],
    [{ server: { host: 'not a host' } }, 'server.host: expected a host name or IP address, got "not a host"'],
    [
      { server: { maxAssociations: 0 } },
      'server.maxAssociations: expected an integer from 1 to 10000, got 0',
    ],
    [
      { server: { maxPduLength: 1024 } },
      'server.maxPduLength: expected an integer from 4096 to 16777216, or 0 for unlimited, got 1024',
    ],
    [
      { server: { dimseTimeoutSeconds: -1 } },
      'server.dimseTimeoutSeconds: expected a number of seconds from 0 to 86400 (0 means no limit), got -1',
    ],
    [{ server: { promiscuous: 'yes' } }, 'server.promiscuous: expected true or false, got "yes"'],
    [
      { server: { allowedCallingAets: ['OK', 'CT@bad host'] } },
      'server.allowedCallingAets[1]: expected an AE title, or AET@host to accept it only from that host, got "CT@bad host"',
    ],
    [{ server: { allowedCallingAets: 'CT01' } }, 'server.allowedCallingAets: expected a list, got "CT01"'],
    [
      { server: { tls: { port: 2762, cert: '', key: 'k' } } },
      'server.tls.cert: expected a file path, got ""',
    ],
    [{ server: 'PACS' }, 'server: expected an object of settings, got "PACS"'],
    [{ data: { dir: '' } }, 'data.dir: expected a folder path, got ""'],
    [
      { db: { url: 'mysql://db/pacs' } },
      'db.url: expected "sqlite:PATH" or a "postgres://" URL, got "mysql://db/pacs"',
    ],
    [{ db: { url: 'sqlite:' } }, 'db.url: expected "sqlite:PATH" or a "postgres://" URL, got "sqlite:"'],
    [
      { peers: [{ aet: 'WS', host: 'ws', port: 104, tls: 1 }] },
      'peers[0].tls: expected true or false, got 1',
    ],
    [{ peers: [{ aet: 'WS', port: 104 }] }, 'peers[0].host: missing, expected a host name or IP address'],
    [{ peers: {} }, 'peers: expected a list, got an object'],
    [
      { log: { level: 'verbose' } },
      'log.level: expected one of "trace", "debug", "info", "warn", "error" or "fatal", got "verbose"',
    ],
    [
      { log: { targets: [{ type: 'syslog' }] } },
      'log.targets[0].type: expected one of "stdout", "stderr" or "file", got "syslog"',
    ],
    [
      { log: { targets: ['stdout'] } },
      'log.targets[0]: expected a log target object with "type": "stdout", "stderr" or "file", got "stdout"',
    ],
    [
      { log: { targets: [{ type: 'stdout', format: 'xml' }] } },
      'log.targets[0].format: expected one of "json", "pretty" or "auto", got "xml"',
    ],
    [
      { log: { targets: [{ type: 'file', path: 'x.log', rotate: { size: '10' } }] } },
      'log.targets[0].rotate.size: expected a size such as "10m" (a number with unit k, m or g), got "10"',
    ],
    [
      { log: { targets: [{ type: 'file', path: 'x.log', rotate: { frequency: 'weekly' } }] } },
      'log.targets[0].rotate.frequency: expected one of "daily" or "hourly", got "weekly"',
    ],
    [
      { log: { targets: [{ type: 'file', path: 'x.log', rotate: {} }] } },
      'log.targets[0].rotate: set size, frequency or both (or leave rotate out)',
    ],
  ];
  for (const [settings, line] of cases) {
    test(line, () => {
      assert.deepEqual(issuesOf({ file: configFile(settings) }), [line]);
    });
  }

  test('several bad fields give one line each, and the error message lists them', () => {
    const result = loadConfig({ file: configFile({ server: { port: -1, aet: '' }, data: { dir: 3 } }) });
    assert.ok(!result.ok);
    assert.deepEqual(result.error.issues, [
      'server.aet: expected an AE title (1 to 16 characters, no backslash or control characters, not all spaces), got ""',
      'server.port: expected an integer from 1 to 65535, got -1',
      'data.dir: expected a folder path, got 3',
    ]);
    assert.equal(result.error.message, `invalid config:\n  ${result.error.issues.join('\n  ')}`);
  });
});

describe('rules across fields', () => {
  test('TLS cert and key come together', () => {
    assert.deepEqual(issuesOf({ overrides: { server: { tls: { cert: 'a.crt' } } } }), [
      'server.tls.key: required when server.tls.cert is set',
    ]);
    assert.deepEqual(issuesOf({ overrides: { server: { tls: { key: 'a.key' } } } }), [
      'server.tls.cert: required when server.tls.key is set',
    ]);
  });

  test('a TLS port needs cert and key, and a port of its own', () => {
    assert.deepEqual(issuesOf({ overrides: { server: { tls: { port: 2762 } } } }), [
      'server.tls.cert: required when server.tls.port is set',
      'server.tls.key: required when server.tls.port is set',
    ]);
    assert.deepEqual(
      issuesOf({ overrides: { server: { port: 2762, tls: { port: 2762, cert: 'c', key: 'k' } } } }),
      ['server.tls.port: must differ from server.port (2762)'],
    );
  });

  test('peer AE titles are unique', () => {
    const peers = [
      { aet: 'WS', host: 'ws1', port: 104 },
      { aet: 'CT', host: 'ct', port: 104 },
      { aet: 'WS', host: 'ws2', port: 104 },
    ];
    assert.deepEqual(issuesOf({ overrides: { peers: peers.map((p) => ({ ...p, tls: false })) } }), [
      'peers[2].aet: duplicate AE title "WS", already used by peers[0]',
    ]);
  });
});

describe('unknown keys', () => {
  test('each unknown key is one line, at any depth', () => {
    const file = configFile({
      server: { prot: 104, tls: { crt: 'x' } },
      peer: [],
      peers: [{ aet: 'WS', host: 'ws', port: 104, tsl: true }],
      log: { targets: [{ type: 'stdout', colour: true }] },
      'odd key': 1,
    });
    assert.deepEqual(issuesOf({ file }), [
      'server.tls.crt: unknown setting',
      'server.prot: unknown setting',
      'peers[0].tsl: unknown setting',
      'log.targets[0].colour: unknown setting',
      'peer: unknown setting',
      '["odd key"]: unknown setting',
    ]);
  });

  test('"__proto__" is data, reported as unknown, and pollutes nothing', () => {
    const file = configFile('{"server": {"__proto__": {"polluted": true}}}');
    assert.deepEqual(issuesOf({ file }), ['server.__proto__: unknown setting']);
    assert.equal(Reflect.get({}, 'polluted'), undefined);
  });
});

describe('the config file itself', () => {
  const cases: [text: string, problem: string][] = [
    [
      '{\n  "server": {\n    "port": 104,\n  }\n}',
      'invalid JSON at line 4, column 3: unexpected "}", expected a property name in double quotes',
    ],
    [
      '{\n  "server": {\n    "port": 104\n  }\n  "data": {}\n}',
      'invalid JSON at line 5, column 3: unexpected "\\"", expected "," or "}"',
    ],
    ['{"server": {"aet": PACS}}', 'invalid JSON at line 1, column 20: unexpected "P", expected a value'],
    [
      '{"server": {"aet": "PACS"}',
      'invalid JSON at line 1, column 27: unexpected end of file, expected "," or "}"',
    ],
    [
      '{"a": "x\ny"}',
      'invalid JSON at line 1, column 9: control character in a string (write it as an escape such as \\n)',
    ],
    ['{} {}', 'invalid JSON at line 1, column 4: unexpected "{", expected end of file after the JSON value'],
    ['', 'invalid JSON at line 1, column 1: unexpected end of file, expected a value'],
    ['[]', 'expected a JSON object of settings, got an empty list'],
    ['null', 'expected a JSON object of settings, got null'],
  ];
  for (const [text, problem] of cases) {
    test(problem, () => {
      const file = configFile(text);
      assert.deepEqual(issuesOf({ file }), [`${file}: ${problem}`]);
    });
  }

  test('a missing file is one line naming it', () => {
    const file = join(dir, 'missing.json');
    assert.deepEqual(issuesOf({ file }), [`${file}: cannot read the config file: no such file`]);
  });

  test('a UTF-8 byte order mark is tolerated', () => {
    assert.equal(loadOk({ file: configFile('\uFEFF{"server": {"port": 104}}') }).server.port, 104);
  });
});

describe('parsePeer', () => {
  test('parses AET=HOST:PORT, including bracketed IPv6', () => {
    assert.deepEqual(parsePeer('STORESCU=10.0.0.5:104'), {
      ok: true,
      value: { aet: 'STORESCU', host: '10.0.0.5', port: 104, tls: false },
    });
    assert.deepEqual(parsePeer('WS=[::1]:11112'), {
      ok: true,
      value: { aet: 'WS', host: '::1', port: 11112, tls: false },
    });
    assert.deepEqual(parsePeer('A=B=ws.example.org:4242'), {
      ok: true,
      value: { aet: 'A=B', host: 'ws.example.org', port: 4242, tls: false },
    });
  });

  test('says what is wrong in one line', () => {
    const cases: [string, string][] = [
      ['STORESCU', '"STORESCU": expected AET=HOST:PORT'],
      ['STORESCU=host', '"STORESCU=host": expected AET=HOST:PORT'],
      ['=host:104', '"=host:104": expected AET=HOST:PORT'],
      ['WS=:104', '"WS=:104": expected AET=HOST:PORT'],
      ['WS=[::1]', '"WS=[::1]": expected AET=HOST:PORT'],
      ['WS=host:abc', '"WS=host:abc": port: expected an integer from 1 to 65535, got "abc"'],
      ['WS=host:99999', '"WS=host:99999": port: expected an integer from 1 to 65535, got 99999'],
      ['WS=bad host:104', '"WS=bad host:104": host: expected a host name or IP address, got "bad host"'],
      [
        'A_VERY_LONG_AE_TITLE=h:1',
        '"A_VERY_LONG_AE_TITLE=h:1": aet: expected an AE title (1 to 16 characters, no backslash or control characters, not all spaces), got "A_VERY_LONG_AE_TITLE"',
      ],
    ];
    for (const [text, message] of cases)
      assert.deepEqual(parsePeer(text), { ok: false, error: message }, text);
  });
});
