// The forwarding logic, kept free of Apps-Engine runtime objects so it can be unit-tested:
// build the contract's body, sign it, and turn the bot's answer into the text shown privately.
// Contract (rcmod PRODUCT.md): X-Rcmod-Timestamp (Unix seconds) and
// X-Rcmod-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">; body
// {"command", "args", "user": {"id", "username"}, "room": {"id", "name"}, "tmid", "trigger_id"};
// answer {"text": "..."}.
import { createHmac } from 'crypto';

export type CommandName = 'report' | 'mod';

export interface Invocation {
    command: CommandName;
    args: string[];
    user: { id: string; username: string };
    room: { id: string; name?: string | null };
    threadId?: string;
    triggerId?: string;
}

export interface SignedRequest {
    body: string;
    headers: { [name: string]: string };
}

// Older servers split the arguments with split(' '), so a double space gives empty strings;
// the bot re-parses the line, so the words are joined back as typed, without the blanks.
export function joinArguments(args: string[]): string {
    return args.filter((a) => a !== '').join(' ');
}

export function buildBody(inv: Invocation): string {
    return JSON.stringify({
        command: inv.command,
        args: joinArguments(inv.args),
        user: { id: inv.user.id, username: inv.user.username },
        // A direct message has no name: null, as the contract allows.
        room: { id: inv.room.id, name: inv.room.name ? inv.room.name : null },
        tmid: inv.threadId ? inv.threadId : null,
        trigger_id: inv.triggerId ? inv.triggerId : null,
    });
}

export function sign(secret: string, timestamp: string, body: string): string {
    return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

export function signedRequest(inv: Invocation, secret: string, nowMs: number): SignedRequest {
    const body = buildBody(inv);
    const timestamp = String(Math.floor(nowMs / 1000));
    return {
        body,
        headers: {
            'Content-Type': 'application/json',
            'X-Rcmod-Timestamp': timestamp,
            'X-Rcmod-Signature': sign(secret, timestamp, body),
        },
    };
}

export interface BotAnswer {
    statusCode: number;
    content?: string;
    data?: unknown;
}

// What the sender sees. The bot's own text on success; otherwise a hint for the admin, never the
// secret and never the bot's raw error body.
export function answerText(answer: BotAnswer): string {
    if (answer.statusCode === 200) {
        const data = answer.data !== undefined ? answer.data : parseJson(answer.content);
        if (data && typeof data === 'object' && typeof (data as { text?: unknown }).text === 'string') {
            return (data as { text: string }).text;
        }
        return 'rcmod answered something unexpected; please tell a workspace administrator.';
    }
    if (answer.statusCode === 401) {
        return 'rcmod refused the request (signature). An administrator should check that the app\'s ' +
            'webhook secret matches RCMOD_WEBHOOK_SECRET and that the server clock is right.';
    }
    if (answer.statusCode === 413) {
        return 'That command is too long.';
    }
    return `rcmod could not take the command right now (HTTP ${answer.statusCode}). Please try again later.`;
}

function parseJson(text: string | undefined): unknown {
    if (!text) {
        return undefined;
    }
    try {
        return JSON.parse(text);
    } catch {
        return undefined;
    }
}

export function hookUrl(base: string): string {
    return base.replace(/\/+$/, '') + '/hooks/command';
}
