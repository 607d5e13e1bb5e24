// Checks the zip `rc-apps package` made (package.sh runs before these tests): the manifest is the
// source app.json, the compiled main class and its modules are there and work, and nothing else
// (no TypeScript, tests, node_modules, source maps or build leftovers) went in.
import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import { join, posix } from 'path';
import { test } from 'node:test';
import { inflateRawSync } from 'zlib';

const root = join(__dirname, '..', '..');
const manifest = JSON.parse(readFileSync(join(root, 'app.json'), 'utf8'));
const zipName = `${manifest.nameSlug}_${manifest.version}.zip`;

// A zip reader just big enough for what yazl writes: the central directory, stored or deflated.
function readZip(path: string): Map<string, Buffer> {
    let buf: Buffer;
    try {
        buf = readFileSync(path);
    } catch {
        throw new Error(`${path} is missing: run package.sh (scripts/check-rc-app does) before these tests`);
    }
    let eocd = buf.length - 22;
    while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) {
        eocd -= 1;
    }
    assert.ok(eocd >= 0, 'no end of central directory record');
    const count = buf.readUInt16LE(eocd + 10);
    let at = buf.readUInt32LE(eocd + 16);
    const files = new Map<string, Buffer>();
    for (let i = 0; i < count; i += 1) {
        assert.equal(buf.readUInt32LE(at), 0x02014b50, 'bad central directory entry');
        const method = buf.readUInt16LE(at + 10);
        const size = buf.readUInt32LE(at + 20);
        const nameLength = buf.readUInt16LE(at + 28);
        const skip = nameLength + buf.readUInt16LE(at + 30) + buf.readUInt16LE(at + 32);
        const local = buf.readUInt32LE(at + 42);
        const name = buf.toString('utf8', at + 46, at + 46 + nameLength);
        const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
        const raw = buf.subarray(start, start + size);
        assert.ok(method === 0 || method === 8, `${name}: compression method ${method}`);
        files.set(name, method === 8 ? inflateRawSync(raw) : Buffer.from(raw));
        at += 46 + skip;
    }
    return files;
}

const zip = readZip(join(root, 'dist', zipName));

// Runs a module from the zip: relative requires come from the zip, the rest from node_modules
// (as the Apps-Engine provides them on the server).
function loadFromZip(name: string, cache = new Map<string, any>()): any {
    const cached = cache.get(name);
    if (cached) {
        return cached.exports;
    }
    const source = zip.get(name);
    assert.ok(source, `${name} is not in the zip`);
    const mod = { exports: {} as any };
    cache.set(name, mod);
    const requireFromZip = (spec: string): any => spec.startsWith('.')
        ? loadFromZip(posix.normalize(posix.join(posix.dirname(name), spec)).replace(/(\.js)?$/, '.js'), cache)
        : require(require.resolve(spec, { paths: [root] }));
    new Function('exports', 'require', 'module', source.toString('utf8'))(mod.exports, requireFromZip, mod);
    return mod.exports;
}

test('the zip is named after app.json and carries the source manifest unchanged', () => {
    const packaged = JSON.parse(zip.get('app.json')!.toString('utf8'));
    assert.deepEqual(packaged, manifest);
    assert.equal(packaged.id, '5f0c1c2e-7a43-4c8e-9b8e-2f6d1c0a7e31');
    assert.equal(packaged.version, JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
    assert.equal(packaged.classFile, 'RcmodApp.ts');
    assert.deepEqual(packaged.permissions.map((p: { name: string }) => p.name).sort(),
        ['message.write', 'networking', 'slashcommand']);
    // The CLI would rewrite requiredApiVersion if it disagreed with the engine compiled against.
    const engine = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).devDependencies['@rocket.chat/apps-engine'];
    assert.equal(packaged.requiredApiVersion, `^${engine}`);
    assert.equal(JSON.parse(zip.get('.packagedby')!.toString('utf8')).tool, '@rocket.chat/apps-cli');
});

test('the compiled main class and its modules are in, and nothing else is', () => {
    const names = [...zip.keys()].sort();
    for (const needed of ['RcmodApp.js', 'src/commands.js', 'src/forward.js', 'icon.png']) {
        assert.ok(names.includes(needed), `${needed} missing from ${names.join(', ')}`);
    }
    const junk = names.filter((n) => /(^|\/)(node_modules|test|dist|\.git)\/|\.ts$|\.map$|tsconfig|package-lock|\.rcappsconfig|\.sh$|README/.test(n));
    assert.deepEqual(junk, []);
    const unexpected = names.filter((n) => !/^(src\/[\w-]+\.js|RcmodApp\.js|app\.json|icon\.png|package\.json|\.packagedby)$/.test(n));
    assert.deepEqual(unexpected, []);
    assert.ok(!/^\s*import\s/m.test(zip.get('RcmodApp.js')!.toString('utf8')), 'RcmodApp.js is not CommonJS');
    assert.deepEqual(zip.get('icon.png'), readFileSync(join(root, 'icon.png')));
});

test('the packaged code runs: the app class extends App, and it signs like the bot', () => {
    const { RcmodApp } = loadFromZip('RcmodApp.js');
    const { App } = require(require.resolve('@rocket.chat/apps-engine/definition/App', { paths: [root] }));
    const app = new RcmodApp({ name: 'rcmod', requiredApiVersion: '', author: { name: '' } }, { debug: () => undefined }, {});
    assert.ok(app instanceof App);
    const vector = JSON.parse(readFileSync(join(root, 'test', 'vector.json'), 'utf8'));
    const forward = loadFromZip('src/forward.js');
    assert.equal(forward.sign(vector.secret, vector.timestamp, vector.body), vector.signature);
});
