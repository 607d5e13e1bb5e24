import { IAppAccessors, IConfigurationExtend, ILogger } from '@rocket.chat/apps-engine/definition/accessors';
import { App } from '@rocket.chat/apps-engine/definition/App';
import { IAppInfo } from '@rocket.chat/apps-engine/definition/metadata';
import { SettingType } from '@rocket.chat/apps-engine/definition/settings';

import { ForwardingCommand, SETTING_SECRET, SETTING_URL } from './src/commands';

export class RcmodApp extends App {
    constructor(info: IAppInfo, logger: ILogger, accessors: IAppAccessors) {
        super(info, logger, accessors);
    }

    protected async extendConfiguration(configuration: IConfigurationExtend): Promise<void> {
        await configuration.settings.provideSetting({
            id: SETTING_URL,
            type: SettingType.STRING,
            packageValue: 'http://127.0.0.1:8787',
            required: true,
            public: false,
            i18nLabel: 'rcmod bot URL',
            i18nDescription: 'Where the bot listens (its http.host and http.port); /hooks/command is added.',
        });
        await configuration.settings.provideSetting({
            id: SETTING_SECRET,
            type: SettingType.PASSWORD,
            packageValue: '',
            required: true,
            public: false,
            i18nLabel: 'Webhook secret',
            i18nDescription: 'The same value as the bot\'s RCMOD_WEBHOOK_SECRET (rcmod setup --companion-app writes one).',
        });
        await configuration.slashCommands.provideSlashCommand(new ForwardingCommand(
            'report', '[category] [message link or id | @user] [description] [--anonymous]',
            'Report harmful content to the moderators'));
        await configuration.slashCommands.provideSlashCommand(new ForwardingCommand(
            'mod', 'help | status | warn @user | mute @user #room 10m | ban @user #room | strikes @user | delete MSGID | …',
            'Moderator commands (rcmod)'));
    }
}
