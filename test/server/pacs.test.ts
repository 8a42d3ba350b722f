// PACS nodes through the services (no PACS needed): a node's secret goes to the secret store and
// never into an answer or the database; editing keeps it unless a new one is given; renaming moves it;
// switching to no authentication drops it; a missing secret and an unreachable PACS are one-line
// errors naming the field; deleting a node deletes its secret.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServices, type Services } from '../../src-main/services/index.js';
import { fileSecretStore, type SecretStore } from '../../src-main/services/secrets.js';

let home: string;
let services: Services;
let secrets: SecretStore;

before(() => {
  home = mkdtempSync(join(tmpdir(), 'kdmri-pacs-'));
  secrets = fileSecretStore(join(home, 'secrets.json'), { env: {} });
  services = createServices({ dbPath: join(home, 'kdmri.db'), dataDir: home, mode: 'web', secrets });
});
after(async () => {
  await services?.close();
  rmSync(home, { recursive: true, force: true });
});

test('nodes: secrets stored apart, kept on edit, moved on rename, dropped with auth none or the node', async () => {
  const add = await services.call('savePacsNode', {
    name: 'Lab',
    url: 'http://127.0.0.1:1/dicom-web/',
    auth: 'basic',
    user: 'tech',
    secret: 'pw-123456',
  });
  assert.ok(add.ok, JSON.stringify(add));
  const node = add.value as { id: number; url: string; hasSecret: boolean; secretIn: string };
  assert.equal(node.url, 'http://127.0.0.1:1/dicom-web', 'trailing slash dropped');
  assert.equal(node.hasSecret, true);
  assert.equal(node.secretIn, 'file');
  assert.ok(!JSON.stringify(add).includes('pw-123456'));
  assert.equal(secrets.get('Lab'), 'pw-123456');
  const dump = services.db.sqlite.prepare('SELECT * FROM pacs_nodes').all();
  assert.ok(!JSON.stringify(dump).includes('pw-123456'));

  // edit without a secret keeps it; rename moves it
  const renamed = await services.call('savePacsNode', {
    id: node.id,
    name: 'Lab 2',
    url: 'http://127.0.0.1:1/dicom-web',
    auth: 'basic',
    user: 'tech',
  });
  assert.ok(renamed.ok, JSON.stringify(renamed));
  assert.equal(secrets.get('Lab'), null);
  assert.equal(secrets.get('Lab 2'), 'pw-123456');

  // basic needs a user; a new bearer node needs its token; bad URLs are refused naming the field
  const noUser = await services.call('savePacsNode', {
    name: 'X',
    url: 'http://x',
    auth: 'basic',
    secret: 'a',
  });
  assert.deepEqual(!noUser.ok && [noUser.error.code, noUser.error.where], ['bad-request', 'user']);
  const noToken = await services.call('savePacsNode', { name: 'Y', url: 'http://y', auth: 'bearer' });
  assert.deepEqual(!noToken.ok && [noToken.error.code, noToken.error.where], ['bad-request', 'secret']);
  const badUrl = await services.call('savePacsNode', { name: 'Z', url: 'ftp://z', auth: 'none' });
  assert.deepEqual(!badUrl.ok && [badUrl.error.code, badUrl.error.where], ['bad-request', 'url']);
  const clash = await services.call('savePacsNode', { name: 'Lab 2', url: 'http://z', auth: 'none' });
  assert.deepEqual(!clash.ok && clash.error.code, 'conflict');

  // an unreachable PACS: 503 with the reason
  const q = await services.call('pacsQuery', { nodeId: node.id, patientName: 'doe' });
  assert.ok(!q.ok);
  assert.equal(q.error.code, 'unavailable');
  assert.match(q.error.message, /^PACS "Lab 2": cannot reach http:\/\/127\.0\.0\.1:1\/dicom-web\/studies/);

  // no authentication drops the secret
  const none = await services.call('savePacsNode', {
    id: node.id,
    name: 'Lab 2',
    url: 'http://127.0.0.1:1/dicom-web',
    auth: 'none',
  });
  assert.ok(none.ok);
  assert.equal(secrets.get('Lab 2'), null);
  // a secret deleted behind the app's back: said before any request
  await services.call('savePacsNode', {
    id: node.id,
    name: 'Lab 2',
    url: 'http://127.0.0.1:1/dicom-web',
    auth: 'bearer',
    secret: 'tok',
  });
  secrets.remove('Lab 2');
  const missing = await services.call('pacsRetrieve', { nodeId: node.id, studyUid: '1.2.3' });
  assert.ok(!missing.ok);
  assert.equal(missing.error.where, 'secret');
  assert.match(missing.error.message, /has no token stored/);

  await services.call('savePacsNode', {
    id: node.id,
    name: 'Lab 2',
    url: 'http://127.0.0.1:1/dicom-web',
    auth: 'bearer',
    secret: 'tok',
  });
  assert.deepEqual(await services.handlers.deletePacsNode({ id: node.id }), { deleted: true });
  assert.equal(secrets.get('Lab 2'), null);
  assert.deepEqual(JSON.parse(readFileSync(join(home, 'secrets.json'), 'utf8')), {});
  assert.deepEqual(await services.handlers.listPacsNodes({}), []);
});
