// Unit tests of the forwarding logic (node's own test runner). The signature vector in
// vector.json is the one the bot's Python side checks too (tests/web/test_hook.py), so the two
// implementations of the contract cannot drift apart.
import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import { join } from 'path';
import { test } from 'node:test';

import { ForwardingCommand, SETTING_SECRET, SETTING_URL } from '../src/commands';
import { answerText, buildBody, hookUrl, joinArguments, sign, signedRequest } from '../src/forward';

const vector = JSON.parse(readFileSync(join(__dirname, '..', '..', 'test', 'vector.json'), 'utf8'));

test('the signature is HMAC-SHA256 over "<timestamp>.<body>", as the bot computes it', () => {
    assert.equal(sign(vector.secret, vector.timestamp, vector.body), vector.signature);
    assert.notEqual(sign('other', vector.timestamp, vector.body), vector.signature);
});

test('the body is exactly the contract, with null for a nameless room and no thread', () => {
    const body = JSON.parse(buildBody({
        command: 'report', args: ['spam', '', 'x'], user: { id: 'U1', username: 'alice' }, room: { id: 'D1', name: '' },
    }));
    assert.deepEqual(body, {
        command: 'report', args: 'spam x', user: { id: 'U1', username: 'alice' },
        room: { id: 'D1', name: null }, tmid: null, trigger_id: null,
    });
    assert.equal(buildBody({
        command: 'report', args: ['spam', 'Ab3defghijkmnopqr', 'selling', 'followers'],
        user: { id: 'U1', username: 'alice' }, room: { id: 'R1', name: 'general' }, triggerId: 'T1',
    }), vector.body);
});

test('signed request headers carry Unix seconds and the signature of that very body', () => {
    const req = signedRequest({ command: 'mod', args: ['help'], user: { id: 'U', username: 'u' }, room: { id: 'R' } }, 'k', 1800000000999);
    assert.equal(req.headers['X-Rcmod-Timestamp'], '1800000000');
    assert.equal(req.headers['X-Rcmod-Signature'], sign('k', '1800000000', req.body));
});

test('arguments split by an old server are joined back without blanks', () => {
    assert.equal(joinArguments(['a', '', 'b', '']), 'a b');
    assert.equal(hookUrl('http://bot:8787//'), 'http://bot:8787/hooks/command');
});

test('the answer shown to the sender', () => {
    assert.equal(answerText({ statusCode: 200, content: '{"text": "Thank you. #3"}' }), 'Thank you. #3');
    assert.equal(answerText({ statusCode: 200, data: { text: 'ok' } }), 'ok');
    assert.match(answerText({ statusCode: 200, content: 'garbage' }), /unexpected/);
    assert.match(answerText({ statusCode: 401 }), /webhook secret/);
    assert.match(answerText({ statusCode: 502 }), /HTTP 502/);
});

// Small fakes of the accessors the executor touches (no server can run here).
function fakes(settings: { [id: string]: string }, reply: { statusCode: number; content?: string } | Error) {
    const posted: Array<{ url: string; options: any }> = [];
    const notified: Array<{ user: any; message: any }> = [];
    const read: any = { getEnvironmentReader: () => ({ getSettings: () => ({ getValueById: async (id: string) => settings[id] }) }) };
    const http: any = {
        post: async (url: string, options: any) => {
            posted.push({ url, options });
            if (reply instanceof Error) {
                throw reply;
            }
            return { url, method: 'POST', ...reply };
        },
    };
    const builder: any = { msg: {} as any };
    builder.setRoom = (room: any) => { builder.msg.room = room; return builder; };
    builder.setText = (text: string) => { builder.msg.text = text; return builder; };
    builder.setThreadId = (tmid: string) => { builder.msg.threadId = tmid; return builder; };
    builder.getMessage = () => builder.msg;
    const modify: any = {
        getCreator: () => ({ startMessage: () => builder }),
        getNotifier: () => ({ notifyUser: async (user: any, message: any) => { notified.push({ user, message }); } }),
    };
    const context: any = {
        getSender: () => ({ id: 'U1', username: 'alice' }),
        getRoom: () => ({ id: 'R1', slugifiedName: 'general', type: 'c' }),
        getArguments: () => ['spam', 'Ab3defghijkmnopqr'],
        getThreadId: () => 'T9',
        getTriggerId: () => undefined,
    };
    return { read, http, modify, context, posted, notified };
}

test('the executor forwards a signed invocation and shows the bot\'s answer privately', async () => {
    const f = fakes({ [SETTING_URL]: 'http://bot:8787', [SETTING_SECRET]: 'k' }, { statusCode: 200, content: '{"text":"Report #1"}' });
    await new ForwardingCommand('report', '', '', () => 1800000000000).executor(f.context, f.read, f.modify, f.http, {} as any);
    assert.equal(f.posted.length, 1);
    const { url, options } = f.posted[0];
    assert.equal(url, 'http://bot:8787/hooks/command');
    assert.deepEqual(JSON.parse(options.content), {
        command: 'report', args: 'spam Ab3defghijkmnopqr', user: { id: 'U1', username: 'alice' },
        room: { id: 'R1', name: 'general' }, tmid: 'T9', trigger_id: null,
    });
    assert.equal(options.headers['X-Rcmod-Signature'], sign('k', '1800000000', options.content));
    assert.equal(f.notified.length, 1);
    assert.equal(f.notified[0].message.text, 'Report #1');
    assert.equal(f.notified[0].message.threadId, 'T9');
});

test('without configuration nothing is sent and the sender is told', async () => {
    const f = fakes({}, { statusCode: 200 });
    await new ForwardingCommand('mod', '', '').executor(f.context, f.read, f.modify, f.http, {} as any);
    assert.equal(f.posted.length, 0);
    assert.match(f.notified[0].message.text, /not configured/);
});

test('an unreachable bot is reported politely, never thrown', async () => {
    const f = fakes({ [SETTING_URL]: 'http://bot:8787', [SETTING_SECRET]: 'k' }, new Error('ECONNREFUSED'));
    await new ForwardingCommand('mod', '', '').executor(f.context, f.read, f.modify, f.http, {} as any);
    assert.match(f.notified[0].message.text, /cannot be reached/);
});
