import { IHttp, IModify, IPersistence, IRead } from '@rocket.chat/apps-engine/definition/accessors';
import { ISlashCommand, SlashCommandContext } from '@rocket.chat/apps-engine/definition/slashcommands';

import { answerText, CommandName, hookUrl, signedRequest } from './forward';

export const SETTING_URL = 'rcmod_url';
export const SETTING_SECRET = 'rcmod_webhook_secret';

// One class for both commands: the bot owns the grammar, the app only forwards.
export class ForwardingCommand implements ISlashCommand {
    public i18nParamsExample: string;
    public i18nDescription: string;
    public providesPreview = false;

    constructor(public command: CommandName, params: string, description: string, private now: () => number = Date.now) {
        this.i18nParamsExample = params;
        this.i18nDescription = description;
    }

    public async executor(context: SlashCommandContext, read: IRead, modify: IModify, http: IHttp, _persis: IPersistence): Promise<void> {
        const settings = read.getEnvironmentReader().getSettings();
        const url = String((await settings.getValueById(SETTING_URL)) || '');
        const secret = String((await settings.getValueById(SETTING_SECRET)) || '');
        const sender = context.getSender();
        const room = context.getRoom();
        let text: string;
        if (!url || !secret) {
            text = 'The rcmod app is not configured yet (bot URL and webhook secret); please tell an administrator.';
        } else {
            const request = signedRequest({
                command: this.command,
                args: context.getArguments(),
                user: { id: sender.id, username: sender.username },
                // A direct message has no name (null in the contract).
                room: { id: room.id, name: String(room.type) === 'd' ? null : room.slugifiedName || null },
                threadId: context.getThreadId(),
                triggerId: context.getTriggerId(),
            }, secret, this.now());
            try {
                const response = await http.post(hookUrl(url), { content: request.body, headers: request.headers, timeout: 10000 });
                text = answerText(response);
            } catch {
                text = 'rcmod cannot be reached right now. Please try again later.';
            }
        }
        const message = modify.getCreator().startMessage().setRoom(room).setText(text);
        const thread = context.getThreadId();
        if (thread) {
            message.setThreadId(thread);
        }
        // Only the sender sees the answer (an ephemeral notification).
        await modify.getNotifier().notifyUser(sender, message.getMessage());
    }
}
